"""Webhook endpoints and their deliveries: every statement on the webhook
tables. The outbox is filled by the schema (a trigger on payout_events, in
each event's own transaction: ``db/sql/<dialect>/0003_webhooks.sql``).

The outbox's rows are moved into ``webhook_deliveries`` (``accept``) by
the delivery process each round, and before any command reads deliveries.
What the ``webhook`` commands do (add, list, remove, rotate-secret, enable,
deliveries, redeliver, prune) and the bookkeeping of the delivery process
(``delivery.py``): leasing a due delivery, recording an attempt, disabling an
endpoint. Raises ``InvalidWebhookInput`` (a usage error) for a bad URL,
event type or event id, and the domain refusals ``EndpointNotFound`` and
``EventNotFound``. What ``copy-data`` moves of these tables (``copied``).
SQL text is built only from the constants here.
"""

from __future__ import annotations

import datetime
import logging
import urllib.parse
import uuid
from typing import NamedTuple

from . import domain, signing
from .db import Database

log = logging.getLogger("triport_payouts")

EVENT_TYPES = tuple(domain.EVENT_TYPES)
# A rotated-out secret still signs for this long, beside the new one.
ROTATION_OVERLAP = datetime.timedelta(hours=24)
# An endpoint that failed every attempt for this long is disabled.
FAILING_LIMIT = datetime.timedelta(days=5)
MAX_URL = 2048
ENDPOINT_COLUMNS = ("id", "url", "secret", "previous_secret", "previous_until", "enabled", "disabled_reason",
                    "failing_since", "created_at")
# What copy-data moves, in this order: the endpoints with their secrets (the
# new database serves the same receivers) and their subscriptions, with the
# columns and the order rows are read in. Not the outbox or the deliveries:
# they describe sending from the old database.
COPIED_TABLES = {
    "webhook_endpoints": (ENDPOINT_COLUMNS, "created_at, id"),
    "webhook_subscriptions": (("type", "endpoint_id"), "endpoint_id, type"),
}
# prune deletes this many rows a transaction: on SQLite the writers of the
# 200 path wait for one batch at most, not for the whole history.
PRUNE_BATCH = 1000

