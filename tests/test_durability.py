"""SQLite durability: every write transaction is on disk before it returns.

COMMIT only writes the write-ahead log (synchronous=NORMAL); the transaction
then syncs the log itself, after releasing the writers' lock (group commit).
These tests watch the syncs: which file, when, and what a failed one does.
"""

from __future__ import annotations

import os
import sqlite3
from decimal import Decimal

import pytest
import webtest
from helpers import AUTH, PAYOUTS, TOKEN, lock_free

from triport_payouts import create_app
from triport_payouts.cli import main
from triport_payouts.db import SCHEMA_VERSION, DatabaseUnavailable, open_database
from triport_payouts.repository import Repository


class SyncWatch:
    """Stands in for os.fdatasync: records each sync of the database's log,
    with what the database and the writers' lock look like at that moment."""

    def __init__(self, monkeypatch, path: str):
        self.path = path
        self.syncs: list[dict] = []
        self.fail = False
        self._real = os.fdatasync
        monkeypatch.setattr(os, "fdatasync", self)

    def __call__(self, fd: int) -> None:
        if os.path.exists(self.path + "-wal") and os.path.samestat(os.fstat(fd), os.stat(self.path + "-wal")):
            self.syncs.append({"lock_free": lock_free(self.path), "statuses": self._statuses()})
            if self.fail:
                raise OSError(5, "Input/output error")
        self._real(fd)

    def _statuses(self) -> dict:
        # Another connection, as another worker would read.
        with sqlite3.connect(self.path) as conn:
            return dict(conn.execute("SELECT id, status FROM payouts").fetchall())


@pytest.fixture
def sqlite_path(tmp_path):
    path = str(tmp_path / "durable.sqlite3")
    db = open_database(path)
    db.init_schema()
    db.close()
    return path


@pytest.fixture
def setup(sqlite_path):
    db = open_database(sqlite_path)
    repo = Repository(db)
    yield repo
    db.close()


def test_connections_write_the_log_and_sync_it_themselves(sqlite_path):
    db = open_database(sqlite_path)
    try:
        conn = db.connection()
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL: COMMIT does not sync
        assert conn.wal_path == os.path.realpath(sqlite_path) + "-wal"
    finally:
        db.close()


def test_a_transition_is_synced_after_its_commit_outside_the_lock_before_the_answer(
    monkeypatch, setup, sqlite_path
):
    setup.credit("alice", Decimal("10"), "USDT")
    payout = setup.create_payout("alice", Decimal("10"), "USDT", "0xdest")["id"]
    app = create_app(database=sqlite_path, admin_token=TOKEN)
    client = webtest.TestApp(app, lint=True)
    watch = SyncWatch(monkeypatch, sqlite_path)
    try:
        client.post_json(f"{PAYOUTS}/{payout}/failed", {"reason": "rejected"}, headers=AUTH, status=200)
    finally:
        app.repository.db.close()
    # One sync, once the commit was visible to others and the writers' lock
    # free again (the next writer commits while this one waits on the disk);
    # the answer came after it, as the sync ran inside the call.
    assert watch.syncs == [{"lock_free": True, "statuses": {payout: "failed"}}]


def test_every_kind_of_write_is_synced(monkeypatch, setup, sqlite_path):
    watch = SyncWatch(monkeypatch, sqlite_path)
    setup.credit("alice", Decimal("30"), "USDT")
    first = setup.create_payout("alice", Decimal("10"), "USDT", "0xdest")["id"]
    second = setup.create_payout("alice", Decimal("10"), "USDT", "0xdest")["id"]
    setup.cancel_payout(second)
    setup.transition(first, "processing")
    assert len(watch.syncs) == 5
    assert watch.syncs[-1]["statuses"] == {first: "processing", second: "cancelled"}


def test_a_refused_transition_syncs_nothing(monkeypatch, setup, sqlite_path):
    setup.credit("alice", Decimal("10"), "USDT")
    payout = setup.create_payout("alice", Decimal("10"), "USDT", "0xdest")["id"]
    setup.cancel_payout(payout)
    watch = SyncWatch(monkeypatch, sqlite_path)
    app = create_app(database=sqlite_path, admin_token=TOKEN)
    try:
        webtest.TestApp(app, lint=True).post(f"{PAYOUTS}/{payout}/processing", headers=AUTH, status=409)
    finally:
        app.repository.db.close()
    assert watch.syncs == []


