"""The payout repository: every statement on credits, payouts, their events
and idempotency keys, as verb methods over a ``db.Database``, and the
consistent whole-database reads of the audit, the export and copy-data.

Every status change is one compare-and-set UPDATE plus one audit event,
committed together, with the request's idempotent answer when it has one.
Each event's webhook deliveries are queued by the schema itself, in the same
transaction (the trigger of ``sql/<dialect>/0003_webhooks.sql``).
Raises the domain's exceptions. SQL text is built only from the constants
here, never from request data.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from typing import NamedTuple

from . import domain
from .db import Database
from .domain import TRANSITIONS

log = logging.getLogger("triport_payouts")

PAYOUT_COLUMNS = (
    "id", "user_id", "amount", "currency", "destination", "status",
    "reason", "tx_hash", "created_at", "updated_at",
)
EVENT_COLUMNS = ("payout_id", "from_status", "to_status", "reason", "tx_hash", "actor", "at", "on_behalf_of")
CREDIT_COLUMNS = ("id", "user_id", "amount", "currency", "note", "created_at")
# What the export adds to each payout: its terminal event's actor, time, and
# whom the actor acted for.
SETTLEMENT_COLUMNS = (*PAYOUT_COLUMNS, "settled_by", "settled_at", "settled_on_behalf_of")

# The tables copy-data moves, payouts before their events (the foreign key),
# with their columns and the order rows are read in.
TABLES = {
    "credits": (CREDIT_COLUMNS, "created_at, id"),
    "payouts": (PAYOUT_COLUMNS, "created_at, id"),
    "payout_events": (EVENT_COLUMNS, "id"),
}

_PAYOUT_SELECT = f"SELECT {', '.join(PAYOUT_COLUMNS)} FROM payouts"
_TERMINAL = ", ".join(f"'{status}'" for status in sorted(domain.TERMINAL))
# The compare-and-set: the row changes only if its status is still the one
# read and checked against the transitions table, so of two racing actions
# exactly one matches, and the event records the true from-status.
_TRANSITION = (
    "UPDATE payouts SET status = ?, reason = coalesce(?, reason),"
    " tx_hash = coalesce(?, tx_hash), updated_at = ?"
    " WHERE id = ? AND status = ?"
)

SQL = {
    "status": "SELECT status FROM payouts WHERE id = ?",
    "payout": f"{_PAYOUT_SELECT} WHERE id = ?",
    "transition": _TRANSITION,
    "insert_event": (
        f"INSERT INTO payout_events ({', '.join(EVENT_COLUMNS)}) VALUES ({', '.join('?' * len(EVENT_COLUMNS))})"
    ),
    # The compare-and-set and its event as one statement, where the dialect
    # writes several tables in one (Database.writes_in_one_statement): the
    # event is inserted only for the row the UPDATE changed, and the count of
    # events says whether it did. {finish} stores the idempotent answer in
    # the same statement, or is empty.
    "transition_and_event": (
        f"WITH moved AS ({_TRANSITION} RETURNING id),"
        f" event AS (INSERT INTO payout_events ({', '.join(EVENT_COLUMNS)})"
        f" SELECT id, {', '.join('?' * (len(EVENT_COLUMNS) - 1))} FROM moved RETURNING 1){{finish}}"
        " SELECT count(*) FROM event"
    ),
    "transition_finish": (
        ", answer AS (UPDATE idempotency_keys SET status = ?, body = ?"
        " WHERE key = ? AND status IS NULL AND EXISTS (SELECT 1 FROM moved) RETURNING 1)"
    ),
    # A payout's events, each as its JSON text, encoded by the database (as a page's payouts are).
    "events_json": "SELECT {event_json} FROM payout_events WHERE payout_id = ? ORDER BY id",
    "insert_credit": (
        f"INSERT INTO credits ({', '.join(CREDIT_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?)"
    ),
    "insert_payout": (
        f"INSERT INTO payouts ({', '.join(PAYOUT_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ),
    # Rows of (currency, kind, amount, count), kind being 'credit' or a payout
    # status; summed exactly in Python, since SQLite has no exact decimal type
    # (a dialect with one may return the sums instead of one row per amount).
    "balance_rows": (
        "SELECT currency, 'credit', amount, 1 FROM credits WHERE user_id = ? AND currency = ?"
        " UNION ALL"
        " SELECT currency, status, amount, 1 FROM payouts WHERE user_id = ? AND currency = ?"
    ),
    "user_balance_rows": (
        "SELECT currency, 'credit', amount, 1 FROM credits WHERE user_id = ?"
        " UNION ALL"
        " SELECT currency, status, amount, 1 FROM payouts WHERE user_id = ?"
    ),
    # Idempotency keys: claimed (status NULL) before the request runs, then
    # finished with its answer, inside the transition's own transaction.
    "claim_key": (
        "INSERT INTO idempotency_keys (key, fingerprint, status, body, created_at, claimed_at)"
        " VALUES (?, ?, NULL, NULL, ?, ?) ON CONFLICT (key) DO NOTHING"
    ),
    "get_key": "SELECT fingerprint, status, body FROM idempotency_keys WHERE key = ?",
    "take_over_key": (
        "UPDATE idempotency_keys SET claimed_at = ? WHERE key = ? AND status IS NULL AND claimed_at < ?"
    ),
    "finish_key": "UPDATE idempotency_keys SET status = ?, body = ? WHERE key = ? AND status IS NULL",
    "release_key": "DELETE FROM idempotency_keys WHERE key = ? AND status IS NULL",
    "prune_keys": "DELETE FROM idempotency_keys WHERE created_at < ?",
    # The change feed: events in the order they became final, each with its
    # payout. {position}, {after} and {order} are the dialect's: on SQLite one
    # writer at a time makes id order commit order, so a position is (0, id)
    # and the 0 is only checked; PostgreSQL overrides them (see its class).
    "feed": (
        "SELECT {position}, e.id, e.payout_id, e.from_status, e.to_status, e.reason, e.tx_hash, e.actor,"
        " e.on_behalf_of, e.at, p.user_id, CAST(p.amount AS TEXT), p.currency, p.destination, p.created_at"
        " FROM payout_events e JOIN payouts p ON p.id = e.payout_id"
        " WHERE {after}{types} ORDER BY {order} LIMIT ?"
    ),
    "feed_position": "0",
    "feed_after": "? = 0 AND e.id > ?",
    "feed_order": "e.id",
    # Whole-database reads, in one snapshot: the audit's, the export's, copy-data's.
    "audit_credits": "SELECT user_id, currency, amount FROM credits",
    "audit_payouts": "SELECT id, user_id, amount, currency, status, tx_hash FROM payouts ORDER BY id",
    "audit_events": "SELECT payout_id, from_status, to_status FROM payout_events ORDER BY payout_id, id",
    # A payout in processing has not changed since it entered it: updated_at is when it did.
    "audit_stalled": (
        "SELECT id, updated_at FROM payouts WHERE status = 'processing' AND updated_at < ? ORDER BY updated_at, id"
    ),
    "settlements": (
        f"SELECT {', '.join('p.' + c for c in PAYOUT_COLUMNS)}, e.actor, e.at, e.on_behalf_of FROM payouts p"
        f" LEFT JOIN payout_events e ON e.payout_id = p.id AND e.to_status IN ({_TERMINAL})"
        "{where} ORDER BY p.created_at DESC, p.id DESC"
    ),
    **{f"copy_{table}": f"SELECT {', '.join(columns)} FROM {table} ORDER BY {order}"
       for table, (columns, order) in TABLES.items()},
    **{f"count_{table}": f"SELECT count(*) FROM {table}" for table in TABLES},
}

# The filters of the payout list and of the export, by name: the only text a
# WHERE clause is built from.
FILTERS = {
    "status": "status = ?",
    "user_id": "user_id = ?",
    "after": "(created_at, id) < (?, ?)",  # the keyset cursor: the page after (created_at, id)
    "since": "updated_at >= ?",
    "until": "updated_at < ?",
    # The list's bounds on the creation time and on the time of the last
    # change (all exclusive), and the cursor of each of its orders.
    "created_after": "created_at > ?",
    "created_before": "created_at < ?",
    "updated_before": "updated_at < ?",
    "after_oldest": "(created_at, id) > (?, ?)",
    "after_changed": "(updated_at, id) < (?, ?)",
    "after_changed_oldest": "(updated_at, id) > (?, ?)",
    # created_at bounds on a list read in updated_at order: checked on each
    # row of the updated_at range. An expression, not the bare column, so
    # that no planner takes the created_at range instead and sorts it.
    "created_after_row": "created_at || '' > ?",
    "created_before_row": "created_at || '' < ?",
}


def where(given: Mapping[str, object]) -> tuple[str, list]:
    """The WHERE clause (or "") of the FILTERS whose value is not None, and
    their parameters; a tuple value fills several."""
    clauses: list[str] = []
    params: list = []
    for name, value in given.items():
        if value is None:
            continue
        clauses.append(FILTERS[name])
        params.extend(value if isinstance(value, tuple) else (value,))
    return (f" WHERE {' AND '.join(clauses)}" if clauses else ""), params


class PageFilters(NamedTuple):
    """What the payout list is filtered and ordered by. Times are in the
    stored form (domain.utcnow's); every bound is exclusive. With
    updated_before the list is in the order of the last change (updated_at),
    else of creation (created_at); then id. Newest first unless `oldest`."""

    status: str | None = None
    user_id: str | None = None
    created_after: str | None = None
    created_before: str | None = None
    updated_before: str | None = None
    oldest: bool = False


ALL_PAYOUTS = PageFilters()  # the whole list, newest first


def page_clauses(filters: PageFilters, after: tuple[str, str] | None) -> dict[str, object]:
    """The FILTERS of one page and their values, in order. The scan starts
    at the cursor when there is one, and the bound on that side is left out:
    the cursor's payout was inside it, so it adds nothing, and one bound a
    side keeps the page a single index range."""
    by_change = filters.updated_before is not None
    # Newest first the cursor is the upper bound; oldest first the lower one.
    cursor_is_upper = after is not None and not filters.oldest
    cursor_is_lower = after is not None and filters.oldest
    clauses: dict[str, object] = {"status": filters.status, "user_id": filters.user_id}
    if by_change:
        clauses["created_after_row"] = filters.created_after
        clauses["created_before_row"] = filters.created_before
        clauses["updated_before"] = None if cursor_is_upper else filters.updated_before
    else:
        clauses["created_after"] = None if cursor_is_lower else filters.created_after
        clauses["created_before"] = None if cursor_is_upper else filters.created_before
    cursor = "after_changed" if by_change else "after"
    clauses[cursor + "_oldest" if filters.oldest else cursor] = after
    return {name: value for name, value in clauses.items() if value is not None}


def _page_sql(names: tuple[str, ...], key: str, oldest: bool) -> str:
    # {payout_json}: the dialect's expression for a row as its JSON text (Repository fills it in).
    clause, _ = where(dict.fromkeys(names, ()))
    direction = "" if oldest else " DESC"
    return (f"SELECT {{payout_json}}, {key}, id FROM payouts{clause}"
            f" ORDER BY {key}{direction}, id{direction} LIMIT ?")


class KeyAnswer(NamedTuple):
    """The answer stored with an idempotency key: what its retries get."""

    key: str
    status: int
    body: bytes


# The answer to store for what a write created (the new credit or payout).
Answer = Callable[[dict], KeyAnswer]


class Repository:
    def __init__(self, db: Database):
        self.db = db
        sql = {**SQL, **db.sql_overrides}
        self._feed_sql = {
            count: db.sql(sql["feed"].format(
                position=sql["feed_position"], after=sql["feed_after"], order=sql["feed_order"],
                types=f" AND e.to_status IN ({', '.join('?' * count)})" if count else "",
            ))
            for count in range(len(domain.STATUSES) + 1)
        }
        # One event as the feed shows it, by id (what a webhook delivers).
        self._event_sql = db.sql(sql["feed"].format(position="0", after="e.id = ?", order="e.id", types=""))
        # A page's payouts are encoded by the database: no dict per row, no json.dumps.
        payout_json = db.json_object(
            [(name, "CAST(amount AS TEXT)" if name == "amount" else name) for name in PAYOUT_COLUMNS]
        )
        self._payout_json = payout_json
        self._event_json = db.json_object([(name, name) for name in EVENT_COLUMNS])
        self._sql = {name: self._dialect_sql(text) for name, text in sql.items()}
        # The transition in one statement, without and with an answer to store.
        self._transition_sql = (
            self._dialect_sql(sql["transition_and_event"].format(finish="")),
            self._dialect_sql(sql["transition_and_event"].format(finish=sql["transition_finish"])),
        ) if db.writes_in_one_statement else None
        self._page_sql: dict[tuple[tuple[str, ...], str, bool], str] = {}

    def _dialect_sql(self, text: str) -> str:
        return self.db.sql(text.replace("{payout_json}", self._payout_json).replace("{event_json}", self._event_json))

    # -- reads ---------------------------------------------------------------

    def get_payout(self, payout_id: str) -> dict:
        row = self.db.connection().execute(self._sql["payout"], (payout_id,)).fetchone()
        if row is None:
            raise domain.PayoutNotFound()
        return _with_text_amount(dict(zip(PAYOUT_COLUMNS, row)))

    def events_json(self, payout_id: str) -> list[str]:
        """The payout's audit events, oldest first, each as its JSON text,
        encoded by the database (what GET .../events answers); raises
        PayoutNotFound."""
        rows = self.db.connection().execute(self._sql["events_json"], (payout_id,)).fetchall()
        if not rows:
            self._status(payout_id)
        return [row[0] for row in rows]

    def payout_page(self, filters: PageFilters = ALL_PAYOUTS, *, limit: int,
                    after: tuple[str, str] | None = None) -> tuple[list[str], tuple | None]:
        """One page of the list (see PageFilters): (each payout as its JSON
        text, the key of the last one if more follow: (created_at, id), or
        (updated_at, id) with updated_before)."""
        sql, params = self.page_query(filters, limit=limit, after=after)
        rows = self.db.connection().execute(sql, params).fetchall()
        last = tuple(rows[limit - 1][1:]) if len(rows) > limit else None
        return [row[0] for row in rows[:limit]], last

    def page_query(self, filters: PageFilters, *, limit: int, after=None) -> tuple[str, list]:
        """The statement payout_page runs, in the dialect, and its parameters."""
        clauses = page_clauses(filters, after)
        key = "created_at" if filters.updated_before is None else "updated_at"
        shape = (tuple(clauses), key, filters.oldest)
        sql = self._page_sql.get(shape)
        if sql is None:
            # Made once per combination of filters, order and cursor (128 at most).
            sql = self._page_sql[shape] = self._dialect_sql(_page_sql(*shape))
        _, params = where(clauses)
        params.append(limit + 1)
        return sql, params

    def user_summary(self, user_id: str, payouts: int) -> tuple[dict, list[str]]:
        """Balances per currency and counts per status, and the user's
        `payouts` newest payouts as JSON texts; raises UserNotFound for a user
        with no credits and no payouts."""
        conn = self.db.connection()
        rows = conn.execute(self._sql["user_balance_rows"], (user_id, user_id)).fetchall()
        if not rows:
            raise domain.UserNotFound()
        counts = dict.fromkeys(domain.STATUSES, 0)
        for _currency, kind, _amount, count in rows:
            if kind in counts:
                counts[kind] += count
        balances = [
            {"currency": currency, **{name: domain.format_amount(getattr(balance, name))
                                      for name in ("earned", "reserved", "sent", "available")}}
            for currency, balance in sorted(balances_from_rows(rows).items())
        ]
        newest, _ = self.payout_page(PageFilters(user_id=user_id), limit=payouts)
        return {"user_id": user_id, "balances": balances, "counts": counts}, newest

    def feed(self, *, after: tuple[int, int], statuses: tuple[str, ...], limit: int) -> tuple[list[dict], tuple]:
        """The events after position `after`, oldest first, to one of
        `statuses` (all when empty), each with the payout as it was right
        after it: (the events, the position after the last one, or `after`)."""
        params = [after[0], after[1], *statuses, limit]
        rows = self.db.connection().execute(self._feed_sql[len(statuses)], params).fetchall()
        # A position must never rest on an event a power cut could take back
        # (its id would be taken again, after the consumer's cursor).
        self.db.sync_reads()
        if not rows:
            return [], after
        return [_feed_event(row[1:]) for row in rows], (int(rows[-1][0]), rows[-1][1])

    def feed_event(self, event_id: int) -> dict | None:
        """The event `event_id` exactly as the feed shows it, or None."""
        row = self.db.connection().execute(self._event_sql, (event_id, 1)).fetchone()
        return None if row is None else _feed_event(row[1:])

    def _status(self, payout_id: str) -> str:
        row = self.db.connection().execute(self._sql["status"], (payout_id,)).fetchone()
        if row is None:
            raise domain.PayoutNotFound()
        return row[0]

    # -- writes --------------------------------------------------------------

    def transition(self, payout_id: str, action: str, *, reason=None, tx_hash=None, actor=None,
                   on_behalf_of=None, answer: KeyAnswer | None = None) -> tuple[str, str]:
        """Moves a payout by one row of the transitions table and records the
        event, and stores `answer` with its claimed idempotency key, all in
        one transaction. Returns (from_status, to_status). Raises
        PayoutNotFound, or PayoutNotActionable when the status does not allow
        the action or another action changed it first.
        """
        rule = TRANSITIONS[action]
        # A status outside the rule's sources never comes back into them (the
        # machine only moves forward), so refusing on this read is final and
        # takes no write lock.
        current = self._status(payout_id)
        if current not in rule.sources:
            raise domain.PayoutNotActionable()
        if self._transition_sql is not None:
            now = domain.utcnow()
            params = [rule.target, reason, tx_hash, now, payout_id, current,
                      current, rule.target, reason, tx_hash, actor, now, on_behalf_of]
            if answer is not None:
                params += (answer.status, answer.body, answer.key)
            with self.db.write_once() as conn:
                moved = conn.execute(self._transition_sql[answer is not None], params).fetchone()[0]
            if moved != 1:
                raise domain.PayoutNotActionable()
        else:
            with self.db.transaction() as conn:
                now = domain.utcnow()  # taken under the write lock: events' times follow commit order
                cursor = conn.execute(
                    self._sql["transition"], (rule.target, reason, tx_hash, now, payout_id, current)
                )
                if cursor.rowcount != 1:
                    raise domain.PayoutNotActionable()
                conn.execute(
                    self._sql["insert_event"],
                    (payout_id, current, rule.target, reason, tx_hash, actor, now, on_behalf_of),
                )
                if answer is not None:
                    conn.execute(self._sql["finish_key"], (answer.status, answer.body, answer.key))
        # One line per transition, for log pipelines; never the token.
        log.info("payout %s %s -> %s actor=%s", payout_id, current, rule.target, json.dumps(actor))
        return current, rule.target

    def credit(self, user_id: str, amount: Decimal, currency: str, note: str | None = None, *,
               answer: Answer | None = None) -> dict:
        """A new credit; `answer` gives what to store with a claimed
        idempotency key, in the same transaction."""
        credit = dict(zip(CREDIT_COLUMNS, (
            domain.new_payout_id(), user_id, domain.format_amount(amount), currency, note, domain.utcnow(),
        )))
        with self.db.transaction() as conn:
            conn.execute(self._sql["insert_credit"], tuple(credit.values()))
            self._finish(conn, answer, credit)
        return credit

    def create_payout(self, user_id: str, amount: Decimal, currency: str, destination: str, *,
                      actor=None, on_behalf_of=None, answer: Answer | None = None) -> dict:
        """A new payout in `requested`, with its creation event (and `answer`
        as in credit); raises WouldOverdraw if it exceeds `available`."""
        with self.db.transaction() as conn:
            self.db.lock_balance(conn, user_id, currency)
            now = domain.utcnow()
            payout = dict(zip(PAYOUT_COLUMNS, (
                domain.new_payout_id(), user_id, domain.format_amount(amount), currency, destination,
                domain.REQUESTED, None, None, now, now,
            )))
            rows = conn.execute(self._sql["balance_rows"], (user_id, currency, user_id, currency)).fetchall()
            balance = balances_from_rows(rows).get(currency, domain.Balance())
            if amount > balance.available:
                raise domain.WouldOverdraw()
            conn.execute(self._sql["insert_payout"], tuple(payout.values()))
            # Its history starts with its creation, in the same transaction.
            conn.execute(self._sql["insert_event"], creation_event(payout, actor, on_behalf_of))
            self._finish(conn, answer, payout)
        return payout

    def cancel_payout(self, payout_id: str, actor: str | None = None) -> tuple[str, str]:
        return self.transition(payout_id, "cancel", actor=actor)

    def _finish(self, conn, answer: Answer | None, created: dict) -> None:
        if answer is not None:
            stored = answer(created)
            conn.execute(self._sql["finish_key"], (stored.status, stored.body, stored.key))

    def bulk_load(self, *, credits=(), payouts=()) -> None:
        """Inserts rows of CREDIT_COLUMNS and new requested payouts of
        PAYOUT_COLUMNS, with their creation events, in one transaction, as the
        dialect loads fastest (seed-demo)."""
        with self.db.transaction() as conn:
            self.db.bulk_insert(conn, "credits", CREDIT_COLUMNS, credits)
            self.db.bulk_insert(conn, "payouts", PAYOUT_COLUMNS, payouts)
            created = PAYOUT_COLUMNS.index("created_at")
            self.db.bulk_insert(conn, "payout_events", EVENT_COLUMNS,
                                [(row[0], None, domain.REQUESTED, None, None, None, row[created], None)
                                 for row in payouts])

    # -- idempotency keys ----------------------------------------------------

    def claim_key(self, key: str, fingerprint: str, stale_before: str) -> tuple[int, bytes] | None:
        """None if the caller now owns the key and runs the request; else the
        stored answer (status, body). Raises IdempotencyKeyReused for another
        request's key, IdempotencyKeyInUse while its first request runs (a
        claim older than `stale_before` was lost with its worker: taken over).
        """
        now = domain.utcnow()
        with self.db.transaction() as conn:
            stored = None
            # On PostgreSQL the conflicting row may be released (its request
            # failed) or pruned between the two statements: claim again.
            while stored is None:
                if conn.execute(self._sql["claim_key"], (key, fingerprint, now, now)).rowcount == 1:
                    return None
                stored = conn.execute(self._sql["get_key"], (key,)).fetchone()
            stored_fingerprint, status, body = stored
            if stored_fingerprint != fingerprint:
                raise domain.IdempotencyKeyReused()
            if status is not None:
                return status, bytes(body)
            if conn.execute(self._sql["take_over_key"], (now, key, stale_before)).rowcount == 1:
                return None
            raise domain.IdempotencyKeyInUse()

    def finish_key(self, answer: KeyAnswer) -> None:
        """Stores a claimed key's answer on its own (a refusal: nothing else
        was written); a success is stored by transition()."""
        with self.db.transaction() as conn:
            conn.execute(self._sql["finish_key"], (answer.status, answer.body, answer.key))

    def release_key(self, key: str) -> None:
        """Forgets an unfinished claim, so that a retry runs the request."""
        with self.db.transaction() as conn:
            conn.execute(self._sql["release_key"], (key,))

    def prune_keys(self, before: str) -> int:
        with self.db.transaction() as conn:
            return conn.execute(self._sql["prune_keys"], (before,)).rowcount

    # -- the whole database, in one snapshot -----------------------------------

    @contextmanager
    def snapshot(self) -> Iterator[Snapshot]:
        """A consistent read of the whole database (the audit, the export, copy-data)."""
        with self.db.snapshot() as stream:
            yield Snapshot(stream)

    def is_empty(self, conn) -> bool:
        """Whether no table copy-data fills holds a row, read in `conn`'s transaction."""
        return not any(conn.execute(self._sql[f"count_{table}"]).fetchone()[0] for table in TABLES)


