"""What is particular to PostgreSQL: its schema matches SQLite's, data moves
from SQLite unchanged, and a server rides out the database going away."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from decimal import Decimal

import pytest
import webtest
from helpers import AUTH, PAYOUTS, TOKEN, user_view
from live import Gunicorn

from triport_payouts import demo
from triport_payouts import create_app
from triport_payouts.db import open_database
from triport_payouts.repository import Repository
from triport_payouts.copydata import copy_database


def _sqlite_shape(path) -> dict:
    conn = sqlite3.connect(path)
    tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    shape = {
        table: {
            "columns": [row[1] for row in conn.execute(f"PRAGMA table_info({table})")],
            "indexes": sorted(row[1] for row in conn.execute(f"PRAGMA index_list({table})")
                              if not row[1].startswith("sqlite_autoindex")),
        }
        for table in tables
    }
    conn.close()
    return shape


def _postgres_shape(conn) -> dict:
    shape = {}
    tables = conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
    ).fetchall()
    for (table,) in tables:
        columns = conn.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = %s ORDER BY ordinal_position",
            (table,),
        ).fetchall()
        indexes = conn.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = %s"
            " AND indexname NOT LIKE '%%_pkey'",
            (table,),
        ).fetchall()
        shape[table] = {"columns": [c for (c,) in columns], "indexes": sorted(i for (i,) in indexes)}
    return shape


def test_both_schemas_have_the_same_tables_columns_and_indexes(tmp_path, postgres_url):
    sqlite_db = open_database(str(tmp_path / "shape.sqlite3"))
    sqlite_db.init_schema()
    postgres_db = open_database(postgres_url)
    postgres_db.init_schema()
    try:
        expected = _sqlite_shape(tmp_path / "shape.sqlite3")
        assert set(expected) == {"credits", "payouts", "payout_events", "idempotency_keys", "schema_migrations",
                                 "webhook_endpoints", "webhook_subscriptions", "webhook_outbox",
                                 "webhook_deliveries", "payout_totals", "payout_event_totals", "operator_tokens"}
        # PostgreSQL's events also name their transaction, for the feed to know which are final.
        # (added by step 2, so before step 4's on_behalf_of)
        columns = expected["payout_events"]["columns"]
        columns.insert(columns.index("on_behalf_of"), "xid")
        expected["payout_events"]["indexes"] = sorted([*expected["payout_events"]["indexes"], "payout_events_feed"])
        # The metrics' running totals: PostgreSQL sums NUMERIC, in a row per session slot;
        # SQLite keeps the sums in integer parts, one writer at a time.
        expected["payout_totals"]["columns"] = ["status", "currency", "slot", "payouts", "amount"]
        expected["payout_event_totals"]["columns"] = ["to_status", "slot", "events"]
        assert _postgres_shape(postgres_db.connection()) == expected
    finally:
        sqlite_db.close()
        postgres_db.close()


def test_init_db_twice_changes_nothing_on_postgres(postgres_url):
    db = open_database(postgres_url)
    try:
        db.init_schema()
        repo = Repository(db)
        repo.credit("dora", Decimal("5.00"), "USDT")
        db.init_schema()
        assert user_view(repo, "dora")["balances"][0]["earned"] == "5.00"
    finally:
        db.close()


def _walk(repo) -> None:
    repo.credit("erin", Decimal("100.00"), "USDT", "march")
    repo.credit("erin", Decimal("0.00000001"), "BTC")
    sent = repo.create_payout("erin", Decimal("30.50"), "USDT", "0xerin")["id"]
    repo.transition(sent, "processing", actor="maria")
    repo.transition(sent, "sent", tx_hash="0xabc", actor="maria")
    failed = repo.create_payout("erin", Decimal("12.25"), "USDT", "0xerin")["id"]
    repo.transition(failed, "failed", reason="wallet rejected ü", actor="maria")
    repo.cancel_payout(repo.create_payout("erin", Decimal("0.00000001"), "BTC", "bc1erin")["id"], actor="cli")
    repo.create_payout("erin", Decimal("1.75"), "USDT", "0xerin")
    demo.seed_demo(repo, 30, 3)


def _api_view(database: str) -> list:
    client = webtest.TestApp(create_app(database=database, admin_token=TOKEN), lint=True)
    pages = [client.get(f"{PAYOUTS}?limit=7", headers=AUTH).json]
    while pages[-1]["next_cursor"]:
        pages.append(client.get(f"{PAYOUTS}?limit=7&cursor={pages[-1]['next_cursor']}", headers=AUTH).json)
    payouts = [p for page in pages for p in page["payouts"]]
    events = [client.get(f"{PAYOUTS}/{p['id']}/events", headers=AUTH).json for p in payouts]
    users = [client.get(f"/v1/admin/referrals/users/{user}", headers=AUTH).json
             for user in sorted({p["user_id"] for p in payouts})]
    client.app.repository.db.close()
    return [payouts, events, users]


def test_copy_data_moves_sqlite_to_postgres_unchanged(tmp_path, postgres_url):
    source_path = str(tmp_path / "source.sqlite3")
    source = open_database(source_path)
    source.init_schema()
    _walk(Repository(source))
    target = open_database(postgres_url)
    try:
        counts = copy_database(Repository(source), Repository(target))
        assert counts == {"credits": 5, "payouts": 34, "payout_events": 34 + 4,
                          "webhook_endpoints": 0, "webhook_subscriptions": 0, "operator_tokens": 0}
        assert _api_view(postgres_url) == _api_view(source_path)
    finally:
        source.close()
        target.close()


def test_copy_data_refuses_a_target_with_data(tmp_path, postgres_url):
    source_path = str(tmp_path / "source.sqlite3")
    source = open_database(source_path)
    source.init_schema()
    Repository(source).credit("fay", Decimal("1.00"), "USDT")
    env = {**os.environ, "TRIPORT_DATABASE": postgres_url}
    command = [sys.executable, "-m", "triport_payouts", "copy-data", "--from", source_path]
    first = subprocess.run(command, env=env, capture_output=True, text=True)
    second = subprocess.run(command, env=env, capture_output=True, text=True)
    source.close()
    assert first.returncode == 0, first.stderr
    assert second.returncode == 1
    assert second.stderr.strip() == (
        "triport-payouts: the target database already holds data: copy only into an empty one"
    )
    db = open_database(postgres_url)
    assert user_view(Repository(db), "fay")["balances"][0]["earned"] == "1.00"
    db.close()


# -- the database goes away and comes back ---------------------------------

def _cluster(action: str) -> None:
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action],
                   check=True, capture_output=True, timeout=60)


def _wait_for(predicate, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.2)
    return predicate()


@pytest.mark.live
@pytest.mark.serial  # it stops the PostgreSQL every other test uses
@pytest.mark.skipif(not shutil.which("pg_ctlcluster") or os.geteuid() != 0,
                    reason="stopping PostgreSQL needs pg_ctlcluster and root")
@pytest.mark.parametrize("backend", ["postgres"])
def test_server_rides_out_a_database_restart(backend, postgres_url, make_payout, tmp_path):
    payout_id = make_payout()
    with Gunicorn(postgres_url, TOKEN, workers=2, log_path=tmp_path / "gunicorn.log") as server:
        assert server.request("GET", "/readyz")[:2] == (200, {"ok": True})
        _cluster("stop")
        try:
            for path, method in ((f"{PAYOUTS}/{payout_id}/processing", "POST"), ("/readyz", "GET"),
                                 (f"{PAYOUTS}/{payout_id}/events", "GET")):
                status, body, _ = server.request(method, path, headers=AUTH, timeout=20)
                assert (status, body) == (503, {"error": "database_unavailable"})
        finally:
            _cluster("start")
        assert _wait_for(lambda: server.request("GET", "/readyz")[0] == 200, timeout=30)
        status, body, _ = server.request("POST", f"{PAYOUTS}/{payout_id}/processing", headers=AUTH)
        assert (status, body) == (200, {"ok": True})
    log = (tmp_path / "gunicorn.log").read_text()
    assert "Traceback" not in log
