"""A database as the previous release left it (schema version 1, no
``schema_migrations`` table): the schema files kept in ``fixtures/schema_v1/``
(copied from 326e296), rows written by raw SQL on either backend, and what
that release answered for them, written down from the rows.

``V1Data`` is the data: credits, payouts in every status with the events of
their transitions, and idempotency keys with their stored answers. Its
methods give the expected answers: the list, the user views, each payout's
events (with or without the creation event that version 2 adds first).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import sqlite3
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures" / "schema_v1"
STATUSES = ("requested", "processing", "sent", "failed", "cancelled")
USER_VIEW_PAYOUTS = 20
_T0 = datetime.datetime(2026, 3, 2, 9, 0, tzinfo=datetime.UTC)
_NAMESPACE = uuid.UUID("6f1c3c52-3d0e-4b7a-9a51-2f4e8b3c1d00")


def at(seconds: float) -> str:
    """A time `seconds` after the data's start, as the service writes times."""
    moment = _T0 + datetime.timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def utcnow() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def fingerprint(action: str, payout_id: str, body: bytes) -> str:
    """The fingerprint the previous release stored with a key: what a retry must repeat."""
    return hashlib.sha256(f"{action}\0{payout_id}\0".encode() + body).hexdigest()


def create_schema(raw: Raw) -> None:
    """The previous release's schema, as its init-db made it: no schema_migrations table."""
    raw.script((FIXTURES / ("postgres.sql" if raw.postgres else "sqlite.sql")).read_text("utf-8"))
    assert raw.tables() == ["credits", "idempotency_keys", "payout_events", "payouts"]


# The events table of version 1, before on_behalf_of.
V1_EVENT_COLUMNS = ("payout_id", "from_status", "to_status", "reason", "tx_hash", "actor", "at")


class Raw:
    """Raw SQL on a database of either backend, qmark parameters on both."""

    def __init__(self, database: str):
        self.postgres = database.startswith(("postgresql://", "postgres://"))
        if self.postgres:
            import psycopg

            self.conn = psycopg.connect(database, autocommit=True)
        else:
            self.conn = sqlite3.connect(database, isolation_level=None)

    def execute(self, sql: str, params=()):
        return self.conn.execute(sql.replace("?", "%s") if self.postgres else sql, params)

    def rows(self, sql: str, params=()) -> list[tuple]:
        return [tuple(row) for row in self.execute(sql, params).fetchall()]

    def script(self, text: str) -> None:
        if self.postgres:
            self.conn.execute(text)
        else:
            self.conn.executescript(text)

    def tables(self) -> list[str]:
        if self.postgres:
            sql = ("SELECT table_name FROM information_schema.tables"
                   " WHERE table_schema = current_schema() ORDER BY table_name")
        else:
            sql = "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
        return [name for (name,) in self.rows(sql)]

    def schema_version(self) -> int | None:
        """max(version) of schema_migrations, None without that table."""
        if "schema_migrations" not in self.tables():
            return None
        return self.rows("SELECT max(version) FROM schema_migrations")[0][0]

    def dump(self) -> list:
        """Everything the database holds: its schema and every row, in a fixed order."""
        if not self.postgres:
            return list(self.conn.iterdump())
        dump: list = sorted(self.rows(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()"))
        dump += sorted(self.rows(
            "SELECT trigger_name, event_manipulation, action_statement FROM information_schema.triggers"
            " WHERE trigger_schema = current_schema()"))
        for table in self.tables():
            columns = self.rows(
                "SELECT column_name, data_type, is_nullable, column_default FROM information_schema.columns"
                " WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position", (table,))
            order = ", ".join(str(i + 1) for i in range(len(columns)))
            dump.append((table, columns, self.rows(f"SELECT * FROM {table} ORDER BY {order}")))
        return dump

    def close(self) -> None:
        self.conn.close()


@dataclass
class Event:
    to_status: str
    reason: str | None
    tx_hash: str | None
    actor: str | None
    at: str


@dataclass
class Payout:
    id: str
    user_id: str
    amount: str
    currency: str
    destination: str
    created_at: str
    events: list[Event] = field(default_factory=list)

    @property
    def status(self) -> str:
        return self.events[-1].to_status if self.events else "requested"

    def _last(self, name: str):
        values = [getattr(e, name) for e in self.events if getattr(e, name) is not None]
        return values[-1] if values else None

    def listed(self) -> dict:
        """The payout as GET .../payouts shows it."""
        return {
            "id": self.id, "user_id": self.user_id, "amount": self.amount, "currency": self.currency,
            "destination": self.destination, "status": self.status, "reason": self._last("reason"),
            "tx_hash": self._last("tx_hash"), "created_at": self.created_at,
            "updated_at": self.events[-1].at if self.events else self.created_at,
        }

    def history(self, *, creation: bool) -> list[dict]:
        """Its events as GET .../payouts/{id}/events shows them, oldest first;
        `creation`: with version 2's creation event first."""
        events = []
        if creation:
            events.append({"payout_id": self.id, "from_status": None, "to_status": "requested",
                           "reason": None, "tx_hash": None, "actor": None, "at": self.created_at,
                           "on_behalf_of": None})
        state = "requested"
        for e in self.events:
            events.append({"payout_id": self.id, "from_status": state, "to_status": e.to_status,
                           "reason": e.reason, "tx_hash": e.tx_hash, "actor": e.actor, "at": e.at,
                           "on_behalf_of": None})
            state = e.to_status
        return events


@dataclass
class Credit:
    id: str
    user_id: str
    amount: str
    currency: str
    note: str | None
    created_at: str


@dataclass
class Key:
    """An idempotency key as stored: status and body None while its first request runs."""

    key: str
    action: str
    payout_id: str
    request_body: bytes
    status: int | None
    body: bytes | None
    created_at: str

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.action, self.payout_id, self.request_body)


# Histories, each (to_status, reason, tx_hash, actor) in order: every status,
# every way of reaching it, reasons and actors with quotes and non-ASCII text.
HISTORIES = [
    [],
    [("processing", None, None, "maria")],
    [("sent", None, "0xaaa111", "maria")],
    [("processing", None, None, None), ("sent", None, "0xbbb222", "jo")],
    [("failed", "destination wallet rejected the transfer", None, "mária")],
    [("processing", None, None, "ops"), ("failed", "timeout «node 7»", None, "ops")],
    [("failed", None, None, None)],
    [("cancelled", None, None, "root")],
    [("processing", None, None, "maria"), ("failed", 'a "quoted" \\ reason', None, None)],
]
AMOUNTS = ["10.00", "0.000001", "12.5", "100", "7.10", "3.333"]
PAYOUT_COUNT = 32


def _id(name: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, name))