class Snapshot:
    """The streamed whole-database reads of one consistent snapshot."""

    def __init__(self, stream):
        self._stream = stream

    def credits(self):
        """(user_id, currency, amount) of every credit."""
        return self._stream(SQL["audit_credits"])

    def payouts(self):
        """(id, user_id, amount, currency, status, tx_hash) of every payout, by id."""
        return self._stream(SQL["audit_payouts"])

    def events(self):
        """(payout_id, from_status, to_status) of every event, by payout then id."""
        return self._stream(SQL["audit_events"])

    def stalled(self, before: str):
        """(id, updated_at) of every payout in processing since before `before`, oldest first."""
        return self._stream(SQL["audit_stalled"], (before,))

    def settlements(self, *, status=None, since=None, until=None) -> Iterator[dict]:
        """Payouts of SETTLEMENT_COLUMNS, newest first, filtered on status and
        on the time of the last change (since inclusive, until exclusive)."""
        clause, params = where({"status": status, "since": since, "until": until})
        for row in self._stream(SQL["settlements"].replace("{where}", clause), params):
            yield _with_text_amount(dict(zip(SETTLEMENT_COLUMNS, row)))

    def table(self, table: str, batch: int) -> Iterator[list[tuple]]:
        """Every row of one of TABLES in its order, in lists of at most
        `batch`, amounts as exact text whichever dialect read them."""
        columns, _order = TABLES[table]
        amount = columns.index("amount") if "amount" in columns else None
        for chunk in self.rows(SQL[f"copy_{table}"], batch):
            if amount is None:
                yield chunk
            else:
                yield [(*row[:amount], domain.format_amount(row[amount]), *row[amount + 1:]) for row in chunk]

    def rows(self, sql: str, batch: int) -> Iterator[list[tuple]]:
        """The rows of a SELECT without parameters, in lists of at most `batch`."""
        cursor = self._stream(sql)
        while chunk := cursor.fetchmany(batch):
            yield [tuple(row) for row in chunk]


