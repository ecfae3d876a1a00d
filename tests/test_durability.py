"""SQLite durability: every write transaction is on disk before it returns.

COMMIT only writes the write-ahead log (synchronous=NORMAL); the transaction
then syncs the log itself, after releasing the writers' lock (group commit).
These tests watch the syncs: which file, when, and what a failed one does.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from decimal import Decimal

import pytest
import webtest
from conftest import AUTH, PAYOUTS, TOKEN

from triport_payouts import create_app
from triport_payouts.db import open_database
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
            self.syncs.append({"lock_free": self._lock_free(), "statuses": self._statuses()})
            if self.fail:
                raise OSError(5, "Input/output error")
        self._real(fd)

    def _lock_free(self) -> bool:
        fd = os.open(self.path + ".lock", os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False
        finally:
            os.close(fd)

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


def test_a_failed_sync_is_never_answered_200(monkeypatch, setup, sqlite_path, caplog):
    setup.credit("alice", Decimal("10"), "USDT")
    payout = setup.create_payout("alice", Decimal("10"), "USDT", "0xdest")["id"]
    watch = SyncWatch(monkeypatch, sqlite_path)
    watch.fail = True
    app = create_app(database=sqlite_path, admin_token=TOKEN)
    try:
        response = webtest.TestApp(app, lint=True).post_json(
            f"{PAYOUTS}/{payout}/failed", {"reason": "x"}, headers=AUTH, status=500
        )
    finally:
        app.repository.db.close()
    assert response.json == {"error": "internal"}
    assert len(watch.syncs) == 1
    assert "Input/output error" in caplog.text


def test_init_db_syncs_the_schema(monkeypatch, tmp_path):
    path = str(tmp_path / "fresh.sqlite3")
    watch = SyncWatch(monkeypatch, path)
    db = open_database(path)
    try:
        db.init_schema()
    finally:
        db.close()
    assert len(watch.syncs) == 1


def test_a_database_that_cannot_use_a_log_syncs_every_commit(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    db = open_database(":memory:")
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
