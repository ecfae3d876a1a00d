"""Crash: SIGKILL gunicorn's workers, then its master, under a load of
concurrent transitions (over HTTP) and payout creations (through a
repository), then restart on the same database.

Afterwards every transition a client saw as 200 is in the database with its
event, every payout's events replay to its status (nothing moved without an
event), no balance is negative, a retry of a 200 with its Idempotency-Key is
replayed byte for byte, and SQLite's ``PRAGMA integrity_check`` is ``ok``.
Both backends.
"""

from __future__ import annotations

import http.client
import os
import random
import signal
import sqlite3
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from helpers import PAYOUTS, TOKEN, list_payouts, transitions
from live import Gunicorn

from triport_payouts import domain
from triport_payouts.db import open_database
from triport_payouts.repository import Repository

pytestmark = pytest.mark.live

WORKERS = 3
CLIENTS = 6
USERS = [f"crash-user-{i}" for i in range(4)]
TARGET = {"processing": "processing", "sent": "sent", "failed": "failed"}
BODIES = {"processing": b"{}", "sent": b'{"tx_hash": "0xcrash"}', "failed": b'{"reason": "crash test"}'}
# (seconds after the load starts, how many workers to kill); then the master.
WORKER_KILLS = [(1.0, 1), (2.0, WORKERS), (3.0, 1)]
MASTER_KILL_AT = 4.0
LOAD_AFTER_MASTER = 0.5


# -- processes -------------------------------------------------------------------

