"""A soak: mixed operations at a steady rate for a minute on several workers.

No error but the expected 4xx, no worker restarted, every payout's events
replay to its status and no balance is negative at the end. Worker memory
(VmRSS from /proc) is sampled and printed, not asserted against time: run
with ``-s`` to read it. Not part of ``make test``: ``pytest -m slow -s
tests/test_soak.py`` (``TRIPORT_SOAK_SECONDS`` changes the length).
"""

from __future__ import annotations

import http.client
import json
import os
import random
import threading
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
from helpers import AUTH, PAYOUTS, TOKEN, UNKNOWN_ID, list_payouts, transitions, user_view
from live import Gunicorn
from test_crash import children_of

from triport_payouts import domain
from triport_payouts.db import open_database
from triport_payouts.repository import Repository

pytestmark = [pytest.mark.slow, pytest.mark.live]

SECONDS = float(os.environ.get("TRIPORT_SOAK_SECONDS", "60"))
WORKERS = 4
CLIENTS = 4
RATE = 60.0  # operations per second, all clients together
SAMPLE_EVERY = 5.0
USERS = [f"soak-user-{i}" for i in range(5)]


def vm_rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


class Soak:
    def __init__(self, port: int, database_url: str, pool: list[str]):
        self.port = port
        self.database_url = database_url
        self.pool = pool
        self.lock = threading.Lock()
        self.counts: Counter = Counter()
        self.unexpected: list = []
        self.stop = threading.Event()
        self.keys: dict[str, tuple] = {}

    # -- one request ----------------------------------------------------------

    def send(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        try:
            conn.request(method, path, body=body, headers={**AUTH, **(headers or {})})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def expect(self, name, allowed, method, path, body=None, headers=None):
        try:
            status, raw = self.send(method, path, body, headers)
        except (OSError, http.client.HTTPException) as exc:
            status, raw = f"no answer: {type(exc).__name__}", b""
        with self.lock:
            self.counts[(name, status)] += 1
            if status not in allowed:
                self.unexpected.append((name, method, path, status, raw[:200]))
        return status, raw

    # -- the operations --------------------------------------------------------

    def pick(self, rng):
        with self.lock:
            return rng.choice(self.pool[-200:])

    def op_create(self, rng, repo):
        try:
            payout = repo.create_payout(rng.choice(USERS), Decimal(rng.choice(["0.01", "1.25", "7.5"])), "USDT",
                                        "0xsoak")
        except domain.WouldOverdraw:
            name = ("create", "would_overdraw")
        else:
            name = ("create", "ok")
            with self.lock:
                self.pool.append(payout["id"])
        with self.lock:
            self.counts[name] += 1

    def op_transition(self, rng, repo):
        action = rng.choice(["processing", "sent", "failed"])
        body = {"processing": b"", "sent": b'{"tx_hash": "0xsoak"}', "failed": b'{"reason": "soak"}'}[action]
        payout_id = self.pick(rng)
        key = f"soak-{rng.getrandbits(64):x}" if rng.random() < 0.5 else None
        headers = {"Idempotency-Key": key} if key else {}
        status, raw = self.expect(action, {200, 409}, "POST", f"{PAYOUTS}/{payout_id}/{action}", body, headers)
        if key and status in (200, 409):
            with self.lock:
                self.keys[key] = (action, payout_id, body, status, raw)

    def op_retry(self, rng, repo):
        with self.lock:
            if not self.keys:
                return
            key = rng.choice(list(self.keys)[-100:])
            action, payout_id, body, status, raw = self.keys[key]
        again = self.expect("retry", {status}, "POST", f"{PAYOUTS}/{payout_id}/{action}", body,
                            {"Idempotency-Key": key})
        if again != (status, raw):
            with self.lock:
                self.unexpected.append(("retry not replayed", key, again))

    def op_list(self, rng, repo):
        status = rng.choice(["", "&status=requested", "&status=sent", f"&user_id={rng.choice(USERS)}"])
        code, raw = self.expect("list", {200}, "GET", f"{PAYOUTS}?limit=50{status}")
        if code == 200 and json.loads(raw)["next_cursor"]:
            self.expect("list page 2", {200}, "GET",
                        f"{PAYOUTS}?limit=50{status}&cursor={json.loads(raw)['next_cursor']}")

    def op_user(self, rng, repo):
        self.expect("user", {200}, "GET", f"/v1/admin/referrals/users/{rng.choice(USERS)}")

    def op_events(self, rng, repo):
        self.expect("events", {200}, "GET", f"{PAYOUTS}/{self.pick(rng)}/events")

    def op_refused(self, rng, repo):
        payout_id = self.pick(rng)
        name, allowed, method, path, body, headers = rng.choice([
            ("bad token", {401}, "POST", f"{PAYOUTS}/{payout_id}/failed", b"", {"X-Admin-Token": "wrong"}),
            ("bad id", {400}, "POST", f"{PAYOUTS}/not-a-uuid/failed", b"", {}),
            ("bad body", {400}, "POST", f"{PAYOUTS}/{payout_id}/failed", b"{", {}),
            ("no tx_hash", {400}, "POST", f"{PAYOUTS}/{payout_id}/sent", b"{}", {}),
            ("too big", {400}, "POST", f"{PAYOUTS}/{payout_id}/failed", b" " * 5000, {}),
            ("unknown payout", {404}, "POST", f"{PAYOUTS}/{UNKNOWN_ID}/failed", b"", {}),
            ("unknown user", {404}, "GET", "/v1/admin/referrals/users/nobody-at-all", None, {}),
            ("no route", {404}, "GET", "/v1/admin/nothing", None, {}),
            ("wrong method", {405}, "DELETE", f"{PAYOUTS}/{payout_id}/failed", None, {}),
            ("bad limit", {400}, "GET", f"{PAYOUTS}?limit=0", None, {}),
            ("bad cursor", {400}, "GET", f"{PAYOUTS}?cursor=nope", None, {}),
        ])
        self.expect(name, allowed, method, path, body, headers)

    def op_health(self, rng, repo):
        self.expect("healthz", {200}, "GET", "/healthz")
        self.expect("readyz", {200}, "GET", "/readyz")

    MIX = (("op_create", 12), ("op_transition", 28), ("op_retry", 6), ("op_list", 12), ("op_user", 10),
           ("op_events", 10), ("op_refused", 17), ("op_health", 5))

    # -- the clients -------------------------------------------------------------

    def client(self, n: int, start: float):
        rng = random.Random(n)
        names, weights = zip(*self.MIX)
        db = open_database(self.database_url)
        repo = Repository(db)
        interval = CLIENTS / RATE
        tick = n * interval / CLIENTS  # the clients take turns, evenly spread
        try:
            while not self.stop.is_set():
                # A steady rate: each operation has its slot, whatever the last one took.
                time.sleep(max(0.0, start + tick - time.monotonic()))
                tick += interval
                getattr(self, rng.choices(names, weights)[0])(rng, repo)
        except BaseException as exc:  # noqa: BLE001 -- reported by the test, not lost in a thread
            with self.lock:
                self.unexpected.append(("client crashed", repr(exc)))
        finally:
            db.close()


def test_soak(database_url, repo, tmp_path):
    for user in USERS:
        repo.credit(user, Decimal(1000000), "USDT", "soak earnings")
    pool = [repo.create_payout(USERS[i % len(USERS)], Decimal(1), "USDT", "0xsoak")["id"] for i in range(50)]
    log_path = tmp_path / "gunicorn.log"
    with Gunicorn(database_url, TOKEN, workers=WORKERS, log_path=log_path) as server:
        master = server.process.pid
        time.sleep(0.5)
        workers = sorted(children_of(master))
        assert len(workers) == WORKERS
        soak = Soak(server.port, database_url, pool)
        start = time.monotonic()
        threads = [threading.Thread(target=soak.client, args=(n, start)) for n in range(CLIENTS)]
        for thread in threads:
            thread.start()
        samples = []
        try:
            while (elapsed := time.monotonic() - start) < SECONDS:
                samples.append((elapsed, [vm_rss_kib(pid) for pid in workers], vm_rss_kib(master)))
                time.sleep(min(SAMPLE_EVERY, max(0.0, SECONDS - elapsed)))
            samples.append((time.monotonic() - start, [vm_rss_kib(pid) for pid in workers], vm_rss_kib(master)))
        finally:
            soak.stop.set()
            for thread in threads:
                thread.join(timeout=60)
        duration = time.monotonic() - start
        still = sorted(children_of(master))

    report(database_url, soak, samples, workers, duration)
    assert not soak.unexpected, soak.unexpected[:20]
    assert still == workers, "a worker was restarted during the soak"
    assert "Traceback" not in log_path.read_text(errors="replace")
    check_consistency(repo)


def report(database_url, soak, samples, workers, duration):
    total = sum(soak.counts.values())
    backend = "postgres" if database_url.startswith("postgres") else "sqlite"
    print(f"\nsoak on {backend}: {total} calls in {duration:.0f} s ({total / duration:.1f}/s), "
          f"{WORKERS} workers, {CLIENTS} clients")
    for (name, status), count in sorted(soak.counts.items(), key=lambda item: str(item[0])):
        print(f"  {name:<16} {status!s:<16} {count}")
    print("  VmRSS KiB   " + "  ".join(f"worker {pid}" for pid in workers) + "  master")
    for elapsed, rss, master in samples:
        print(f"  t={elapsed:5.1f}s  " + "  ".join(f"{value!s:>12}" for value in rss) + f"  {master}")
    warm, last = samples[min(1, len(samples) - 1)], samples[-1]
    print(f"  growth KiB from t={warm[0]:.0f}s (warmed up) to the end: "
          + "  ".join(f"{(b or 0) - (a or 0):+d}" for a, b in zip(warm[1], last[1])))


def check_consistency(repo):
    after = None
    while True:
        page, after = list_payouts(repo, limit=200, after=after)
        for payout in page:
            status = "requested"
            for event in transitions(repo, payout["id"]):
                assert event["from_status"] == status
                status = event["to_status"]
            assert status == payout["status"]
        if after is None:
            break
    for user in USERS:
        for balance in user_view(repo, user)["balances"]:
            assert Decimal(balance["available"]) >= 0
