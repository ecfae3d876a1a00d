"""The payout repository: every read and write of credits, payouts and their
events, as verb methods over a database from ``db.py``.

Every status change is one compare-and-set UPDATE plus one audit event,
committed together. Raises the domain's exceptions; SQL text is constant and
never built from request data.
"""

from __future__ import annotations

import itertools
import json
import logging
from decimal import Decimal

from . import domain
from .domain import TRANSITIONS

log = logging.getLogger("triport_payouts")

PAYOUT_COLUMNS = (
    "id", "user_id", "amount", "currency", "destination", "status",
    "reason", "tx_hash", "created_at", "updated_at",
)
EVENT_COLUMNS = ("payout_id", "from_status", "to_status", "reason", "tx_hash", "actor", "at")
CREDIT_COLUMNS = ("id", "user_id", "amount", "currency", "note", "created_at")

_PAYOUT_SELECT = f"SELECT {', '.join(PAYOUT_COLUMNS)} FROM payouts"

SQL = {
    "status": "SELECT status FROM payouts WHERE id = ?",
    "payout": f"{_PAYOUT_SELECT} WHERE id = ?",
    # The compare-and-set: the row changes only if its status is still the one
    # read and checked against the transitions table, so of two racing actions
    # exactly one matches, and the event records the true from-status.
    "transition": (
        "UPDATE payouts SET status = ?, reason = coalesce(?, reason),"
        " tx_hash = coalesce(?, tx_hash), updated_at = ?"
        " WHERE id = ? AND status = ?"
    ),
    "insert_event": (
        f"INSERT INTO payout_events ({', '.join(EVENT_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, ?)"
    ),
    "events": (
        f"SELECT {', '.join(EVENT_COLUMNS)} FROM payout_events WHERE payout_id = ? ORDER BY id"
    ),
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
    "get_key": "SELECT fingerprint, status, body, claimed_at FROM idempotency_keys WHERE key = ?",
    "take_over_key": (
        "UPDATE idempotency_keys SET claimed_at = ? WHERE key = ? AND status IS NULL AND claimed_at < ?"
    ),
    "finish_key": "UPDATE idempotency_keys SET status = ?, body = ? WHERE key = ? AND status IS NULL",
    "release_key": "DELETE FROM idempotency_keys WHERE key = ? AND status IS NULL",
    "prune_keys": "DELETE FROM idempotency_keys WHERE created_at < ?",
}

# The listing's WHERE clauses, by which filters are given; the text is built
# only from these constants, never from request data.
_LIST_FILTERS = {
    "status": "status = ?",
    "user_id": "user_id = ?",
    "after": "(created_at, id) < (?, ?)",
}


def _list_sql(status: bool, user_id: bool, after: bool) -> str:
    # {payout_json}: the dialect's expression for a row as its JSON text (Repository fills it in).
    clauses = [_LIST_FILTERS[name] for name, given in
               (("status", status), ("user_id", user_id), ("after", after)) if given]
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    return f"SELECT {{payout_json}}, created_at, id FROM payouts{where} ORDER BY created_at DESC, id DESC LIMIT ?"


SQL.update({
    "list" + "".join("1" if given else "0" for given in flags): _list_sql(*flags)
    for flags in itertools.product((False, True), repeat=3)
})