def children_of(pid: int) -> list[int]:
    """Live child processes of `pid`, from /proc/*/stat (no psutil)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: parse after the last ')'.
        state, ppid = text[text.rindex(")") + 2:].split()[:2]
        if int(ppid) == pid and state != "Z":
            found.append(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return state[state.rindex(")") + 2] != "Z"


def kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# -- the load --------------------------------------------------------------------

@dataclass(frozen=True)
class Outcome:
    payout_id: str
    action: str
    key: str | None
    status: int | None  # None: no answer (the worker died, or no server)
    body: bytes


def post(port, payout_id, action, key, timeout=5.0):
    headers = {"X-Admin-Token": TOKEN, "X-Admin-Actor": "crash-test"}
    if key is not None:
        headers["Idempotency-Key"] = key
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", f"{PAYOUTS}/{payout_id}/{action}", body=BODIES[action], headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


class Load:
    """Client threads sending transitions, one thread creating payouts."""

    def __init__(self, port, database_url, pool):
        self.port = port
        self.database_url = database_url
        self.pool = list(pool)
        self.created: list[dict] = []
        self.outcomes: list[Outcome] = []
        self.errors: list[BaseException] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._client, args=(i,)) for i in range(CLIENTS)]
        self.threads.append(threading.Thread(target=self._creator))

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def _client(self, n):
        rng = random.Random(n)
        count = 0
        while not self.stop.is_set():
            with self.lock:
                payout_id = rng.choice(self.pool[-60:])
            action = rng.choice(list(TARGET))
            count += 1
            key = f"crash-{n}-{count}" if rng.random() < 0.5 else None
            try:
                status, body = post(self.port, payout_id, action, key)
            except (OSError, http.client.HTTPException):
                status, body = None, b""
                time.sleep(0.01)  # no server for a moment: do not spin
            with self.lock:
                self.outcomes.append(Outcome(payout_id, action, key, status, body))

    def _creator(self):
        db = open_database(self.database_url)
        repo = Repository(db)
        try:
            i = 0
            while not self.stop.is_set():
                payout = repo.create_payout(USERS[i % len(USERS)], Decimal("0.25"), "USDT", "0xcrash")
                i += 1
                with self.lock:
                    self.created.append(payout)
                    self.pool.append(payout["id"])
                time.sleep(0.005)
        except BaseException as exc:  # noqa: BLE001 -- reported by the test, not lost in a thread
            self.errors.append(exc)
        finally:
            db.close()


# -- the test --------------------------------------------------------------------

def test_sigkill_of_workers_and_master_loses_nothing(database_url, repo, tmp_path):
    for user in USERS:
        repo.credit(user, Decimal(100000), "USDT", "crash earnings")
    pool = [repo.create_payout(USERS[i % len(USERS)], Decimal("1.50"), "USDT", "0xcrash")["id"] for i in range(40)]

    first = Gunicorn(database_url, TOKEN, workers=WORKERS, log_path=tmp_path / "first.log")
    master = first.process.pid
    killed, orphans = [], []
    try:
        with Load(first.port, database_url, pool) as load:
            start = time.monotonic()
            for at, count in WORKER_KILLS:
                time.sleep(max(0.0, start + at - time.monotonic()))
                victims = children_of(master)[:count]
                assert victims, "the master has no workers"
                for pid in victims:
                    kill(pid)
                killed += victims
            time.sleep(max(0.0, start + MASTER_KILL_AT - time.monotonic()))
            # Freeze the master so that it forks no worker we would not see,
            # then kill it: its workers are orphans, as after an OOM kill.
            os.kill(master, signal.SIGSTOP)
            orphans = children_of(master)
            kill(master)
            first.process.wait(timeout=10)
            time.sleep(LOAD_AFTER_MASTER)
            for pid in orphans:
                kill(pid)
    finally:
        kill(master)
        first.stop()
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in killed + orphans) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not load.errors, load.errors
    assert "Booting worker" in (tmp_path / "first.log").read_text(errors="replace")

    answered = [o for o in load.outcomes if o.status is not None]
    print(f"crash load: {len(load.outcomes)} requests, {sum(o.status == 200 for o in answered)} x 200, "
          f"{sum(o.status == 409 for o in answered)} x 409, {len(load.outcomes) - len(answered)} unanswered, "
          f"{len(load.created)} payouts created, {len(killed)} workers and the master killed")
    assert any(o.status == 200 for o in answered) and any(o.status is None for o in load.outcomes), (
        "the load must have both succeeded and been cut off")
    assert {o.status for o in answered} <= {200, 409}, sorted({o.status for o in answered})

    with Gunicorn(database_url, TOKEN, workers=2, log_path=tmp_path / "second.log") as second:
        check_database(repo, database_url, load)
        check_retries(second, repo, load)
        check_balances(second, all_payouts(repo))


def check_database(repo, database_url, load):
    if not database_url.startswith("postgres"):
        with sqlite3.connect(database_url) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    payouts = all_payouts(repo)
    for created in load.created:
        assert payouts[created["id"]]["amount"] == created["amount"], "a created payout was lost"
    for payout_id, payout in payouts.items():
        status = domain.REQUESTED
        for event in transitions(repo, payout_id):
            assert event["from_status"] == status, (payout_id, transitions(repo, payout_id))
            status = event["to_status"]
        assert status == payout["status"], f"{payout_id} moved without an event"
    for outcome in load.outcomes:
        if outcome.status == 200:
            targets = [e["to_status"] for e in transitions(repo, outcome.payout_id)]
            assert TARGET[outcome.action] in targets, f"a 200 the client saw was lost: {outcome}"


def check_retries(server, repo, load):
    """A lost answer is retried with its key: a 200 is replayed, never redone."""
    for outcome in load.outcomes:
        if outcome.key is None or outcome.status not in (200, None):
            continue
        events = transitions(repo, outcome.payout_id)
        status, body = post(server.port, outcome.payout_id, outcome.action, outcome.key)
        if outcome.status == 200:
            assert (status, body) == (200, outcome.body)
            assert transitions(repo, outcome.payout_id) == events
        else:
            # Never answered: it ran or it did not; a claim left by a killed
            # worker is still in use until it goes stale.
            assert status in (200, 409), (status, body)
            if status == 200:
                assert TARGET[outcome.action] in [e["to_status"] for e in transitions(repo, outcome.payout_id)]


def check_balances(server, payouts):
    for user in USERS:
        mine = [p for p in payouts.values() if p["user_id"] == user]
        reserved = sum(Decimal(p["amount"]) for p in mine if p["status"] in ("requested", "processing"))
        sent = sum(Decimal(p["amount"]) for p in mine if p["status"] == "sent")
        status, view, _ = server.request("GET", f"/v1/admin/referrals/users/{user}",
                                         headers={"X-Admin-Token": TOKEN})
        assert status == 200
        [balance] = view["balances"]
        got = {name: Decimal(balance[name]) for name in ("earned", "reserved", "sent", "available")}
        assert got == {"earned": Decimal(100000), "reserved": reserved, "sent": sent,
                       "available": Decimal(100000) - reserved - sent}
        assert got["available"] >= 0


def all_payouts(repo) -> dict[str, dict]:
    payouts, after = {}, None
    while True:
        page, after = list_payouts(repo, limit=200, after=after)
        payouts.update((p["id"], p) for p in page)
        if after is None:
            return payouts
