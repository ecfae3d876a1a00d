"""Schema versions: `triport-payouts migrate` brings a database made by the
previous release (version 1, kept in fixtures/schema_v1/) or an empty one
(version 0) up to ``triport_payouts.db.SCHEMA_VERSION`` and keeps every
answer it gave; a database older or newer than the code is refused, by the
app (503) and by the command line (exit 1), never half-served.

The v1 databases are built by raw SQL (``schema_v1.py``): the answers the
previous release gave for them are written down from the rows, since that
code cannot run here.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from decimal import Decimal

import pytest
from changefeed import after_each_change, by_payout, caught_up, webtest_get
from helpers import AUTH, PAYOUTS, TOKEN
from live import free_port
from schema_v1 import STATUSES, V1_EVENT_COLUMNS, Raw, V1Data, create_schema, utcnow

from triport_payouts import cli
from triport_payouts.db import SCHEMA_VERSION
from triport_payouts.errors import RETRY_AFTER

# The latest version: the code's own, whatever steps later releases add.
LATEST = SCHEMA_VERSION
USERS = "/v1/admin/referrals/users"




@pytest.fixture
def raw(database_url):
    conn = Raw(database_url)
    yield conn
    conn.close()


@pytest.fixture
def v1(database_url) -> V1Data:
    """The test database as the previous release left it, with its data."""
    data = V1Data()
    data.create(database_url)
    return data


def migrate(run) -> None:
    """Tests call it first, not a fixture: before the feature, each fails on its own."""
    code, out, err = run("migrate")
    assert (code, out) == (0, ""), err


def run_process(database, *args, timeout=60):
    return subprocess.run(
        [sys.executable, "-m", "triport_payouts", *args],
        env={**os.environ, "TRIPORT_DATABASE": database},
        capture_output=True, text=True, timeout=timeout,
    )


def assert_one_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1 and err.endswith("\n"), err
    assert "Traceback" not in err
    return lines[0]


def assert_names_versions(line: str, database: str, *versions: int) -> None:
    """The line names each version as a number of its own (not counting the
    digits of the database's name, path or address)."""
    text = line.replace(database, " ")
    for noise in ("sqlite3", "127.0.0.1", "5432"):
        text = text.replace(noise, " ")
    for version in versions:
        assert re.search(rf"(?<![\d.]){version}(?!\d)(?!\.\d)", text), (version, line)


def get(client, path, status=200, **kwargs):
    return client.get(path, headers=AUTH, status=status, **kwargs)


# -- the version ------------------------------------------------------------------


def test_the_code_is_at_schema_version_8():
    assert SCHEMA_VERSION == 8


# -- migrate ----------------------------------------------------------------------


def test_migrate_brings_a_v1_database_to_the_latest_version_and_says_so(v1, run, raw, database_url):
    code, out, err = run("migrate")
    assert (code, out) == (0, "")
    assert_names_versions(assert_one_line(err), database_url, LATEST, 1)
    assert raw.schema_version() == LATEST
    applied_at = raw.rows("SELECT applied_at FROM schema_migrations WHERE version = ?", (LATEST,))
    assert len(applied_at) == 1 and isinstance(applied_at[0][0], str) and applied_at[0][0]


def test_migrate_again_changes_nothing(v1, run, raw, database_url):
    migrate(run)
    before = raw.dump()
    code, out, err = run("migrate")
    assert (code, out) == (0, "")
    assert_names_versions(assert_one_line(err), database_url, LATEST)
    assert raw.dump() == before


def test_migrate_an_empty_database_creates_the_latest_schema(run, raw, make_client, database_url):
    code, out, err = run("migrate")
    assert (code, out) == (0, "")
    assert_names_versions(assert_one_line(err), database_url, LATEST, 0)
    assert raw.schema_version() == LATEST
    assert {"credits", "payouts", "payout_events", "idempotency_keys", "schema_migrations"} <= set(raw.tables())
    assert make_client(database_url).get("/readyz").json == {"ok": True}


def test_init_db_on_an_empty_database_is_at_the_latest_version_and_idempotent(run, raw):
    code, out, _ = run("init-db")
    assert (code, out) == (0, "")
    assert raw.schema_version() == LATEST
    before = raw.dump()
    code, out, _ = run("init-db")
    assert (code, out) == (0, "")
    assert raw.dump() == before


def test_init_db_migrates_a_v1_database(v1, run, raw, make_client, database_url):
    code, out, _ = run("init-db")
    assert (code, out) == (0, "")
    assert raw.schema_version() == LATEST
    client = make_client(database_url)
    for payout in v1.payouts:
        assert get(client, f"{PAYOUTS}/{payout.id}/events").json == {"events": payout.history(creation=True)}


@pytest.mark.live
def test_migrate_in_a_process_exits_0_with_one_line_then_0_again(v1, database_url, raw):
    first = run_process(database_url, "migrate")
    assert (first.returncode, first.stdout) == (0, ""), first.stderr
    assert_names_versions(assert_one_line(first.stderr), database_url, LATEST, 1)
    before = raw.dump()
    second = run_process(database_url, "migrate")
    assert (second.returncode, second.stdout) == (0, ""), second.stderr
    assert_names_versions(assert_one_line(second.stderr), database_url, LATEST)
    assert raw.dump() == before


_AT_THE_SIGNAL = """
import os, sys, time
from triport_payouts import cli
ready, go = sys.argv[1], sys.argv[2]
open(ready, "w").close()
deadline = time.monotonic() + 30
while not os.path.exists(go) and time.monotonic() < deadline:
    time.sleep(0.001)
sys.exit(cli.main(["migrate"]))
"""


@pytest.mark.live
def test_two_migrate_processes_at_once_both_succeed_and_migrate_once(v1, database_url, raw, tmp_path,
                                                                    make_client):
    """Both processes are started and imported first, then let go at the same instant."""
    go = tmp_path / "go"
    env = {**os.environ, "TRIPORT_DATABASE": database_url}
    processes = [
        subprocess.Popen([sys.executable, "-c", _AT_THE_SIGNAL, str(tmp_path / f"ready{i}"), str(go)],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(2)
    ]
    deadline = time.monotonic() + 30
    while not all((tmp_path / f"ready{i}").exists() for i in range(2)) and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()
    results = [(p.wait(timeout=60), *p.communicate()) for p in processes]
    for code, out, err in results:
        assert (code, out) == (0, ""), err
        assert_names_versions(assert_one_line(err), database_url, LATEST)
    assert raw.schema_version() == LATEST
    creations = raw.rows("SELECT payout_id, count(*) FROM payout_events WHERE from_status IS NULL GROUP BY payout_id")
    assert dict(creations) == {payout.id: 1 for payout in v1.payouts}
    client = make_client(database_url)
    for payout in v1.payouts:
        assert get(client, f"{PAYOUTS}/{payout.id}/events").json == {"events": payout.history(creation=True)}
    assert _listed_pages(client, {}) == v1.listed()


# -- what a migrated database answers: everything as before -------------------------


def _listed_pages(client, filters: dict, limit: int = 7) -> list[dict]:
    """Every payout the list gives for `filters`, page by page; each page full but the last."""
    params = {**filters, "limit": str(limit)}
    payouts: list[dict] = []
    for _ in range(100):
        body = get(client, PAYOUTS, params=params).json
        assert list(body) == ["payouts", "next_cursor"]
        payouts.extend(body["payouts"])
        if body["next_cursor"] is None:
            return payouts
        assert len(body["payouts"]) == limit
        params["cursor"] = body["next_cursor"]
    raise AssertionError("the list did not end")


def test_every_payout_lists_as_before(v1, run, make_client, database_url):
    migrate(run)
    client = make_client(database_url)
    first = get(client, PAYOUTS, params={"limit": "7"}).json
    assert first == {"payouts": v1.listed()[:7], "next_cursor": first["next_cursor"]}
    assert isinstance(first["next_cursor"], str)
    for status in (None, *STATUSES):
        for user_id in (None, *v1.users()):
            filters = {name: value for name, value in (("status", status), ("user_id", user_id)) if value}
            assert _listed_pages(client, filters) == v1.listed(status=status, user_id=user_id), filters


def test_every_user_view_answers_as_before(v1, run, make_client, database_url):
    migrate(run)
    client = make_client(database_url)
    for user_id in v1.users():
        assert get(client, f"{USERS}/{user_id}").json == v1.user_view(user_id), user_id
    assert get(client, f"{USERS}/nobody", status=404).json == {"error": "user_not_found"}


def test_every_history_starts_with_its_creation_event_then_the_old_events_in_order(v1, run, make_client,
                                                                                     database_url):
    migrate(run)
    client = make_client(database_url)
    for payout in v1.payouts:
        events = get(client, f"{PAYOUTS}/{payout.id}/events").json
        assert events == {"events": payout.history(creation=True)}, payout.id
        assert events["events"][0] == {
            "payout_id": payout.id, "from_status": None, "to_status": "requested", "reason": None,
            "tx_hash": None, "actor": None, "at": payout.created_at, "on_behalf_of": None,
        }


def test_every_credit_and_payout_row_is_kept(v1, run, raw):
    migrate(run)
    credits = raw.rows("SELECT id, user_id, currency, amount, note, created_at FROM credits ORDER BY id")
    assert [(*row[:3], format(Decimal(row[3]), "f"), *row[4:]) for row in credits] == v1.credit_rows()
    payouts = raw.rows("SELECT id, user_id, amount, currency, destination, status, reason, tx_hash,"
                       " created_at, updated_at FROM payouts ORDER BY id")
    expected = sorted(tuple(p.listed().values()) for p in v1.payouts)
    assert [(row[0], row[1], format(Decimal(row[2]), "f"), *row[3:]) for row in payouts] == expected
    old_events = raw.rows("SELECT payout_id, from_status, to_status, reason, tx_hash, actor, at"
                          " FROM payout_events WHERE from_status IS NOT NULL")
    assert sorted(old_events) == sorted(tuple(e[name] for name in V1_EVENT_COLUMNS) for p in v1.payouts
                                        for e in p.history(creation=False))


def test_every_idempotency_key_answers_as_before_byte_for_byte(v1, run, make_client, database_url, raw):
    migrate(run)
    client = make_client(database_url)
    before = raw.rows("SELECT id, payout_id, to_status FROM payout_events ORDER BY id")
    for key in v1.keys:
        url = f"{PAYOUTS}/{key.payout_id}/{key.action}"
        headers = {**AUTH, "Idempotency-Key": key.key}
        res = client.post(url, key.request_body, headers=headers, content_type="application/json", status="*")
        assert (res.status_int, res.body) == (key.status, key.body), key.key
        # The same key with another (valid) body is another request.
        other_body = {"sent": b'{"tx_hash": "0xother"}', "failed": b'{"reason": "other"}'}.get(key.action, b"{}")
        assert other_body != key.request_body
        other = client.post(url, other_body, headers=headers, content_type="application/json", status=422)
        assert other.json == {"error": "idempotency_key_reused"}
    running = v1.running_key
    res = client.post(f"{PAYOUTS}/{running.payout_id}/{running.action}", running.request_body,
                      headers={**AUTH, "Idempotency-Key": running.key}, content_type="application/json",
                      status=409)
    assert res.json == {"error": "idempotency_key_in_use"}
    assert raw.rows("SELECT id, payout_id, to_status FROM payout_events ORDER BY id") == before
    for key in v1.keys:
        assert get(client, f"{PAYOUTS}/{key.payout_id}/events").json == {
            "events": v1.payout(key.payout_id).history(creation=True)}


def test_audit_passes_on_the_migrated_database(v1, run):
    """Its count of events is of the table's rows: the creation events included."""
    migrate(run)
    code, out, err = run("audit")
    assert (code, err) == (0, "")
    events = v1.event_count() + len(v1.payouts)
    # Its payouts in processing are months old: warnings, which leave it ok.
    assert out.splitlines()[-1].startswith(
        f"audit ok: {len(v1.payouts)} payouts, {events} events, {len(v1.credits)} credits")


def test_the_feed_of_a_migrated_database_has_every_event_once(v1, run, make_client, database_url, raw):
    migrate(run)
    client = make_client(database_url)
    table = sorted(str(row[0]) for row in raw.rows("SELECT id FROM payout_events"))
    assert len(table) == v1.event_count() + len(v1.payouts)
    events, _ = caught_up(webtest_get(client), len(table), limit="13")
    ids = [event["id"] for event in events]
    assert len(ids) == len(set(ids))
    assert sorted(ids) == table
    assert by_payout(events) == {
        payout.id: after_each_change(payout.listed(), payout.history(creation=True)) for payout in v1.payouts
    }


def test_a_migrated_database_is_ready_and_takes_new_payouts_with_their_creation_event(v1, make_client,
                                                                                       database_url, run):
    migrate(run)
    client = make_client(database_url)
    assert client.get("/readyz").json == {"ok": True}
    code, out, err = run("create-payout", "--user-id", "carol", "--amount", "15.25", "--currency", "USDT",
                         "--destination", "0xcarol")
    assert (code, err) == (0, ""), err
    payout = json.loads(out)
    assert get(client, f"{PAYOUTS}/{payout['id']}/events").json == {"events": [{
        "payout_id": payout["id"], "from_status": None, "to_status": "requested", "reason": None,
        "tx_hash": None, "actor": getpass.getuser(), "at": payout["created_at"], "on_behalf_of": None,
    }]}


# -- a database older than the code ------------------------------------------------


def _admin_requests(data: V1Data):
    payout_id = data.requested_payout.id
    return [
        ("GET", PAYOUTS, None),
        ("GET", f"{PAYOUTS}/{payout_id}/events", None),
        ("GET", f"{USERS}/alice", None),
        ("GET", "/v1/admin/referrals/events", None),
        ("POST", f"{PAYOUTS}/{payout_id}/processing", b""),
        ("POST", f"{PAYOUTS}/{payout_id}/sent", b'{"tx_hash": "0xnew"}'),
        ("POST", f"{PAYOUTS}/{data.processing_payout.id}/failed", b'{"reason": "late"}'),
    ]


def _assert_503(res, tag):
    assert res.json == {"error": tag}
    assert res.headers["Retry-After"] == str(RETRY_AFTER)
    assert res.headers["Cache-Control"] == "no-store"


def _refused_everywhere(client, requests, tag):
    _assert_503(client.get("/readyz", status=503), tag)
    assert client.get("/healthz").json == {"ok": True}
    for method, path, body in requests:
        if method == "GET":
            res = client.get(path, headers=AUTH, status=503)
        else:
            res = client.post(path, body, headers={**AUTH, "X-Admin-Actor": "maria"},
                              content_type="application/json", status=503)
        _assert_503(res, tag)


def test_a_v1_database_is_503_schema_outdated_on_readyz_and_every_admin_route(v1, make_client, database_url,
                                                                              raw, caplog):
    caplog.set_level(logging.DEBUG, logger="triport_payouts")
    before = raw.dump()
    _refused_everywhere(make_client(database_url), _admin_requests(v1), "schema_outdated")
    assert raw.dump() == before
    lines = [r.getMessage() for r in caplog.records if r.name == "triport_payouts"]
    assert any("migrate" in line for line in lines), lines


def test_a_server_serves_once_its_database_is_migrated(v1, make_client, database_url, run):
    """Assumed: a host answering schema_outdated needs `migrate`, not a restart."""
    client = make_client(database_url)
    _assert_503(client.get("/readyz", status=503), "schema_outdated")
    migrate(run)
    assert client.get("/readyz").json == {"ok": True}
    payout = v1.sent_payout
    assert get(client, f"{PAYOUTS}/{payout.id}/events").json == {"events": payout.history(creation=True)}


def _argv(command: str, requested_payout: str) -> list[str]:
    """A command line that would succeed on a database at the code's version."""
    return {
        "credit": ["credit", "--user-id", "alice", "--amount", "1.00", "--currency", "USDT"],
        "create-payout": ["create-payout", "--user-id", "alice", "--amount", "1.00", "--currency", "USDT",
                          "--destination", "0xd"],
        "cancel-payout": ["cancel-payout", requested_payout],
        "seed-demo": ["seed-demo", "--payouts", "2", "--users", "1"],
        "audit": ["audit"],
        "export": ["export", "--format", "jsonl"],
        "prune-idempotency-keys": ["prune-idempotency-keys"],
        "migrate": ["migrate"],
        "init-db": ["init-db"],
    }[command]


COMMANDS = ["credit", "create-payout", "cancel-payout", "seed-demo", "audit", "export", "prune-idempotency-keys"]


@pytest.mark.parametrize("command", COMMANDS)
def test_a_command_on_a_v1_database_exits_1_with_one_line_and_changes_nothing(v1, run, raw, command):
    argv = _argv(command, v1.requested_payout.id)
    before = raw.dump()
    code, out, err = run(*argv)
    assert (code, out) == (1, ""), (out, err)
    assert_one_line(err)
    assert raw.dump() == before


def test_copy_data_into_an_empty_v1_database_exits_1(database_url, run, raw, tmp_path, capsys):
    create_schema(raw)
    source = str(tmp_path / "source.sqlite3")
    assert cli.main(["init-db"], {"TRIPORT_DATABASE": source}) == 0
    assert cli.main(["credit", "--user-id", "u", "--amount", "5", "--currency", "USDT"],
                    {"TRIPORT_DATABASE": source}) == 0
    capsys.readouterr()  # what those printed
    before = raw.dump()
    code, out, err = run("copy-data", "--from", source)
    assert (code, out) == (1, ""), (out, err)
    assert_one_line(err)
    assert raw.dump() == before


def _serve(database: str) -> tuple[int, str]:
    """`serve` in a process: (exit status, stderr); a server that starts is killed (-1)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "triport_payouts", "serve", "--bind", f"127.0.0.1:{free_port()}", "--workers", "1"],
        env={**os.environ, "TRIPORT_DATABASE": database, "TRIPORT_ADMIN_TOKEN": TOKEN},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        _, err = process.communicate(timeout=15)
        return process.returncode, err
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        _, err = process.communicate()
        return -1, err


@pytest.mark.live
def test_serve_on_a_v1_database_exits_1_with_one_line(v1, database_url):
    code, err = _serve(database_url)
    assert code == 1, err
    assert_one_line(err)


# -- a database newer than the code ------------------------------------------------


@pytest.fixture
def too_new(repo, make_payout):
    """A database at the code's version with a requested payout (its id); each
    test then makes it newer with `from_the_future(raw)`."""
    return make_payout()


def from_the_future(raw) -> None:
    """What a later release's migrate leaves: version 99."""
    raw.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)", (99, utcnow()))


def test_a_newer_database_is_503_schema_too_new_on_readyz_and_every_admin_route(too_new, make_client,
                                                                                database_url, raw):
    from_the_future(raw)
    requests = [
        ("GET", PAYOUTS, None),
        ("GET", f"{PAYOUTS}/{too_new}/events", None),
        ("GET", f"{USERS}/alice", None),
        ("GET", "/v1/admin/referrals/events", None),
        ("POST", f"{PAYOUTS}/{too_new}/processing", b""),
        ("POST", f"{PAYOUTS}/{too_new}/sent", b'{"tx_hash": "0xnew"}'),
        ("POST", f"{PAYOUTS}/{too_new}/failed", b"{}"),
    ]
    before = raw.dump()
    _refused_everywhere(make_client(database_url), requests, "schema_too_new")
    assert raw.dump() == before


@pytest.mark.parametrize("command", [*COMMANDS, "migrate", "init-db"])
def test_a_command_on_a_newer_database_exits_1_and_changes_nothing(too_new, run, raw, command):
    """migrate and init-db too (assumed): they cannot bring 99 down to 2."""
    from_the_future(raw)
    argv = _argv(command, too_new)
    before = raw.dump()
    code, out, err = run(*argv)
    assert (code, out) == (1, ""), (out, err)
    assert_one_line(err)
    assert raw.dump() == before
    assert raw.schema_version() == 99


@pytest.mark.live
def test_serve_on_a_newer_database_exits_1_with_one_line(too_new, database_url, raw):
    from_the_future(raw)
    code, err = _serve(database_url)
    assert code == 1, err
    assert_one_line(err)


def test_migrating_keeps_each_history_in_order_when_hosts_clocks_disagree(raw, run):
    # A v1 payout created on a host whose clock ran ahead: its first move,
    # made on another host, is stamped before the payout's own created_at.
    create_schema(raw)
    payout, other = "a0000000-0000-4000-8000-000000000001", "a0000000-0000-4000-8000-000000000002"
    raw.execute("INSERT INTO credits (id, user_id, currency, amount, note, created_at) VALUES"
                " ('c0000000-0000-4000-8000-000000000001', 'skew', 'USDT', '10', NULL, '2026-01-01T09:00:00.000000Z')")
    for payout_id, created in ((payout, "2026-01-01T09:00:01.000000Z"), (other, "2026-01-01T09:00:00.500000Z")):
        raw.execute("INSERT INTO payouts (id, user_id, amount, currency, destination, status, reason, tx_hash,"
                    " created_at, updated_at) VALUES (?, 'skew', '1', 'USDT', '0xd', 'requested', NULL, NULL, ?, ?)",
                    (payout_id, created, created))
    moves = ((payout, "requested", "processing", None, "2026-01-01T09:00:00.600000Z"),
             (payout, "processing", "sent", "0xabc", "2026-01-01T09:00:00.700000Z"))
    for payout_id, frm, to, tx_hash, at in moves:
        raw.execute("INSERT INTO payout_events (payout_id, from_status, to_status, reason, tx_hash, actor, at)"
                    " VALUES (?, ?, ?, NULL, ?, 'ops', ?)", (payout_id, frm, to, tx_hash, at))
    raw.execute("UPDATE payouts SET status = 'sent', tx_hash = '0xabc', updated_at = '2026-01-01T09:00:00.700000Z'"
                " WHERE id = '" + payout + "'")
    assert run("migrate")[0] == 0
    code, out, _ = run("audit")
    assert (code, out) == (0, "audit ok: 2 payouts, 4 events, 1 credits\n")
    rows = raw.rows("SELECT payout_id, from_status, to_status FROM payout_events ORDER BY id")
    assert [row for row in rows if row[0] == payout] == [
        (payout, None, "requested"), (payout, "requested", "processing"), (payout, "processing", "sent")]
    assert [tuple(row) for row in rows if row[0] == other] == [(other, None, "requested")]
