"""A real gunicorn with four workers over one SQLite file: racing requests,
racing command-line processes, chunked and truncated bodies on raw sockets.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
from decimal import Decimal

import pytest

from helpers import PAYOUTS, TOKEN, transitions, user_view
from live import served_sqlite
from triport_payouts.db import open_database
from triport_payouts.repository import Repository

pytestmark = pytest.mark.live

HOST = "127.0.0.1"
WORKERS = 4
TIMEOUT = 10  # seconds a socket waits for an answer: a bound, never an assertion on speed


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with served_sqlite(tmp_path_factory.mktemp("live"), TOKEN, WORKERS) as live:
        yield live


@pytest.fixture(scope="module")
def live_repo(server):
    db = open_database(server.database)
    yield Repository(db)
    db.close()


@pytest.fixture
def new_payout(live_repo):
    def make(user_id="live-user", amount="10.00"):
        live_repo.credit(user_id, Decimal(amount), "USDT", "live test")
        return live_repo.create_payout(user_id, Decimal(amount), "USDT", "0xlive")["id"]

    return make


def failed_path(payout_id):
    return f"{PAYOUTS}/{payout_id}/failed"


def post(server, path, body: bytes = b"{}", headers=None):
    conn = http.client.HTTPConnection(HOST, server.port, timeout=TIMEOUT)
    try:
        conn.request("POST", path, body=body, headers={"X-Admin-Token": TOKEN, **(headers or {})})
        res = conn.getresponse()
        return res.status, json.loads(res.read())
    finally:
        conn.close()


def raw_exchange(server, request: bytes, *, close_write=False):
    """Sends raw bytes and reads until the server closes: (status, headers, JSON body)."""
    with socket.create_connection((HOST, server.port), timeout=TIMEOUT) as sock:
        sock.sendall(request)
        if close_write:
            sock.shutdown(socket.SHUT_WR)
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip()
               for name, _, value in (line.partition(":") for line in header_lines)}
    body = body[:int(headers["content-length"])]
    assert headers["content-type"].split(";")[0] == "application/json"
    return int(status_line.split()[1]), headers, json.loads(body)


def request_head(path, extra_headers: str) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nX-Admin-Token: {TOKEN}\r\n"
            f"{extra_headers}\r\n").encode("latin-1")


def chunked(body: bytes, size: int = 1000) -> bytes:
    pieces = [body[i:i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"


# -- (a) one payout, 32 racing requests ----------------------------------------------------


def test_racing_requests_on_one_payout_exactly_one_wins(server, live_repo, new_payout):
    payout_id = new_payout()
    racers = 32
    barrier = threading.Barrier(racers)
    results: list = [None] * racers

    def race(i):
        conn = http.client.HTTPConnection(HOST, server.port, timeout=30)
        try:
            conn.connect()
            barrier.wait(timeout=30)
            body = json.dumps({"reason": f"reason {i}"}).encode()
            conn.request("POST", failed_path(payout_id), body=body,
                         headers={"X-Admin-Token": TOKEN, "X-Admin-Actor": f"racer-{i}",
                                  "Content-Type": "application/json"})
            res = conn.getresponse()
            results[i] = (res.status, json.loads(res.read()))
        except BaseException as exc:  # reported below, with the index
            results[i] = exc
        finally:
            conn.close()

    threads = [threading.Thread(target=race, args=(i,)) for i in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert [r for r in results if not isinstance(r, tuple)] == []
    winners = [i for i, r in enumerate(results) if r == (200, {"ok": True})]
    losers = [i for i, r in enumerate(results) if r == (409, {"error": "payout_not_actionable"})]
    assert len(winners) == 1, results
    assert len(losers) == racers - 1, results
    [winner] = winners
    payout = live_repo.get_payout(payout_id)
    assert (payout["status"], payout["reason"]) == ("failed", f"reason {winner}")
    [event] = transitions(live_repo, payout_id)
    assert (event["from_status"], event["to_status"], event["actor"], event["reason"]) == (
        "requested", "failed", f"racer-{winner}", f"reason {winner}")


# -- (b) racing create-payout processes ----------------------------------------------


def test_racing_create_payout_processes_never_overdraw(repo, database_url):
    repo.credit("racer", Decimal("100.00"), "USDT", "live test")
    command = [sys.executable, "-m", "triport_payouts", "create-payout", "--user-id", "racer",
               "--amount", "30.00", "--currency", "USDT", "--destination", "0xrace"]
    env = {**os.environ, "TRIPORT_DATABASE": database_url}
    procs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(8)]
    outcomes = [(proc.wait(timeout=120), *proc.communicate()) for proc in procs]
    succeeded = [out for code, out, _ in outcomes if code == 0]
    refused = [err for code, _, err in outcomes if code == 1]
    assert len(succeeded) == 3, outcomes
    assert len(refused) == 5, outcomes
    for err in refused:
        assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert {json.loads(out)["status"] for out in succeeded} == {"requested"}
    view = user_view(repo, "racer")
    assert view["counts"]["requested"] == 3
    [balance] = view["balances"]
    assert Decimal(balance["reserved"]) == Decimal("90.00")
    assert Decimal(balance["available"]) == Decimal("10.00")


# -- (c) chunked bodies ------------------------------------------------------------------


def test_chunked_body_over_the_cap_is_invalid_json(server, live_repo, new_payout):
    payout_id = new_payout()
    request = request_head(failed_path(payout_id), "Transfer-Encoding: chunked\r\n") + chunked(b"x" * 10_000)
    status, headers, body = raw_exchange(server, request)
    assert (status, body) == (400, {"error": "invalid_json"})
    assert headers["cache-control"] == "no-store"
    assert live_repo.get_payout(payout_id)["status"] == "requested"


def test_chunked_valid_json_over_the_cap_is_invalid_json(server, live_repo, new_payout):
    payout_id = new_payout()
    body = json.dumps({"reason": "y" * 6000}).encode()
    request = request_head(failed_path(payout_id), "Transfer-Encoding: chunked\r\n") + chunked(body)
    status, _, answer = raw_exchange(server, request)
    assert (status, answer) == (400, {"error": "invalid_json"})
    assert live_repo.get_payout(payout_id)["status"] == "requested"


def test_chunked_small_body_is_accepted(server, live_repo, new_payout):
    payout_id = new_payout()
    body = json.dumps({"reason": "sent in chunks ✓"}, ensure_ascii=False).encode()
    request = request_head(failed_path(payout_id), "Transfer-Encoding: chunked\r\n") + chunked(body, size=5)
    status, _, answer = raw_exchange(server, request)
    assert (status, answer) == (200, {"ok": True})
    payout = live_repo.get_payout(payout_id)
    assert (payout["status"], payout["reason"]) == ("failed", "sent in chunks ✓")


# -- (d) a client that announces more than it sends ------------------------------------


def test_body_shorter_than_announced_then_half_close_is_invalid_json(server, live_repo, new_payout):
    payout_id = new_payout()
    request = request_head(failed_path(payout_id), "Content-Length: 100\r\n") + b'{"reason":'
    status, _, answer = raw_exchange(server, request, close_write=True)
    assert (status, answer) == (400, {"error": "invalid_json"})
    assert live_repo.get_payout(payout_id)["status"] == "requested"


def test_server_survives_clients_that_close_mid_body(server, live_repo, new_payout):
    payout_id = new_payout()
    server.wait_booted(WORKERS)  # a loaded machine boots the last ones after the first answers
    for _ in range(WORKERS):
        with socket.create_connection((HOST, server.port), timeout=TIMEOUT) as sock:
            sock.sendall(request_head(failed_path(payout_id), "Content-Length: 100\r\n") + b'{"reason":')
    assert post(server, failed_path(payout_id), b'{"reason": "after the broken ones"}') == (200, {"ok": True})
    for _ in range(WORKERS):
        assert post(server, failed_path(payout_id)) == (409, {"error": "payout_not_actionable"})
    payout = live_repo.get_payout(payout_id)
    assert (payout["status"], payout["reason"]) == ("failed", "after the broken ones")
    assert len(transitions(live_repo, payout_id)) == 1
    assert server.booted_workers() == WORKERS, server.log()


# -- (e) a huge announced body that never comes ---------------------------------------------


def test_huge_content_length_is_refused_without_waiting_for_the_body(server, live_repo, new_payout):
    payout_id = new_payout()
    request = request_head(failed_path(payout_id), "Content-Length: 1000000000\r\n")
    # No body is sent and the socket stays open: an answer can only come if
    # the server refuses without reading (else the recv times out).
    status, headers, answer = raw_exchange(server, request)
    assert (status, answer) == (400, {"error": "invalid_json"})
    assert headers["cache-control"] == "no-store"
    assert live_repo.get_payout(payout_id)["status"] == "requested"


# -- metrics: what a Prometheus scrape sees -------------------------------------------------


def scrape(server) -> tuple[dict[str, str], dict]:
    """(response headers, {(name, labels): value}) of GET /metrics with a bearer token."""
    from prometheus_client.parser import text_string_to_metric_families

    conn = http.client.HTTPConnection(HOST, server.port, timeout=TIMEOUT)
    try:
        conn.request("GET", "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        res = conn.getresponse()
        text = res.read().decode("utf-8")
        assert res.status == 200, text
        headers = {name.lower(): value for name, value in res.getheaders()}
    finally:
        conn.close()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    return headers, samples


def test_every_worker_scrapes_the_same_truth(server, live_repo, new_payout):
    before = scrape(server)[1]
    failed = new_payout(amount="1.25")
    new_payout(amount="2.50")
    assert post(server, failed_path(failed), b'{"reason": "live"}') == (200, {"ok": True})
    requested = ("triport_payouts", (("status", "requested"),))
    failed_amount = ("triport_payouts_amount", (("currency", "USDT"), ("status", "failed")))
    # More scrapes than workers: whichever answers, the same figures.
    for _ in range(2 * WORKERS):
        headers, samples = scrape(server)
        assert headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
        assert samples[requested] == before.get(requested, 0) + 1
        assert samples[failed_amount] == before.get(failed_amount, 0) + 1.25
