"""A full disk, for real: a small tmpfs mounted for the test and filled with a
file until the kernel says ENOSPC. A write then answers ``503 storage_full``
(``Retry-After``, one log line, no traceback) and changes nothing, reads go
on, the command line says so in one line, and once the file is removed the
same write succeeds.

Mounting needs root (the tests run as root here and in CI): elsewhere they
skip with the reason, except in CI (``CI=true``), where they must run.
"""

from __future__ import annotations

import errno
import getpass
import json
import logging
import os
import pwd
import subprocess
import sys
import tempfile
import uuid
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
import webtest
from helpers import AUTH, PAYOUTS, POSTGRES_URL, TOKEN, creation_of
from live import Gunicorn
from openapi_check import assert_matches_openapi

from triport_payouts import cli, create_app
from triport_payouts.db import open_database
from triport_payouts.errors import RETRY_AFTER
from triport_payouts.repository import Repository

FAILED = "/v1/admin/referrals/payouts/{payout_id}/failed"
EVENTS = "/v1/admin/referrals/payouts/{payout_id}/events"
CAUSE = "database or disk is full"  # SQLite's words for SQLITE_FULL


def _skip_or_fail(reason: str):
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@contextmanager
def tmpfs(mountpoint: Path, options: str):
    """A tmpfs mounted at mountpoint for the block; unmounted after, whatever happens."""
    if os.geteuid() != 0:
        _skip_or_fail("mounting a small disk (tmpfs) needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mountpoint)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        _skip_or_fail(f"cannot mount a tmpfs: {done.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        if subprocess.run(["umount", str(mountpoint)], capture_output=True).returncode != 0:
            # Still in use (a process the test failed to stop): detach it anyway.
            subprocess.run(["umount", "--lazy", str(mountpoint)], check=True)


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB disk of its own, in tmp_path."""
    mountpoint = tmp_path / "disk"
    mountpoint.mkdir()
    with tmpfs(mountpoint, "size=2m"):
        yield mountpoint


def fill(disk: Path) -> Path:
    """Writes a file on `disk` until the kernel refuses more (ENOSPC); returns it."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        for chunk in (b"\0" * 65536, b"\0" * 4096):
            try:
                while True:
                    os.write(fd, chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
    finally:
        os.close(fd)
    assert os.statvfs(disk).f_bavail == 0
    return filler


def triport(database: str, *args: str) -> subprocess.CompletedProcess:
    """`python -m triport_payouts ARGS` on `database`."""
    return subprocess.run([sys.executable, "-m", "triport_payouts", *args],
                          env={**os.environ, "TRIPORT_DATABASE": database},
                          capture_output=True, text=True, timeout=60)


def assert_one_line(done: subprocess.CompletedProcess, start: str) -> None:
    """Exit 1, nothing on stdout, one line on stderr that starts with `start`."""
    assert (done.returncode, done.stdout) == (1, ""), done.stderr
    assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith(start), done.stderr


def new_payout(database: str) -> str:
    """A `requested` payout made by the command line, as an operator would."""
    for args in (["init-db"], ["credit", "--user-id", "alice", "--amount", "100", "--currency", "USDT"]):
        assert triport(database, *args).returncode == 0
    made = triport(database, "create-payout", "--user-id", "alice", "--amount", "40", "--currency", "USDT",
                   "--destination", "0xdest")
    assert made.returncode == 0, made.stderr
    return json.loads(made.stdout)["id"]


def assert_storage_full(status, body, headers, method="POST", template=FAILED):
    assert (status, body) == (503, {"error": "storage_full"})
    assert headers["Retry-After"] == str(RETRY_AFTER)
    assert_matches_openapi(method, template, 503, body, headers)


@pytest.mark.live
def test_a_server_on_a_full_disk_answers_storage_full_keeps_reading_and_recovers(small_disk, tmp_path):
    database = str(small_disk / "triport.sqlite3")
    payout = new_payout(database)
    failed = f"{PAYOUTS}/{payout}/failed"
    reads = [f"{PAYOUTS}/{payout}/events", f"{PAYOUTS}?status=requested", "/v1/admin/referrals/users/alice",
             "/readyz"]
    log_path = tmp_path / "gunicorn.log"  # not on the small disk
    with Gunicorn(database, TOKEN, workers=2, log_path=log_path) as server:
        # A host in service: the database is open when the disk fills.
        assert server.request("GET", reads[0], headers=AUTH)[0] == 200
        filler = fill(small_disk)

        assert_storage_full(*server.request("POST", failed, {"reason": "rejected"}, AUTH))
        keyed = {**AUTH, "Idempotency-Key": "full-disk-1"}
        assert_storage_full(*server.request("POST", failed, {"reason": "rejected"}, keyed))
        for _ in range(3):  # whichever worker answers, with its connection old or new
            for path in reads:
                status, body, _ = server.request("GET", path, headers=AUTH)
                assert status == 200, (path, body)
        assert server.request("GET", reads[0], headers=AUTH)[1]["events"] == [
            creation_of(payout, actor=getpass.getuser())]
        [listed] = server.request("GET", reads[1], headers=AUTH)[1]["payouts"]
        assert (listed["id"], listed["status"]) == (payout, "requested")

        # The command line, while the server has the database open, says the same.
        credit = triport(database, "credit", "--user-id", "bob", "--amount", "1", "--currency", "USDT")
        assert_one_line(credit, f"triport-payouts: storage full: no space left on the disk of {database}:"
                                f" {CAUSE};")

        log = server.log()
        full = [line for line in log.splitlines() if CAUSE in line]
        assert len(full) == 2, log  # one line per refused write
        assert all(f"storage_full: no space left on the disk of {database}" in line for line in full)
        assert "Traceback" not in log

        filler.unlink()
        # The keyed request stored nothing while the disk was full: its retry runs now.
        assert server.request("POST", failed, {"reason": "rejected"}, keyed)[:2] == (200, {"ok": True})
        events = server.request("GET", reads[0], headers=AUTH)[1]["events"]
        assert [(e["from_status"], e["to_status"]) for e in events] == [(None, "requested"), ("requested", "failed")]
    assert "Traceback" not in log_path.read_text()
    audit = triport(database, "audit")
    assert audit.returncode == 0 and audit.stdout.startswith("audit ok:"), audit.stdout


def test_a_process_that_opens_the_database_on_a_full_disk_answers_storage_full(small_disk, caplog):
    # Nothing has the database open when the disk fills: SQLite cannot even
    # size the -shm file a connection needs, so reads fail too, as storage_full.
    database = str(small_disk / "triport.sqlite3")
    payout = new_payout(database)
    filler = fill(small_disk)
    assert_one_line(triport(database, "create-payout", "--user-id", "alice", "--amount", "1",
                            "--currency", "USDT", "--destination", "0xdest"),
                    f"triport-payouts: storage full: no space left on the disk of {database}:")

    app = create_app(database=database, admin_token=TOKEN)
    client = webtest.TestApp(app, lint=True)
    try:
        with caplog.at_level(logging.WARNING, logger="triport_payouts"):
            res = client.post_json(f"{PAYOUTS}/{payout}/failed", {"reason": "x"}, headers=AUTH, status=503)
            assert_storage_full(res.status_int, res.json, res.headers)
            res = client.get(f"{PAYOUTS}/{payout}/events", headers=AUTH, status=503)
            assert_storage_full(res.status_int, res.json, res.headers, "GET", EVENTS)
            res = client.get("/readyz", status=503)
            assert_storage_full(res.status_int, res.json, res.headers, "GET", "/readyz")
        records = [r for r in caplog.records if r.name == "triport_payouts"]
        assert len(records) == 3
        assert all(r.levelname == "WARNING" and r.exc_info is None for r in records)
        assert all(database in r.getMessage() and r.getMessage().startswith("storage_full: ")
                   for r in records)

        filler.unlink()
        client.get("/readyz", status=200)
        client.post_json(f"{PAYOUTS}/{payout}/failed", {"reason": "x"}, headers=AUTH, status=200)
        events = client.get(f"{PAYOUTS}/{payout}/events", headers=AUTH).json["events"]
        assert [e["to_status"] for e in events] == ["requested", "failed"]
    finally:
        app.repository.db.close()
    assert triport(database, "audit").returncode == 0


def test_enospc_from_the_sync_itself_stops_the_database_as_any_failed_sync(monkeypatch, tmp_path):
    # Not made for real (tmpfs and ext4 fail the write of the log, never the
    # sync): a filesystem that allocates at writeback could. The commit is
    # visible then, and its pages may be dropped: not retryable, not storage_full.
    database = str(tmp_path / "triport.sqlite3")
    db = open_database(database)
    db.init_schema()
    repo = Repository(db)
    repo.credit("alice", Decimal("10"), "USDT")
    payout = repo.create_payout("alice", Decimal("10"), "USDT", "0xdest")["id"]
    real = os.fdatasync

    def no_space(fd):
        if os.path.samestat(os.fstat(fd), os.stat(database + "-wal")):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd)

    monkeypatch.setattr(os, "fdatasync", no_space)
    app = create_app(database=database, admin_token=TOKEN)
    try:
        res = webtest.TestApp(app, lint=True).post(f"{PAYOUTS}/{payout}/failed", headers=AUTH, status=503)
    finally:
        app.repository.db.close()
        db.close()
    assert res.json == {"error": "database_unavailable"}
    assert res.headers["Retry-After"] == str(RETRY_AFTER)
    assert "No space left on device" in Path(database + ".sync-failed").read_text()


# -- PostgreSQL: a tablespace on a small disk ------------------------------

@pytest.mark.postgres
def test_postgres_on_a_full_disk_answers_storage_full_and_recovers(postgres_admin, caplog, capsys):
    # The test's tables live in a tablespace on a tmpfs of their own, so only
    # they run out of room: the server's own files (and its log) do not. Needs
    # the server on this machine, as the test's and CI's is.
    try:
        owner = pwd.getpwnam("postgres")
    except KeyError:
        _skip_or_fail("no postgres user here: the PostgreSQL server is not on this machine")
    name = f"t_{uuid.uuid4().hex[:16]}"
    # Not under tmp_path: pytest makes that 0700, and the server's user must reach it.
    location = Path(tempfile.mkdtemp(prefix="triport-full-tablespace-"))
    location.chmod(0o755)
    opened = []
    try:
        with tmpfs(location, f"size=2m,uid={owner.pw_uid},gid={owner.pw_gid},mode=0700"):
            try:
                try:
                    postgres_admin.execute(f"CREATE TABLESPACE {name} LOCATION '{location}'")
                except psycopg.Error as exc:  # a server elsewhere, or not a superuser
                    _skip_or_fail(f"cannot put a tablespace on the small disk: {str(exc).strip()}")
                postgres_admin.execute(f"CREATE SCHEMA {name}")
                url = f"{POSTGRES_URL}?options=-csearch_path%3D{name}%20-cdefault_tablespace%3D{name}"
                _full_postgres(url, location, opened, caplog, capsys)
            finally:
                for db in opened:
                    db.close()
                postgres_admin.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
                postgres_admin.execute(f"DROP TABLESPACE IF EXISTS {name}")
    finally:
        location.rmdir()


def _full_postgres(url: str, location: Path, opened: list, caplog, capsys) -> None:
    db = open_database(url)
    opened.append(db)
    db.init_schema()
    repo = Repository(db)
    repo.credit("alice", Decimal("100"), "USDT")
    payout = repo.create_payout("alice", Decimal("10"), "USDT", "0xdest")["id"]
    repo.create_payout("alice", Decimal("10"), "USDT", "0xdest")
    app = create_app(database=url, admin_token=TOKEN)
    opened.append(app.repository.db)
    client = webtest.TestApp(app, lint=True)
    client.get(f"{PAYOUTS}/{payout}/events", headers=AUTH, status=200)
    filler = fill(location)

    # No idempotency key yet, so their table has no page to put the claim in:
    # the server must extend its file.
    keyed = {**AUTH, "Idempotency-Key": "full-disk-1"}
    with caplog.at_level(logging.WARNING, logger="triport_payouts"):
        res = client.post_json(f"{PAYOUTS}/{payout}/failed", {"reason": "x"}, headers=keyed, status=503)
    assert_storage_full(res.status_int, res.json, res.headers)
    [record] = [r for r in caplog.records if r.name == "triport_payouts"]
    assert record.exc_info is None
    assert record.getMessage().startswith("storage_full: no space left on the disk of PostgreSQL database")
    assert "No space left on device" in record.getMessage()
    assert client.get(f"{PAYOUTS}/{payout}/events", headers=AUTH).json["events"] == [creation_of(payout)]
    assert client.get("/v1/admin/referrals/users/alice", headers=AUTH).json["counts"]["requested"] == 2

    capsys.readouterr()
    # A load needs new pages in every table it writes.
    assert cli.main(["seed-demo", "--payouts", "5000", "--users", "2"], {"TRIPORT_DATABASE": url}) == 1
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1, err
    assert err.startswith("triport-payouts: storage full: no space left on the disk of PostgreSQL database")

    filler.unlink()
    client.post_json(f"{PAYOUTS}/{payout}/failed", {"reason": "x"}, headers=keyed, status=200)
    assert cli.main(["audit"], {"TRIPORT_DATABASE": url}) == 0