SQL = {
    "add": "INSERT INTO webhook_endpoints (id, url, secret, created_at) VALUES (?, ?, ?, ?)",
    "subscribe": "INSERT INTO webhook_subscriptions (type, endpoint_id) VALUES (?, ?)",
    "endpoints": (
        "SELECT w.id, w.url, w.enabled, w.disabled_reason, w.created_at,"
        " (SELECT count(*) FROM webhook_deliveries d WHERE d.endpoint_id = w.id AND d.status = 'pending'),"
        " (SELECT count(*) FROM webhook_deliveries d WHERE d.endpoint_id = w.id AND d.status = 'failed')"
        " FROM webhook_endpoints w ORDER BY w.created_at, w.id"
    ),
    "subscriptions": "SELECT endpoint_id, type FROM webhook_subscriptions ORDER BY type",
    "remove_deliveries": "DELETE FROM webhook_deliveries WHERE endpoint_id = ?",
    "remove_outbox": "DELETE FROM webhook_outbox WHERE endpoint_id = ?",
    "outbox_waiting": "SELECT 1 FROM webhook_outbox LIMIT 1",
    "remove_subscriptions": "DELETE FROM webhook_subscriptions WHERE endpoint_id = ?",
    "remove": "DELETE FROM webhook_endpoints WHERE id = ?",
    "rotate": (
        "UPDATE webhook_endpoints SET previous_secret = secret, previous_until = ?, secret = ?"
        " WHERE id = ?"
    ),
    "enable": (
        "UPDATE webhook_endpoints SET enabled = 1, disabled_reason = NULL, failing_since = NULL WHERE id = ?"
    ),
    "disable": "UPDATE webhook_endpoints SET enabled = 0, disabled_reason = ? WHERE id = ? AND enabled = 1",
    "event_exists": "SELECT 1 FROM payout_events WHERE id = ?",
    "any_endpoint": "SELECT 1 FROM webhook_endpoints LIMIT 1",
    **{f"copy_{table}": f"SELECT {', '.join(columns)} FROM {table} ORDER BY {order}"
       for table, (columns, order) in COPIED_TABLES.items()},
    # A delivered row's next_attempt_at is the time it was delivered, as its
    # last_attempt_at (record), which lets the due index find the old ones.
    # The status is checked again on the row deleted: PostgreSQL rechecks it
    # on a row another transaction changed meanwhile.
    "prune": (
        "DELETE FROM webhook_deliveries WHERE status = 'delivered' AND id IN ("
        "SELECT id FROM webhook_deliveries WHERE status = 'delivered' AND next_attempt_at < ?"
        " AND last_attempt_at < ? LIMIT ?)"
    ),
    "redeliver": (
        "INSERT INTO webhook_deliveries (endpoint_id, event_id, next_attempt_at, created_at)"
        " SELECT s.endpoint_id, e.id, ?, ? FROM payout_events e"
        " JOIN webhook_subscriptions s ON s.type = 'payout.' || e.to_status"
        " JOIN webhook_endpoints w ON w.id = s.endpoint_id"
        " WHERE e.id = ? AND w.enabled = 1"
    ),
    "deliveries": (
        "SELECT d.id, d.endpoint_id, d.event_id, d.status, d.attempts, d.last_status, d.last_error,"
        " d.last_attempt_at, d.next_attempt_at, d.created_at FROM webhook_deliveries d"
        " WHERE (CAST(? AS TEXT) IS NULL OR d.endpoint_id = ?)"
        " AND (? = 0 OR (d.status <> 'delivered' AND d.attempts > 0))"
        " ORDER BY d.id DESC LIMIT ?"
    ),
    # The delivery process. A delivery is due when pending, its time has come,
    # its endpoint is enabled and no live lease holds it.
    "due": (
        "SELECT d.id FROM webhook_deliveries d JOIN webhook_endpoints w ON w.id = d.endpoint_id"
        " WHERE d.status = 'pending' AND d.next_attempt_at <= ?"
        " AND (d.leased_until IS NULL OR d.leased_until < ?) AND w.enabled = 1"
        " ORDER BY d.next_attempt_at, d.id LIMIT ?"
    ),
    # The claim: of two processes leasing one row, exactly one matches.
    "lease": (
        "UPDATE webhook_deliveries SET leased_until = ?"
        " WHERE id = ? AND status = 'pending' AND (leased_until IS NULL OR leased_until < ?)"
    ),
    "job": (
        "SELECT d.event_id, d.attempts, w.id, w.url, w.secret, w.previous_secret, w.previous_until"
        " FROM webhook_deliveries d JOIN webhook_endpoints w ON w.id = d.endpoint_id WHERE d.id = ?"
    ),
    "record": (
        "UPDATE webhook_deliveries SET status = ?, attempts = attempts + 1, next_attempt_at = ?,"
        " leased_until = NULL, last_status = ?, last_error = ?, last_attempt_at = ? WHERE id = ?"
    ),
    "endpoint_ok": "UPDATE webhook_endpoints SET failing_since = NULL WHERE id = ?",
    "endpoint_failing": (
        "UPDATE webhook_endpoints SET failing_since = coalesce(failing_since, ?) WHERE id = ?"
    ),
    "failing_since": "SELECT failing_since FROM webhook_endpoints WHERE id = ?",
}


# Moving the outbox into webhook_deliveries, in one transaction, every row
# committed so far and no other (the rows of a removed endpoint are dropped).
# SQLite: one writer at a time, so what the INSERT read is what the DELETE
# deletes. PostgreSQL: one statement, one snapshot; a concurrent mover's
# rows are skipped by the DELETE, never moved twice.
_MOVED = (
    "INSERT INTO webhook_deliveries (endpoint_id, event_id, next_attempt_at, created_at)"
    " SELECT o.endpoint_id, o.event_id, o.created_at, o.created_at FROM {source} o"
    " JOIN webhook_endpoints w ON w.id = o.endpoint_id ORDER BY o.id"
)
ACCEPT = {
    "sqlite": (_MOVED.format(source="webhook_outbox"), "DELETE FROM webhook_outbox"),
    "postgres": ("WITH moved AS (DELETE FROM webhook_outbox RETURNING id, endpoint_id, event_id, created_at) "
                 + _MOVED.format(source="moved"),),
}


class InvalidWebhookInput(ValueError):
    """A command-line argument that cannot be used (a usage error)."""


class EndpointNotFound(domain.DomainError):
    """no webhook endpoint has that id"""


class EventNotFound(domain.DomainError):
    """no event has that id"""


class Job(NamedTuple):
    """What sending one delivery needs."""

    delivery_id: int
    event_id: int
    attempts: int  # made before this one
    endpoint_id: str
    url: str
    secrets: list[str]