def creation_event(payout: dict, actor: str | None = None, on_behalf_of: str | None = None) -> tuple:
    """The EVENT_COLUMNS row a new (requested) payout's history starts with."""
    return (payout["id"], None, domain.REQUESTED, None, None, actor, payout["created_at"], on_behalf_of)


def _feed_event(row) -> dict:
    """A feed row as the feed shows it. The payout as it was right after this
    event: only a terminal event sets a reason or a tx_hash, so the event's
    own are the payout's."""
    (event_id, payout_id, from_status, to_status, reason, tx_hash, actor, on_behalf_of, at,
     user_id, amount, currency, destination, created_at) = row
    return {
        "id": str(event_id), "type": f"payout.{to_status}", "created_at": at,
        "from_status": from_status, "to_status": to_status, "reason": reason, "tx_hash": tx_hash, "actor": actor,
        "on_behalf_of": on_behalf_of,
        "payout": {
            "id": payout_id, "user_id": user_id, "amount": domain.format_amount(amount), "currency": currency,
            "destination": destination, "status": to_status, "reason": reason, "tx_hash": tx_hash,
            "created_at": created_at, "updated_at": at,
        },
    }


def balances_from_rows(rows) -> dict[str, domain.Balance]:
    """Each currency's balance, from (currency, kind, amount, count) rows
    where kind is 'credit' or a payout status."""
    balances: dict[str, domain.Balance] = {}
    for currency, kind, amount, _count in rows:
        balance = balances.get(currency)
        if balance is None:
            balance = balances[currency] = domain.Balance()
        balance.add(kind, Decimal(amount))
    return balances


def _with_text_amount(record: dict) -> dict:
    record["amount"] = domain.format_amount(record["amount"])
    return record
