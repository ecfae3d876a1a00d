"""A database locked past the wait allowed, for real: another process holds
SQLite's write lock (``BEGIN IMMEDIATE``, outside the app's writers' queue),
or another PostgreSQL session holds the payout's row (``FOR UPDATE``). A write
then answers ``503 database_unavailable`` with ``Retry-After`` and one log
line, reads go on, the command line says so in one line, and once the lock
is released the same write succeeds.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from decimal import Decimal

import psycopg
import pytest
import webtest
from helpers import AUTH, PAYOUTS, TOKEN, creation_of
from openapi_check import assert_matches_openapi

from triport_payouts import cli
from triport_payouts import create_app
from triport_payouts.app import App
from triport_payouts.db import open_database, postgres, sqlite
from triport_payouts.errors import RETRY_AFTER
from triport_payouts.repository import Repository

FAILED = "/v1/admin/referrals/payouts/{payout_id}/failed"
WAIT = 0.5  # seconds: the busy timeout, or lock timeout, the tests give the app

# Another process holds SQLite's write lock until its stdin closes.
HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("holding", flush=True)
sys.stdin.read()
conn.execute("ROLLBACK")
"""


class WriteLockHolder:
    """A process holding the write lock of a SQLite database, as the sqlite3
    shell in a transaction would, without the app's lock file."""

    def __init__(self, path: str):
        self.process = subprocess.Popen([sys.executable, "-c", HOLDER, path], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)
        assert self.process.stdout.readline() == "holding\n"

    def release(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            self.process.wait(timeout=10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def _assert_unavailable(res) -> None:
    assert res.json == {"error": "database_unavailable"}
    assert res.headers["Retry-After"] == str(RETRY_AFTER)
    assert_matches_openapi("POST", FAILED, 503, res.json, res.headers)


def _app(database: str) -> App:
    return create_app(database=database, admin_token=TOKEN)


@pytest.fixture
def sqlite_payout(tmp_path):
    """(path, payout id) of a new SQLite database with one requested payout."""
    path = str(tmp_path / "triport.sqlite3")
    db = open_database(path)
    db.init_schema()
    repo = Repository(db)
    repo.credit("alice", Decimal("100"), "USDT")
    payout = repo.create_payout("alice", Decimal("10"), "USDT", "0xdest")["id"]
    db.close()
    return path, payout


def test_sqlite_locked_by_another_process_answers_503_then_recovers(sqlite_payout, caplog, monkeypatch):
    path, payout = sqlite_payout
    monkeypatch.setattr(sqlite, "BUSY_TIMEOUT", WAIT)
    app = _app(path)
    db = app.repository.db
    client = webtest.TestApp(app, lint=True)
    try:
        with WriteLockHolder(path) as holder:
            with caplog.at_level(logging.WARNING, logger="triport_payouts"):
                started = time.monotonic()
                res = client.post_json(f"{PAYOUTS}/{payout}/failed", {"reason": "x"}, headers=AUTH,
                                       status=503)
                waited = time.monotonic() - started
            _assert_unavailable(res)
            assert WAIT <= waited < WAIT + 2
            [record] = [r for r in caplog.records if r.name == "triport_payouts"]
            assert record.levelname == "WARNING" and record.exc_info is None
            assert record.getMessage() == (
                f"database_unavailable: {path} is locked: another connection held its write lock"
                f" past the busy timeout ({WAIT:g} s)"
            )
            # Readers do not wait for a writer (WAL).
            assert client.get(f"{PAYOUTS}/{payout}/events", headers=AUTH).json["events"] == [creation_of(payout)]
            assert client.get(f"{PAYOUTS}?status=requested", headers=AUTH).json["payouts"][0]["id"] == payout
            holder.release()
            client.post_json(f"{PAYOUTS}/{payout}/failed", {"reason": "x"}, headers=AUTH, status=200)
    finally:
        db.close()


def test_sqlite_writers_queued_behind_a_locked_one_do_not_add_up_their_waits(sqlite_payout, monkeypatch):
    # Five workers' writes: each waits up to the busy timeout in SQLite only
    # once it has the app's lock file, so one after the other they would take
    # five busy timeouts (50 s by default, past gunicorn's 30 s timeout).
    path, payout = sqlite_payout
    wait, writers = 1.0, 5
    # A connection, with its own descriptor of the lock file, per thread.
    monkeypatch.setattr(sqlite, "BUSY_TIMEOUT", wait)
    app = _app(path)
    db = app.repository.db
    answers, times = [], []

    def write():
        started = time.monotonic()
        res = webtest.TestApp(app).post(f"{PAYOUTS}/{payout}/processing", headers=AUTH, expect_errors=True)
        times.append(time.monotonic() - started)
        answers.append((res.status_int, res.json, res.headers.get("Retry-After")))

    try:
        with WriteLockHolder(path):
            threads = [threading.Thread(target=write) for _ in range(writers)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=30)
    finally:
        db.close()
    assert answers == [(503, {"error": "database_unavailable"}, str(RETRY_AFTER))] * writers
    assert max(times) < 2 * wait + 1.0, times


def test_sqlite_locked_command_line_says_so_in_one_line(sqlite_payout, monkeypatch, capsys):
    path, payout = sqlite_payout
    monkeypatch.setattr(sqlite, "BUSY_TIMEOUT", WAIT)
    with WriteLockHolder(path):
        code = cli.main(["cancel-payout", payout], {"TRIPORT_DATABASE": path})
    out, err = capsys.readouterr()
    assert (code, out) == (1, "")
    assert err == (f"triport-payouts: database unavailable: {path} is locked: another connection held"
                   f" its write lock past the busy timeout ({WAIT:g} s)\n")
    assert cli.main(["cancel-payout", payout], {"TRIPORT_DATABASE": path}) == 0


# -- PostgreSQL: another session holds the payout's row ---------------------

@pytest.fixture
def postgres_payout(postgres_url):
    db = open_database(postgres_url)
    db.init_schema()
    repo = Repository(db)
    repo.credit("alice", Decimal("100"), "USDT")
    payout = repo.create_payout("alice", Decimal("10"), "USDT", "0xdest")["id"]
    db.close()
    return postgres_url, payout


class RowLockHolder:
    """Another session, holding the payout's row FOR UPDATE in an open transaction."""

    def __init__(self, url: str, payout: str):
        self.conn = psycopg.connect(url)
        self.conn.execute("SELECT id FROM payouts WHERE id = %s FOR UPDATE", (payout,))

    def release(self) -> None:
        if not self.conn.closed:
            self.conn.rollback()
            self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


@pytest.mark.postgres
def test_postgres_row_locked_by_another_session_answers_503_then_recovers(postgres_payout, caplog, monkeypatch):
    url, payout = postgres_payout
    monkeypatch.setattr(postgres, "LOCK_TIMEOUT", WAIT)
    app = _app(url)
    db = app.repository.db
    client = webtest.TestApp(app, lint=True)
    try:
        with RowLockHolder(url, payout) as holder:
            with caplog.at_level(logging.WARNING, logger="triport_payouts"):
                started = time.monotonic()
                res = client.post_json(f"{PAYOUTS}/{payout}/failed", {"reason": "x"}, headers=AUTH,
                                       status=503)
                waited = time.monotonic() - started
            _assert_unavailable(res)
            # The lock timeout, not the statement timeout (15 s), ended the wait.
            assert WAIT <= waited < WAIT + 2
            [record] = [r for r in caplog.records if r.name == "triport_payouts"]
            assert record.exc_info is None
            assert record.getMessage() == "database_unavailable: canceling statement due to lock timeout"
            assert client.get(f"{PAYOUTS}/{payout}/events", headers=AUTH).json["events"] == [creation_of(payout)]
            holder.release()
            client.post_json(f"{PAYOUTS}/{payout}/failed", {"reason": "x"}, headers=AUTH, status=200)
    finally:
        db.close()


@pytest.mark.postgres
def test_postgres_locked_command_line_says_so_in_one_line(postgres_payout, monkeypatch, capsys):
    url, payout = postgres_payout
    monkeypatch.setattr(postgres, "LOCK_TIMEOUT", WAIT)
    with RowLockHolder(url, payout):
        code = cli.main(["cancel-payout", payout], {"TRIPORT_DATABASE": url})
    out, err = capsys.readouterr()
    assert (code, out) == (1, "")
    assert err == "triport-payouts: database unavailable: canceling statement due to lock timeout\n"
    assert cli.main(["cancel-payout", payout], {"TRIPORT_DATABASE": url}) == 0