def parse_url(text: str) -> str:
    """An http or https URL with a host; raises InvalidWebhookInput."""
    if len(text) > MAX_URL or any(ch.isspace() or not ch.isprintable() for ch in text):
        raise InvalidWebhookInput(f"invalid webhook URL {text[:80]!r}: at most {MAX_URL} printable characters,"
                                  " no spaces")
    try:
        parts = urllib.parse.urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise InvalidWebhookInput(f"invalid webhook URL {text!r}") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidWebhookInput(f"invalid webhook URL {text!r}: only http:// and https:// are delivered to")
    if not parts.hostname:
        raise InvalidWebhookInput(f"invalid webhook URL {text!r}: no host")
    return text


def parse_events(text: str | None) -> tuple[str, ...]:
    """Comma-separated event types (every type when None); raises InvalidWebhookInput."""
    if text is None:
        return EVENT_TYPES
    types = tuple(dict.fromkeys(part.strip() for part in text.split(",")))
    unknown = [name for name in types if name not in EVENT_TYPES]
    if unknown or not types:
        raise InvalidWebhookInput(f"unknown event type {', '.join(map(repr, unknown)) or repr(text)}:"
                                  f" one or more of {','.join(EVENT_TYPES)}")
    return types


def parse_event_id(text: str) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise InvalidWebhookInput(f"invalid event id {text!r}: the feed's ids are whole numbers")
    return int(text)


def at(seconds: float = 0.0) -> str:
    """A time `seconds` from now, as domain.utcnow() writes times (sorts as text)."""
    return domain.utc_in(datetime.timedelta(seconds=seconds))


