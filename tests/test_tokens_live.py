"""Named tokens and the write API over real gunicorns: a revocation seen by
every host within 5 seconds, requests for one balance racing across
processes and hosts, and no token in any log line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from helpers import CREDITS, PAYOUTS, TOKEN, events_of, user_view
from live import Gunicorn

pytestmark = pytest.mark.live

RACERS = 32


def create_token(database_url, name, scope):
    done = subprocess.run([sys.executable, "-m", "triport_payouts", "token", "create", "--name", name,
                           "--scope", scope], env={**os.environ, "TRIPORT_DATABASE": database_url},
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout)["token"]


@pytest.fixture
def two_hosts(repo, database_url, tmp_path):
    with Gunicorn(database_url, TOKEN, workers=2, log_path=tmp_path / "a.log") as a, \
         Gunicorn(database_url, TOKEN, workers=2, log_path=tmp_path / "b.log") as b:
        yield a, b


def test_a_revoked_token_is_refused_by_every_host_within_5_seconds(two_hosts, database_url):
    token = create_token(database_url, "maria", "read")
    headers = {"X-Admin-Token": token}
    # Every worker of both hosts has the token in its copy (several requests each).
    for host in two_hosts:
        for _ in range(8):
            assert host.request("GET", PAYOUTS, headers=headers)[0] == 200
    subprocess.run([sys.executable, "-m", "triport_payouts", "token", "revoke", "maria"],
                   env={**os.environ, "TRIPORT_DATABASE": database_url}, check=True, capture_output=True)
    revoked_at = time.monotonic()
    refused_after = {}
    while len(refused_after) < len(two_hosts) and time.monotonic() - revoked_at < 10:
        for i, host in enumerate(two_hosts):
            # Several requests: each may reach another worker.
            if all(host.request("GET", PAYOUTS, headers=headers)[0] == 401 for _ in range(6)):
                refused_after.setdefault(i, time.monotonic() - revoked_at)
        time.sleep(0.05)
    assert sorted(refused_after) == [0, 1], refused_after
    assert max(refused_after.values()) < 5, refused_after
    # And it stays refused on every worker.
    for host in two_hosts:
        assert {host.request("GET", PAYOUTS, headers=headers)[1]["error"] for _ in range(10)} == {
            "admin_token_invalid"}


def test_racing_payout_requests_across_hosts_never_overdraw(two_hosts, repo, database_url):
    """32 requests at once, alternating hosts, for a balance that covers 3."""
    system = {"X-Admin-Token": create_token(database_url, "billing", "system")}
    status, _, _ = two_hosts[0].request("POST", CREDITS, {"user_id": "racer", "amount": "30.00",
                                                          "currency": "USDT"}, system)
    assert status == 201
    barrier = threading.Barrier(RACERS)
    body = {"user_id": "racer", "amount": "10.00", "currency": "USDT", "destination": "0xrace"}

    def one(i):
        barrier.wait()
        return two_hosts[i % 2].request("POST", PAYOUTS, body, system)[:2]

    with ThreadPoolExecutor(RACERS) as pool:
        results = list(pool.map(one, range(RACERS)))
    created = [payload for status, payload in results if status == 201]
    refused = [payload for status, payload in results if status == 409]
    assert len(created) == 3 and len(refused) == RACERS - 3, results
    assert all(payload == {"error": "insufficient_balance"} for payload in refused)
    view = user_view(repo, "racer")
    assert view["counts"]["requested"] == 3
    assert view["balances"][0]["available"] == "0.00"
    assert all(events_of(repo, payout["id"])[0]["actor"] == "billing" for payout in created)


def test_a_retried_create_through_two_hosts_makes_one_payout(two_hosts, repo, database_url):
    system = {"X-Admin-Token": create_token(database_url, "billing", "system")}
    two_hosts[0].request("POST", CREDITS, {"user_id": "u", "amount": "50", "currency": "USDT"}, system)
    body = {"user_id": "u", "amount": "10", "currency": "USDT", "destination": "0xu"}
    headers = {**system, "Idempotency-Key": "retry-across-hosts"}
    first = two_hosts[0].request("POST", PAYOUTS, body, headers)
    again = two_hosts[1].request("POST", PAYOUTS, body, headers)
    assert first[:2] == again[:2] and first[0] == 201
    assert user_view(repo, "u")["counts"]["requested"] == 1


def test_no_token_appears_in_the_logs(two_hosts, database_url, make_payout):
    token = create_token(database_url, "maria", "operator")
    payout_id = make_payout()
    headers = {"X-Admin-Token": token, "X-Admin-Actor": "m"}
    assert two_hosts[0].request("POST", f"{PAYOUTS}/{payout_id}/failed", {"reason": "x"}, headers)[0] == 200
    assert two_hosts[1].request("GET", PAYOUTS, headers={"X-Admin-Token": token + "x"})[0] == 401
    assert two_hosts[1].request("GET", PAYOUTS, headers={"X-Admin-Token": TOKEN})[0] == 200
    for host in two_hosts:
        host.stop()
        log = host.log()
        assert "Booting worker" in log
        assert token not in log and TOKEN not in log