def test_a_failed_sync_stops_the_database_for_every_process_until_an_operator_clears_it(
    monkeypatch, setup, sqlite_path, caplog, capsys
):
    # Linux reports a failed writeback once and may drop the pages: a retry
    # that synced "successfully" would answer 200 for a commit that is lost.
    setup.credit("alice", Decimal("10"), "USDT")
    payout = setup.create_payout("alice", Decimal("10"), "USDT", "0xdest")["id"]
    watch = SyncWatch(monkeypatch, sqlite_path)
    watch.fail = True
    app = create_app(database=sqlite_path, admin_token=TOKEN)
    client = webtest.TestApp(app, lint=True)
    retry = {**AUTH, "Idempotency-Key": "attempt-1"}
    try:
        first = client.post_json(f"{PAYOUTS}/{payout}/failed", {"reason": "x"}, headers=retry, status=503)
        watch.fail = False  # the next sync would "succeed": the retry must not be answered 200
        again = client.post_json(f"{PAYOUTS}/{payout}/failed", {"reason": "x"}, headers=retry, status=503)
        read = client.get(f"{PAYOUTS}/{payout}/events", headers=AUTH, status=503)
        client.get("/readyz", status=503)
    finally:
        app.repository.db.close()
    assert first.json == again.json == read.json == {"error": "database_unavailable"}
    assert len(watch.syncs) == 1
    critical = [r for r in caplog.records if r.levelname == "CRITICAL"]
    assert len(critical) == 1 and "Input/output error" in critical[0].getMessage()

    # Another process (a new app here; another worker, a restart, the CLI)
    # refuses too, while the marker beside the database is there.
    marker = sqlite_path + ".sync-failed"
    assert "Input/output error" in open(marker, encoding="utf-8").read()
    other = create_app(database=sqlite_path, admin_token=TOKEN)
    try:
        webtest.TestApp(other, lint=True).get("/readyz", status=503)
    finally:
        other.repository.db.close()
    assert main(["credit", "--user-id", "bob", "--amount", "1", "--currency", "USDT"],
                {"TRIPORT_DATABASE": sqlite_path}) == 1
    assert "a sync of the log failed earlier" in capsys.readouterr().err

    os.remove(marker)  # the operator, once the disk is checked
    healthy = create_app(database=sqlite_path, admin_token=TOKEN)
    try:
        webtest.TestApp(healthy, lint=True).get("/readyz", status=200)
    finally:
        healthy.repository.db.close()


def test_a_writer_with_an_open_connection_stops_at_the_marker(monkeypatch, setup, sqlite_path):
    setup.credit("alice", Decimal("1"), "USDT")  # this process's connection is open
    with open(sqlite_path + ".sync-failed", "w", encoding="utf-8") as marker:
        marker.write("another worker's sync failed\n")
    with pytest.raises(DatabaseUnavailable):
        setup.credit("alice", Decimal("1"), "USDT")
    with pytest.raises(DatabaseUnavailable):
        setup.db.ping()


def test_init_db_syncs_the_schema(monkeypatch, tmp_path):
    path = str(tmp_path / "fresh.sqlite3")
    watch = SyncWatch(monkeypatch, path)
    db = open_database(path)
    try:
        db.init_schema()
    finally:
        db.close()
    # One per step of the schema: each is its own transaction.
    assert len(watch.syncs) == SCHEMA_VERSION


def test_a_database_that_cannot_use_a_log_syncs_every_commit(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    db = open_database(":memory:")
    db.checks_schema = False  # an empty database: only its connection is looked at
    try:
        conn = db.connection()
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("memory",)
        assert conn.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
        assert conn.wal_path is None
        conn.sync_log()  # nothing to do, and no file to open
        assert conn.lock_fd is None
    finally:
        db.close()
    assert list(tmp_path.iterdir()) == []


def test_each_connection_syncs_the_log_it_writes_through_one_descriptor(monkeypatch, setup, sqlite_path):
    watch = SyncWatch(monkeypatch, sqlite_path)
    for user in ("alice", "bob", "carol"):
        setup.credit(user, Decimal("1"), "USDT")
    assert len(watch.syncs) == 3
    conn = setup.db.connection()
    assert os.path.samestat(os.fstat(conn._wal_fd), os.stat(sqlite_path + "-wal"))
    opened = conn._wal_fd
    setup.credit("dave", Decimal("1"), "USDT")
    assert conn._wal_fd == opened
    setup.db.close()
    with pytest.raises(OSError):
        os.fstat(opened)  # closed with its connection