class Repository:
    def __init__(self, db):
        self.db = db
        sql = {**SQL, **db.sql_overrides}
        # A page's payouts are encoded by the database: no dict per row, no json.dumps.
        payout_json = db.json_object(
            [(name, "CAST(amount AS TEXT)" if name == "amount" else name) for name in PAYOUT_COLUMNS]
        )
        self._sql = {name: db.sql(text.replace("{payout_json}", payout_json)) for name, text in sql.items()}

    # -- reads ---------------------------------------------------------------

    def get_payout(self, payout_id: str) -> dict:
        row = self.db.connection().execute(self._sql["payout"], (payout_id,)).fetchone()
        if row is None:
            raise domain.PayoutNotFound()
        return _payout(row)

    def events(self, payout_id: str) -> list[dict]:
        """The payout's audit events, oldest first; raises PayoutNotFound."""
        conn = self.db.connection()
        rows = conn.execute(self._sql["events"], (payout_id,)).fetchall()
        if not rows:
            self._status(payout_id)
        return [dict(zip(EVENT_COLUMNS, row)) for row in rows]

    def payout_page(self, *, status=None, user_id=None, limit=50, after=None):
        """One page, newest first: (each payout as its JSON text, the key of
        the last one if more follow)."""
        flags = "".join("0" if value is None else "1" for value in (status, user_id, after))
        params = [value for value in (status, user_id) if value is not None]
        if after is not None:
            params.extend(after)
        params.append(limit + 1)
        rows = self.db.connection().execute(self._sql["list" + flags], params).fetchall()
        last = tuple(rows[limit - 1][1:]) if len(rows) > limit else None
        return [row[0] for row in rows[:limit]], last

    def user_summary(self, user_id: str, payouts: int = 20) -> tuple[dict, list[str]]:
        """Balances per currency and counts per status, and the user's newest
        payouts as JSON texts; raises UserNotFound for a user with no credits
        and no payouts."""
        conn = self.db.connection()
        rows = conn.execute(self._sql["user_balance_rows"], (user_id, user_id)).fetchall()
        if not rows:
            raise domain.UserNotFound()
        counts = dict.fromkeys(domain.STATUSES, 0)
        for _currency, kind, _amount, count in rows:
            if kind in counts:
                counts[kind] += count
        balances = [
            {"currency": currency, **{name: domain.format_amount(value) for name, value in sums.items()}}
            for currency, sums in sorted(balances_from_rows(rows).items())
        ]
        newest, _ = self.payout_page(user_id=user_id, limit=payouts)
        return {"user_id": user_id, "balances": balances, "counts": counts}, newest

    def _status(self, payout_id: str) -> str:
        row = self.db.connection().execute(self._sql["status"], (payout_id,)).fetchone()
        if row is None:
            raise domain.PayoutNotFound()
        return row[0]

    # -- writes --------------------------------------------------------------

    def transition(self, payout_id: str, action: str, *, reason=None, tx_hash=None, actor=None,
                   within=None):
        """Moves a payout by one row of the transitions table and records the event.

        `within(conn)`, if given, runs inside the same transaction, after the
        event. Returns (from_status, to_status). Raises PayoutNotFound, or
        PayoutNotActionable when the status does not allow the action or
        another action changed it first.
        """
        rule = TRANSITIONS[action]
        # A status outside the rule's sources never comes back into them (the
        # machine only moves forward), so refusing on this read is final and
        # takes no write lock.
        current = self._status(payout_id)
        if current not in rule.sources:
            raise domain.PayoutNotActionable()
        with self.db.transaction() as conn:
            now = domain.utcnow()  # taken under the write lock: events' times follow commit order
            cursor = conn.execute(
                self._sql["transition"], (rule.target, reason, tx_hash, now, payout_id, current)
            )
            if cursor.rowcount != 1:
                raise domain.PayoutNotActionable()
            conn.execute(
                self._sql["insert_event"],
                (payout_id, current, rule.target, reason, tx_hash, actor, now),
            )
            if within is not None:
                within(conn)
        # One line per transition, for log pipelines; never the token.
        log.info("payout %s %s -> %s actor=%s", payout_id, current, rule.target, json.dumps(actor))
        return current, rule.target

    def credit(self, user_id: str, amount: Decimal, currency: str, note: str | None = None) -> dict:
        credit = dict(zip(CREDIT_COLUMNS, (
            domain.new_payout_id(), user_id, domain.format_amount(amount), currency, note, domain.utcnow(),
        )))
        with self.db.transaction() as conn:
            conn.execute(self._sql["insert_credit"], tuple(credit.values()))
        return credit

    def create_payout(self, user_id: str, amount: Decimal, currency: str, destination: str) -> dict:
        """A new payout in `requested`; raises WouldOverdraw if it exceeds `available`."""
        with self.db.transaction() as conn:
            self.db.lock_balance(conn, user_id, currency)
            now = domain.utcnow()
            payout = dict(zip(PAYOUT_COLUMNS, (
                domain.new_payout_id(), user_id, domain.format_amount(amount), currency, destination,
                domain.REQUESTED, None, None, now, now,
            )))
            available = self._balances(conn, user_id, currency).get(currency, _ZERO_BALANCE)["available"]
            if amount > available:
                raise domain.WouldOverdraw()
            conn.execute(self._sql["insert_payout"], tuple(payout.values()))
        return payout

    def cancel_payout(self, payout_id: str, actor: str | None = None):
        return self.transition(payout_id, "cancel", actor=actor)

    def bulk_load(self, *, credits=(), payouts=()) -> None:
        """Inserts rows of CREDIT_COLUMNS and PAYOUT_COLUMNS in one transaction,
        as the dialect loads fastest (seed-demo)."""
        with self.db.transaction() as conn:
            self.db.bulk_insert(conn, "credits", CREDIT_COLUMNS, credits)
            self.db.bulk_insert(conn, "payouts", PAYOUT_COLUMNS, payouts)

    # -- idempotency keys ----------------------------------------------------

    def claim_key(self, key: str, fingerprint: str, stale_before: str):
        """None if the caller now owns the key and runs the request; else the
        stored answer (status, body). Raises IdempotencyKeyReused for another
        request's key, IdempotencyKeyInUse while its first request runs (a
        claim older than `stale_before` was lost with its worker: taken over).
        """
        now = domain.utcnow()
        with self.db.transaction() as conn:
            if conn.execute(self._sql["claim_key"], (key, fingerprint, now, now)).rowcount == 1:
                return None
            stored_fingerprint, status, body, claimed_at = conn.execute(self._sql["get_key"], (key,)).fetchone()
            if stored_fingerprint != fingerprint:
                raise domain.IdempotencyKeyReused()
            if status is not None:
                return status, bytes(body)
            if conn.execute(self._sql["take_over_key"], (now, key, stale_before)).rowcount == 1:
                return None
            raise domain.IdempotencyKeyInUse()

    def finish_key(self, key: str, status: int, body: bytes, conn=None) -> None:
        """Stores a claimed key's answer, in `conn`'s transaction if given."""
        if conn is not None:
            conn.execute(self._sql["finish_key"], (status, body, key))
            return
        with self.db.transaction() as own:
            own.execute(self._sql["finish_key"], (status, body, key))

    def release_key(self, key: str) -> None:
        """Forgets an unfinished claim, so that a retry runs the request."""
        with self.db.transaction() as conn:
            conn.execute(self._sql["release_key"], (key,))

    def prune_keys(self, before: str) -> int:
        with self.db.transaction() as conn:
            return conn.execute(self._sql["prune_keys"], (before,)).rowcount

    # -- balances ------------------------------------------------------------

    def _balances(self, conn, user_id: str, currency: str) -> dict[str, dict]:
        rows = conn.execute(self._sql["balance_rows"], (user_id, currency, user_id, currency)).fetchall()
        return balances_from_rows(rows)


_ZERO_BALANCE = {"available": Decimal(0)}


def balances_from_rows(rows) -> dict[str, dict]:
    """{currency: {earned, reserved, sent, available}} as Decimals, from
    (currency, kind, amount, count) rows where kind is 'credit' or a payout status."""
    parts: dict[str, dict[str, list]] = {}
    for currency, kind, amount, _count in rows:
        bucket = "earned" if kind == "credit" else "reserved" if kind in domain.RESERVING else kind
        parts.setdefault(currency, {}).setdefault(bucket, []).append(Decimal(amount))
    result = {}
    for currency, buckets in parts.items():
        sums = {name: domain.money_sum(buckets.get(name, ())) for name in ("earned", "reserved", "sent")}
        sums["available"] = domain.available(sums["earned"], sums["reserved"], sums["sent"])
        result[currency] = sums
    return result


def _payout(row) -> dict:
    payout = dict(zip(PAYOUT_COLUMNS, row))
    payout["amount"] = domain.format_amount(payout["amount"])
    return payout
