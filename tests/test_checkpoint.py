"""SQLite checkpoints: the app's connections copy the write-ahead log into the
database file themselves, after releasing the writers' lock, so that a
checkpoint never holds up the writers queued behind it, and the log stays
bounded as SQLite's own automatic checkpoint keeps it."""

from __future__ import annotations

import os
import shutil
import sqlite3
import threading
from decimal import Decimal

import pytest
from helpers import lock_free

from triport_payouts import domain
from triport_payouts.db import open_database, sqlite
from triport_payouts.repository import Repository


@pytest.fixture
def path(tmp_path, sqlite_template):
    path = str(tmp_path / "checkpoint.sqlite3")
    shutil.copyfile(sqlite_template, path)
    return path


@pytest.fixture
def repo(path):
    db = open_database(path)
    yield Repository(db)
    db.close()


def payouts(repo: Repository, count: int) -> list[str]:
    repo.credit("alice", Decimal(count), "USDT")
    return [repo.create_payout("alice", Decimal(1), "USDT", "0xdest")["id"] for _ in range(count)]


def test_sqlites_own_checkpoint_is_off_on_the_apps_connections(repo):
    conn = repo.db.connection()
    assert conn.execute("PRAGMA wal_autocheckpoint").fetchone() == (0,)
    assert conn.execute("PRAGMA temp_store").fetchone() == (2,)  # statement journals in memory


def test_a_connection_checkpoints_after_every_hundred_commits_with_the_lock_free(monkeypatch, repo, path):
    ids = payouts(repo, 2 * sqlite.CHECKPOINT_EVERY)  # one credit and a payout each: 201 commits so far
    seen = []
    real = sqlite.SQLiteDatabase.checkpoint

    def watched(db, conn):
        seen.append(lock_free(path))
        real(db, conn)

    monkeypatch.setattr(sqlite.SQLiteDatabase, "checkpoint", watched)
    for payout in ids:
        repo.transition(payout, "failed", reason="x")
    # 201 + 200 commits: the connection checkpointed at its 300th and 400th.
    assert seen == [True, True]


def test_the_log_stays_bounded_and_loses_nothing(repo, path):
    ids = payouts(repo, 5 * sqlite.CHECKPOINT_EVERY)
    wal = path + "-wal"
    with sqlite3.connect(path) as other:  # the log emptied: what follows is the transitions'
        assert other.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
    assert os.path.getsize(wal) == 0
    sizes = []
    for i, payout in enumerate(ids, 1):
        repo.transition(payout, "failed", reason="x")
        if i % sqlite.CHECKPOINT_EVERY == 0:
            sizes.append(os.path.getsize(wal))
    # The log is written again from its start once checkpointed: its size
    # is what about CHECKPOINT_EVERY commits take, not what all of them did.
    assert max(sizes) < 2 * sizes[0]
    with sqlite3.connect(path) as other:
        assert other.execute("SELECT status, count(*) FROM payouts GROUP BY status").fetchall() == [
            ("failed", len(ids))
        ]
        assert other.execute("SELECT count(*) FROM payout_events").fetchone() == (2 * len(ids),)


def test_a_checkpoint_that_fails_fails_no_write(monkeypatch, repo, path, caplog):
    ids = payouts(repo, 2)
    repo.db.connection().commits = sqlite.CHECKPOINT_EVERY - 1
    real_execute = sqlite._LockingConnection.execute

    def execute(conn, sql, *args):
        if "wal_checkpoint" in sql:
            raise sqlite3.OperationalError("disk I/O error")
        return real_execute(conn, sql, *args)

    monkeypatch.setattr(sqlite._LockingConnection, "execute", execute)
    assert repo.transition(ids[0], "failed", reason="x") == (domain.REQUESTED, "failed")
    assert "checkpoint of" in caplog.text
    assert repo.db.connection().commits == 0
    assert repo.get_payout(ids[0])["status"] == "failed"


def test_the_log_stays_bounded_under_concurrent_writers(path):
    """Writers appending while a connection checkpoints leave the log never
    wholly copied: the log would only grow, but for the rest of the copy
    that the connection's next write does under the lock."""
    setup = Repository(open_database(path))
    per_thread, threads = 5 * sqlite.CHECKPOINT_EVERY, 4
    ids = payouts(setup, per_thread * threads)
    setup.db.close()
    with sqlite3.connect(path) as other:
        other.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db = open_database(path)  # a connection per thread, as gunicorn's threads would have
    repo = Repository(db)
    start = threading.Barrier(threads)

    def write(share):
        start.wait()
        for payout in share:
            repo.transition(payout, "failed", reason="x")

    try:
        workers = [threading.Thread(target=write, args=(ids[i::threads],)) for i in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        frames = os.path.getsize(path + "-wal") // (4096 + 24)
        statuses = repo.db.connection().execute("SELECT status, count(*) FROM payouts GROUP BY status").fetchall()
    finally:
        db.close()
    assert statuses == [("failed", len(ids))]
    # Each transition writes about 13 pages to the log here: kept whole,
    # the log would hold as many frames for each; started over, it holds
    # what a few hundred transitions wrote (about 2.5 a transition here).
    assert frames < 6 * len(ids)
