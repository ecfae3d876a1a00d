"""Two gunicorn instances ("hosts") on one database: one winner per payout,
one event per transition, no overdraw. PostgreSQL is the multi-host backend;
SQLite runs the same races across processes on one machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from helpers import AUTH, PAYOUTS, TOKEN, transitions, user_view
from live import Gunicorn

from triport_payouts import domain
from triport_payouts.db import open_database
from triport_payouts.repository import Repository

pytestmark = pytest.mark.live

RACERS = 32
PAYOUT_COUNT = 6


@pytest.fixture
def hosts(repo, database_url, tmp_path):
    with Gunicorn(database_url, TOKEN, workers=3, log_path=tmp_path / "a.log") as a, \
         Gunicorn(database_url, TOKEN, workers=3, log_path=tmp_path / "b.log") as b:
        yield a, b


def _race(hosts, payout_id):
    """RACERS requests at once, alternating hosts and actions; their statuses."""
    barrier = threading.Barrier(RACERS)
    actions = [("failed", {"reason": "race"}), ("sent", {"tx_hash": "0xrace"})]

    def one(i):
        action, body = actions[i % 2]
        barrier.wait()
        status, payload, _ = hosts[i % 2].request("POST", f"{PAYOUTS}/{payout_id}/{action}", body, AUTH)
        return status, payload

    with ThreadPoolExecutor(RACERS) as pool:
        return list(pool.map(one, range(RACERS)))


def test_exactly_one_winner_per_payout_across_hosts(hosts, make_payout, repo):
    for _ in range(PAYOUT_COUNT):
        payout_id = make_payout()
        results = _race(hosts, payout_id)
        statuses = Counter(status for status, _ in results)
        assert statuses == {200: 1, 409: RACERS - 1}
        assert all(body == {"error": "payout_not_actionable"} for status, body in results if status == 409)
        payout = repo.get_payout(payout_id)
        events = transitions(repo, payout_id)
        assert [(e["from_status"], e["to_status"]) for e in events] == [("requested", payout["status"])]
        assert payout["status"] in {"failed", "sent"}


def test_concurrent_payout_creation_never_overdraws(repo, database_url):
    """Twenty connections, each its own repository (as separate hosts would
    be), ask for 30.00 of 100.00 at once: exactly three succeed."""
    repo.credit("bob", Decimal("100.00"), "USDT")
    barrier = threading.Barrier(20)
    repos = [Repository(open_database(database_url)) for _ in range(20)]

    def create(other):
        barrier.wait()
        try:
            other.create_payout("bob", Decimal("30.00"), "USDT", "0xbob")
            return "created"
        except domain.WouldOverdraw:
            return "refused"

    try:
        with ThreadPoolExecutor(20) as pool:
            outcomes = Counter(pool.map(create, repos))
    finally:
        for other in repos:
            other.db.close()
    assert outcomes == {"created": 3, "refused": 17}
    view = user_view(repo, "bob")
    assert view["balances"] == [
        {"currency": "USDT", "earned": "100.00", "reserved": "90.00", "sent": "0", "available": "10.00"}
    ]


def test_concurrent_create_payout_processes_never_overdraw(repo, database_url):
    repo.credit("carol", Decimal("100.00"), "USDT")
    env = {**os.environ, "TRIPORT_DATABASE": database_url}
    command = [sys.executable, "-m", "triport_payouts", "create-payout", "--user-id", "carol",
               "--amount", "30.00", "--currency", "USDT", "--destination", "0xcarol"]
    processes = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for _ in range(8)]
    codes = Counter(p.wait(timeout=60) for p in processes)
    for p in processes:
        p.stdout.close()
        p.stderr.close()
    assert codes == {0: 3, 1: 5}
    assert user_view(repo, "carol")["balances"][0]["available"] == "10.00"
