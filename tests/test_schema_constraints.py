"""The schema's own refusals, under the code: each list of allowed values
(a payout's status, an event's two, a delivery's, a token's scope) takes each
of its values and refuses anything else, and a settled payout stays settled,
on both backends, in a new schema and in one migrated from version 1.

On SQLite no such list is written as ``IN`` with three or more constants:
SQLite builds a temporary index for one on every run of a statement that
tests it (schema step 8).
"""

from __future__ import annotations

import re
import sqlite3

import pytest
from schema_v1 import STATUSES, Raw, V1Data

from triport_payouts.db import open_database

NOW = "2026-12-02T00:00:00.000000Z"
PAYOUT = "01890000-0000-7000-8000-00000000000a"
OTHERS = ("bogus", "Requested", "", " requested")

# An IN list of three or more constants (strings or numbers).
_LONG_IN_LIST = re.compile(r"\bIN\s*\(\s*(?:'[^']*'|\d+)(?:\s*,\s*(?:'[^']*'|\d+)){2,}\s*\)", re.IGNORECASE)


@pytest.fixture(params=["new", "from version 1"])
def raw(request, database_url):
    """Raw SQL on the test database at this release's schema, made new or
    migrated from version 1, with one payout (PAYOUT) and its creation event."""
    if request.param == "from version 1":
        V1Data().create(database_url)
    db = open_database(database_url)
    db.migrate()
    db.close()
    conn = Raw(database_url)
    if not conn.postgres:
        conn.execute("PRAGMA foreign_keys = ON")
    insert_payout(conn, PAYOUT, "requested")
    insert_event(conn, PAYOUT, None, "requested")
    yield conn
    conn.close()


# A payout of a given id and status (a tx_hash, so that "sent" is whole), and an event.
INSERT_PAYOUT = ("INSERT INTO payouts (id, user_id, amount, currency, destination, status, tx_hash, created_at,"
                 " updated_at) VALUES (?, 'schema-user', '1.00', 'USDT', 'wallet', ?, '0xfeed', ?, ?)")
INSERT_EVENT = "INSERT INTO payout_events (payout_id, from_status, to_status, at) VALUES (?, ?, ?, ?)"


def insert_payout(raw: Raw, payout_id: str, status: str) -> None:
    raw.execute(INSERT_PAYOUT, (payout_id, status, NOW, NOW))


def insert_event(raw: Raw, payout_id: str, from_status: str | None, to_status: str) -> None:
    raw.execute(INSERT_EVENT, (payout_id, from_status, to_status, NOW))


def refused(raw: Raw, sql: str, params=()) -> bool:
    """Whether the database refuses the statement (the refusal rolled back)."""
    try:
        raw.execute(sql, params)
    except Exception as exc:  # sqlite3.IntegrityError or psycopg's IntegrityError / RaiseException
        assert "constraint" in str(exc).lower() or "settled" in str(exc), exc
        return True
    return False


def new_id(number: int) -> str:
    return f"01890000-0000-7000-8000-{number:012x}"


def test_a_payout_takes_each_status_and_refuses_any_other(raw):
    for number, status in enumerate(STATUSES, 1):
        insert_payout(raw, new_id(number), status)
    for number, other in enumerate(OTHERS, 100):
        assert refused(raw, INSERT_PAYOUT, (new_id(number), other, NOW, NOW))
        assert refused(raw, "UPDATE payouts SET status = ? WHERE id = ?", (other, PAYOUT))
    assert raw.rows("SELECT status FROM payouts WHERE id = ?", (PAYOUT,)) == [("requested",)]


def test_an_event_takes_each_status_on_either_side_and_refuses_any_other(raw):
    for status in STATUSES[1:]:
        insert_event(raw, PAYOUT, "requested", status)
        insert_event(raw, PAYOUT, status, "failed")
    for other in OTHERS:
        assert refused(raw, INSERT_EVENT, (PAYOUT, "requested", other, NOW))
        assert refused(raw, INSERT_EVENT, (PAYOUT, other, "failed", NOW))
    # The creation event's shape stays checked too: no from_status exactly when to_status is requested.
    assert refused(raw, INSERT_EVENT, (PAYOUT, None, "failed", NOW))
    assert refused(raw, INSERT_EVENT, (PAYOUT, "processing", "requested", NOW))