class Webhooks:
    """The webhook tables of one database."""

    def __init__(self, db: Database):
        self.db = db
        self._sql = {name: db.sql(text) for name, text in SQL.items()}
        self._accept = ACCEPT[db.dialect]

    def accept(self) -> None:
        """Moves what the outbox holds into webhook_deliveries (nothing, and no
        write transaction, when it is empty)."""
        if self.db.connection().execute(self._sql["outbox_waiting"]).fetchone() is None:
            return
        with self.db.transaction() as conn:
            for statement in self._accept:
                conn.execute(statement)

    # -- the commands ----------------------------------------------------------

    def add(self, url: str, events: tuple[str, ...]) -> dict:
        """Registers an endpoint; returns it with its secret (shown this once)."""
        endpoint = {"id": str(uuid.uuid4()), "url": url, "events": list(events), "enabled": True,
                    "secret": signing.new_secret()}
        with self.db.transaction() as conn:
            conn.execute(self._sql["add"], (endpoint["id"], url, endpoint["secret"], domain.utcnow()))
            for event_type in events:
                conn.execute(self._sql["subscribe"], (event_type, endpoint["id"]))
        return endpoint

    def endpoints(self) -> list[dict]:
        """Every endpoint, oldest first, without secrets, with its pending and failed deliveries."""
        self.accept()
        conn = self.db.connection()
        events: dict[str, list[str]] = {}
        for endpoint_id, event_type in conn.execute(self._sql["subscriptions"]).fetchall():
            events.setdefault(endpoint_id, []).append(event_type)
        return [
            {"id": endpoint_id, "url": url, "events": events.get(endpoint_id, []), "enabled": bool(enabled),
             "disabled_reason": reason, "created_at": created_at, "pending": pending, "failed": failed}
            for endpoint_id, url, enabled, reason, created_at, pending, failed
            in conn.execute(self._sql["endpoints"]).fetchall()
        ]

    def remove(self, endpoint_id: str) -> None:
        """Deletes an endpoint with its subscriptions and deliveries; raises EndpointNotFound."""
        with self.db.transaction() as conn:
            conn.execute(self._sql["remove_outbox"], (endpoint_id,))
            conn.execute(self._sql["remove_deliveries"], (endpoint_id,))
            conn.execute(self._sql["remove_subscriptions"], (endpoint_id,))
            if conn.execute(self._sql["remove"], (endpoint_id,)).rowcount != 1:
                raise EndpointNotFound()

    def rotate_secret(self, endpoint_id: str) -> dict:
        """A new secret; the old one keeps signing beside it for ROTATION_OVERLAP.
        Raises EndpointNotFound."""
        secret = signing.new_secret()
        until = at(ROTATION_OVERLAP.total_seconds())
        with self.db.transaction() as conn:
            if conn.execute(self._sql["rotate"], (until, secret, endpoint_id)).rowcount != 1:
                raise EndpointNotFound()
        return {"id": endpoint_id, "secret": secret, "previous_secret_until": until}

    def enable(self, endpoint_id: str) -> None:
        """Enables an endpoint again (its pending deliveries resume); raises EndpointNotFound."""
        with self.db.transaction() as conn:
            if conn.execute(self._sql["enable"], (endpoint_id,)).rowcount != 1:
                raise EndpointNotFound()

    def deliveries(self, *, endpoint_id: str | None = None, failed: bool = False, limit: int = 100) -> list[dict]:
        """The newest deliveries (of one endpoint; only those whose last attempt failed)."""
        self.accept()
        rows = self.db.connection().execute(
            self._sql["deliveries"], (endpoint_id, endpoint_id, int(failed), limit)).fetchall()
        names = ("id", "endpoint_id", "event_id", "status", "attempts", "last_status", "last_error",
                 "last_attempt_at", "next_attempt_at", "created_at")
        return [{**dict(zip(names, row)), "event_id": str(row[2])} for row in rows]

    def redeliver(self, event_id: int) -> int:
        """Queues the event again for every enabled endpoint subscribed to its
        type; returns how many. Raises EventNotFound."""
        now = domain.utcnow()
        with self.db.transaction() as conn:
            if conn.execute(self._sql["event_exists"], (event_id,)).fetchone() is None:
                raise EventNotFound()
            return conn.execute(self._sql["redeliver"], (now, now, event_id)).rowcount

    def prune(self, older_than: datetime.timedelta) -> int:
        """Deletes the deliveries delivered more than `older_than` ago, never
        a pending or failed one; returns how many. A batch a transaction: safe
        beside ``serve`` and ``deliver``, which only change pending rows."""
        before = at(-older_than.total_seconds())
        removed = 0
        while True:
            with self.db.transaction() as conn:
                batch = conn.execute(self._sql["prune"], (before, before, PRUNE_BATCH)).rowcount
            removed += batch
            if batch < PRUNE_BATCH:
                return removed

    # -- copy-data ---------------------------------------------------------------

    def has_endpoints(self, conn) -> bool:
        """Whether any endpoint is registered, read in `conn`'s transaction."""
        return conn.execute(self._sql["any_endpoint"]).fetchone() is not None

    def copied(self, snapshot, batch: int):
        """(table, columns, rows) for each list of at most `batch` rows of
        COPIED_TABLES, in order, read in `snapshot` (Repository.snapshot)."""
        for table, (columns, _order) in COPIED_TABLES.items():
            for rows in snapshot.rows(self._sql[f"copy_{table}"], batch):
                yield table, columns, rows

    # -- the delivery process ----------------------------------------------------

    def due(self, limit: int) -> list[int]:
        """Ids of deliveries due now, soonest first (not leased yet: see lease()),
        the outbox moved in first."""
        self.accept()
        now = domain.utcnow()
        return [row[0] for row in self.db.connection().execute(self._sql["due"], (now, now, limit)).fetchall()]

    def lease(self, delivery_id: int, seconds: float) -> Job | None:
        """Claims a due delivery for `seconds` in one short transaction: the
        job, or None when another process holds it or it is done."""
        now = domain.utcnow()
        with self.db.transaction() as conn:
            if conn.execute(self._sql["lease"], (at(seconds), delivery_id, now)).rowcount != 1:
                return None
            event_id, attempts, endpoint_id, url, secret, previous, previous_until = conn.execute(
                self._sql["job"], (delivery_id,)).fetchone()
        secrets = [secret] if previous is None or previous_until <= now else [secret, previous]
        return Job(delivery_id, int(event_id), attempts, endpoint_id, url, secrets)

    def record(self, job: Job, *, delivered: bool, retry_in: float | None, status: int | None,
               error: str | None, gone: bool = False) -> None:
        """Records one attempt: delivered, due again in `retry_in` seconds, or
        failed for good (retry_in None). Marks the endpoint failing (disabled
        after FAILING_LIMIT) or healthy, and disables it at once when `gone`."""
        now = domain.utcnow()
        state = "delivered" if delivered else ("pending" if retry_in is not None and not gone else "failed")
        next_at = at(retry_in) if state == "pending" and retry_in is not None else now
        with self.db.transaction() as conn:
            conn.execute(self._sql["record"], (state, next_at, status, error, now, job.delivery_id))
            if delivered:
                conn.execute(self._sql["endpoint_ok"], (job.endpoint_id,))
                return
            conn.execute(self._sql["endpoint_failing"], (now, job.endpoint_id))
            since = conn.execute(self._sql["failing_since"], (job.endpoint_id,)).fetchone()
            reason = None
            if gone:
                reason = "the endpoint answered 410 Gone"
            elif since is not None and since[0] <= at(-FAILING_LIMIT.total_seconds()):
                reason = f"every delivery failed since {since[0]}"
            if reason is not None and conn.execute(self._sql["disable"], (reason, job.endpoint_id)).rowcount:
                log.warning("webhook endpoint %s disabled: %s", job.endpoint_id, reason)