class V1Data:
    """The rows of the v1 database, and the answers they make."""

    def __init__(self) -> None:
        self.credits = [
            Credit(_id("credit-1"), "alice", "1000.00", "USDT", "march referrals", at(-3000)),
            Credit(_id("credit-2"), "alice", "250.50", "USDT", None, at(-2000)),
            Credit(_id("credit-3"), "alice", "500", "EUR", "Prämie «Q1»", at(-1000)),
            Credit(_id("credit-4"), "bob", "300.00", "USDT", "référence", at(-900)),
            Credit(_id("credit-5"), "carol", "15.25", "USDT", None, at(-800)),
        ]
        self.payouts: list[Payout] = []
        for i in range(PAYOUT_COUNT):
            user = "bob" if i % 4 == 3 else "alice"
            currency = "EUR" if user == "alice" and i % 5 == 2 else "USDT"
            # Payouts 10 and 11 share a creation time: the list orders them by id.
            created = 60.0 * (10 if i == 11 else i)
            payout = Payout(_id(f"payout-{i}"), user, AMOUNTS[i % len(AMOUNTS)], currency,
                            f"0xdest{i:02d}", at(created))
            # Each change 90 s after the one before: histories interleave with
            # the next payouts' creations.
            for k, (to, reason, tx_hash, actor) in enumerate(HISTORIES[i % len(HISTORIES)]):
                payout.events.append(Event(to, reason, tx_hash, actor, at(created + 90 * (k + 1) + i / 1000)))
            self.payouts.append(payout)
        by_history = {i: self.payouts[i] for i in range(len(HISTORIES))}
        self.sent_payout = by_history[2]        # sent straight from requested
        self.failed_payout = by_history[4]      # failed with a reason
        self.settled_failed = by_history[6]     # failed without a reason
        self.processing_payout = by_history[1]
        self.requested_payout = by_history[0]
        # The exact bytes the previous release stored (its answers end with a newline).
        ok = b'{"ok":true}\n'
        not_actionable = b'{"error":"payout_not_actionable"}\n'
        self.keys = [
            # A 200 stored for a payout that is settled now: only a replay answers 200 again.
            Key("k-sent-0001", "sent", self.sent_payout.id, b'{"tx_hash": "0xaaa111"}', 200, ok, at(100)),
            Key("k-failed-0002", "failed", self.failed_payout.id,
                json.dumps({"reason": "destination wallet rejected the transfer"}).encode(), 200, ok, at(400)),
            # A refusal stored as the first answer.
            Key("k-refused-0003", "processing", self.settled_failed.id, b"", 409, not_actionable, at(500)),
        ]
        # A key whose first request is still running (claimed now, so not stale).
        self.running_key = Key("k-running-0004", "processing", self.requested_payout.id, b"", None, None, utcnow())
        # Every status, reached every way the state machine allows.
        assert {p.status for p in self.payouts} == set(STATUSES)
        assert {(e["from_status"], e["to_status"]) for p in self.payouts for e in p.history(creation=False)} == {
            ("requested", "processing"), ("requested", "sent"), ("requested", "failed"),
            ("requested", "cancelled"), ("processing", "sent"), ("processing", "failed")}
        assert len(self.listed(user_id="alice")) > USER_VIEW_PAYOUTS

    # -- writing it ----------------------------------------------------------

    def create(self, database: str) -> None:
        """Makes `database` (empty) a version-1 database holding these rows."""
        raw = Raw(database)
        try:
            create_schema(raw)
            self.insert(raw)
        finally:
            raw.close()

    def insert(self, raw: Raw) -> None:
        for c in self.credits:
            raw.execute("INSERT INTO credits (id, user_id, currency, amount, note, created_at)"
                        " VALUES (?, ?, ?, ?, ?, ?)", (c.id, c.user_id, c.currency, c.amount, c.note, c.created_at))
        for p in self.payouts:
            row = p.listed()
            raw.execute(
                "INSERT INTO payouts (id, user_id, amount, currency, destination, status, reason, tx_hash,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", tuple(row.values()))
        # Events in the order the previous release wrote them: commit order, i.e. by time.
        for e in sorted((e for p in self.payouts for e in p.history(creation=False)), key=lambda e: e["at"]):
            raw.execute("INSERT INTO payout_events (payout_id, from_status, to_status, reason, tx_hash, actor, at)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?)", tuple(e[name] for name in V1_EVENT_COLUMNS))
        for k in [*self.keys, self.running_key]:
            raw.execute("INSERT INTO idempotency_keys (key, fingerprint, status, body, created_at, claimed_at)"
                        " VALUES (?, ?, ?, ?, ?, ?)",
                        (k.key, k.fingerprint, k.status, k.body, k.created_at, k.created_at))

    # -- what it answers -----------------------------------------------------

    def event_count(self) -> int:
        return sum(len(p.events) for p in self.payouts)

    def payout(self, payout_id: str) -> Payout:
        [payout] = [p for p in self.payouts if p.id == payout_id]
        return payout

    def listed(self, *, status: str | None = None, user_id: str | None = None) -> list[dict]:
        """GET .../payouts with these filters, every page: newest first, ties by id."""
        rows = [p.listed() for p in self.payouts
                if status in (None, p.status) and user_id in (None, p.user_id)]
        return sorted(rows, key=lambda r: (r["created_at"], r["id"]), reverse=True)

    def users(self) -> list[str]:
        return sorted({c.user_id for c in self.credits} | {p.user_id for p in self.payouts})

    def user_view(self, user_id: str) -> dict:
        """GET .../users/{user_id}."""
        balances: dict[str, dict[str, Decimal]] = {}

        def balance(currency):
            return balances.setdefault(currency, {"earned": Decimal(0), "reserved": Decimal(0), "sent": Decimal(0)})

        for c in self.credits:
            if c.user_id == user_id:
                balance(c.currency)["earned"] += Decimal(c.amount)
        counts = dict.fromkeys(STATUSES, 0)
        for p in self.payouts:
            if p.user_id != user_id:
                continue
            counts[p.status] += 1
            kind = {"requested": "reserved", "processing": "reserved", "sent": "sent"}.get(p.status)
            b = balance(p.currency)
            if kind is not None:
                b[kind] += Decimal(p.amount)
        return {
            "user_id": user_id,
            "balances": [
                {"currency": currency, **{name: format(value, "f") for name, value in b.items()},
                 "available": format(b["earned"] - b["reserved"] - b["sent"], "f")}
                for currency, b in sorted(balances.items())
            ],
            "counts": counts,
            "payouts": self.listed(user_id=user_id)[:USER_VIEW_PAYOUTS],
        }

    def credit_rows(self) -> list[tuple]:
        """Every credit as (id, user_id, currency, amount, note, created_at), by id."""
        return sorted((c.id, c.user_id, c.currency, c.amount, c.note, c.created_at) for c in self.credits)