def test_a_settled_payout_stays_settled(raw):
    for number, status in enumerate(("sent", "failed", "cancelled"), 1):
        insert_payout(raw, new_id(number), status)
        assert refused(raw, "UPDATE payouts SET status = 'requested' WHERE id = ?", (new_id(number),))
        assert refused(raw, "UPDATE payouts SET reason = 'later' WHERE id = ?", (new_id(number),))
    raw.execute("UPDATE payouts SET status = 'processing' WHERE id = ?", (PAYOUT,))
    raw.execute("UPDATE payouts SET status = 'failed' WHERE id = ?", (PAYOUT,))
    assert refused(raw, "UPDATE payouts SET status = 'processing' WHERE id = ?", (PAYOUT,))


def test_a_delivery_takes_each_status_and_refuses_any_other(raw):
    event_id = raw.rows("SELECT id FROM payout_events WHERE payout_id = ?", (PAYOUT,))[0][0]
    raw.execute("INSERT INTO webhook_endpoints (id, url, secret, created_at) VALUES ('e1', 'http://x', 's', ?)", (NOW,))
    deliveries = ("INSERT INTO webhook_deliveries (endpoint_id, event_id, status, next_attempt_at, created_at)"
                  " VALUES ('e1', ?, ?, ?, ?)")
    for status in ("pending", "delivered", "failed"):
        raw.execute(deliveries, (event_id, status, NOW, NOW))
    for other in OTHERS:
        assert refused(raw, deliveries, (event_id, other, NOW, NOW))


def test_a_token_takes_each_scope_and_refuses_any_other(raw):
    tokens = "INSERT INTO operator_tokens (name, scope, token_hash, created_at) VALUES (?, ?, ?, ?)"
    for number, scope in enumerate(("read", "operator", "system", "admin")):
        raw.execute(tokens, (f"op-{number}", scope, f"hash-{number}", NOW))
    for number, other in enumerate(OTHERS):
        assert refused(raw, tokens, (f"other-{number}", other, f"other-hash-{number}", NOW))


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_no_list_of_allowed_values_is_an_in_of_three_or_more_on_sqlite(raw, database_url):
    schema = raw.rows("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL")
    assert {name for name, _ in schema} >= {"payouts", "payout_events", "payouts_terminal_is_final"}
    assert [name for name, sql in schema if _LONG_IN_LIST.search(sql)] == []
    assert raw.rows("PRAGMA integrity_check") == [("ok",)]
    # The stored text itself, as a connection opened afterwards reads it.
    with sqlite3.connect(database_url) as fresh:
        stored = fresh.execute("SELECT sql FROM sqlite_master WHERE name = 'payouts'").fetchone()[0]
        assert "status = 'cancelled'" in stored


EVENT_INSERT = ("INSERT INTO payout_events (payout_id, from_status, to_status, at)"
                " VALUES ('p', 'requested', 'failed', 'at')")


def temporary_indexes(conn, sql: str) -> int:
    """How many temporary tables SQLite's program for `sql` opens."""
    return sum(1 for row in conn.execute("EXPLAIN " + sql) if row[1] == "OpenEphemeral")


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_an_event_insert_builds_no_temporary_index_on_sqlite_even_on_the_connection_that_migrated(database_url):
    db = open_database(database_url)
    db.migrate()
    try:
        assert temporary_indexes(db.connection(), EVENT_INSERT) == 0
    finally:
        db.close()
    with sqlite3.connect(database_url) as fresh:
        assert temporary_indexes(fresh, EVENT_INSERT) == 0


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_connection_open_across_the_migration_reads_the_new_lists(database_url):
    """A connection that read the old schema reads the new lists on its next
    statement: the steps move the schema's version on (step 8 by making its
    trigger again), and SQLite reads the schema again when it changed."""
    V1Data().create(database_url)
    earlier = sqlite3.connect(database_url, isolation_level=None)
    try:
        earlier.execute("SELECT count(*) FROM payouts").fetchone()
        assert temporary_indexes(earlier, EVENT_INSERT) == 2
        db = open_database(database_url)
        db.migrate()
        db.close()
        earlier.execute("SELECT count(*) FROM payouts").fetchone()
        # Another text: sqlite3's statement cache would list the EXPLAIN compiled before.
        assert temporary_indexes(earlier, EVENT_INSERT + " -- after the migration") == 0
    finally:
        earlier.close()
