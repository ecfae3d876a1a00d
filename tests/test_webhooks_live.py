"""``triport-payouts deliver`` as real processes, on both backends, against a
real receiver on loopback: SIGKILLed in the middle of a batch and restarted
it loses nothing (the delivery in flight is sent again with the same
webhook-id once its lease ends); two ``deliver --once`` at once never send
one delivery at the same time; SIGTERM lets the request in flight finish."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import standardwebhooks
from receiver import Answer, Receiver

from triport_payouts.webhooks import EVENT_TYPES, Webhooks

pytestmark = pytest.mark.live

TIMEOUT = "1"  # a lease lasts 2 x 1 + 1 = 3 s
LEASE = 3.0


def start_deliver(database_url, *args) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "triport_payouts", "deliver", "--timeout", TIMEOUT, "--retry-schedule", "0,0,0",
         *args],
        env={**os.environ, "TRIPORT_DATABASE": database_url}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def finish(process: subprocess.Popen, timeout: float = 30) -> tuple[int, str]:
    _out, err = process.communicate(timeout=timeout)
    return process.returncode, err.decode(errors="replace")


def event_ids(repo) -> list[str]:
    """Every event's id, from the table: the PostgreSQL feed may hold events
    back while other tests' transactions are open."""
    rows = repo.db.connection().execute("SELECT id FROM payout_events ORDER BY id").fetchall()
    return [str(event_id) for (event_id,) in rows]


def statuses(repo) -> set[str]:
    return {row["status"] for row in Webhooks(repo.db).deliveries()}


def test_a_deliver_killed_mid_batch_and_restarted_loses_nothing(repo, make_payout, database_url):
    stall = threading.Event()
    with Receiver(lambda n, received: Answer(stall=stall if n == 2 else None)) as receiver:
        endpoint = Webhooks(repo.db).add(receiver.url, EVENT_TYPES)
        for _ in range(6):
            make_payout()
        expected = event_ids(repo)
        process = start_deliver(database_url)
        try:
            receiver.wait_for(3)  # the third is in flight, stalled
            process.send_signal(signal.SIGKILL)
            process.wait(10)
        finally:
            stall.set()
            if process.poll() is None:
                process.kill()
            finish(process)
        killed_at = time.monotonic()
        # The stalled delivery stays leased; the ones never tried are sent now.
        status, err = finish(start_deliver(database_url, "--once"))
        assert status == 0, err
        assert receiver.ids() == expected[:3] + expected[3:]
        assert statuses(repo) == {"delivered", "pending"}
        time.sleep(max(0.0, LEASE + 0.2 - (time.monotonic() - killed_at)))
        status, err = finish(start_deliver(database_url, "--once"))
        assert status == 0, err
    assert sorted(receiver.ids(), key=int) == sorted(expected + [expected[2]], key=int)
    assert receiver.ids()[-1] == expected[2]  # resent with the same webhook-id
    assert statuses(repo) == {"delivered"}
    for received in receiver.requests:
        standardwebhooks.Webhook(endpoint["secret"]).verify(received.body, received.headers)


def test_two_delivers_at_once_never_send_one_delivery_twice(repo, make_payout, database_url):
    with Receiver(lambda n, received: Answer(delay=0.05)) as receiver:
        Webhooks(repo.db).add(receiver.url, EVENT_TYPES)
        for _ in range(12):
            repo.transition(make_payout(), "processing")
        expected = event_ids(repo)
        processes = [start_deliver(database_url, "--once") for _ in range(2)]
        results = [finish(process) for process in processes]
    assert [status for status, _ in results] == [0, 0], results
    # Both took part (24 deliveries of 50 ms each: both are up long before the end).
    sent = [err.count(" delivered to ") for _, err in results]
    assert sum(sent) == len(expected) and min(sent) > 0, sent
    assert not any(received.overlapped for received in receiver.requests)
    assert sorted(receiver.ids(), key=int) == sorted(expected, key=int)  # each once: the leases held
    assert statuses(repo) == {"delivered"}


def test_sigterm_finishes_the_request_in_flight_and_exits(repo, make_payout, database_url):
    with Receiver(lambda n, received: Answer(delay=0.8)) as receiver:
        Webhooks(repo.db).add(receiver.url, EVENT_TYPES)
        make_payout()
        make_payout()
        process = start_deliver(database_url)
        try:
            receiver.wait_for(1)
            process.send_signal(signal.SIGTERM)
            status, err = finish(process, timeout=10)
        finally:
            if process.poll() is None:
                process.kill()
    assert status == 0, err
    assert len(receiver.requests) == 1
    rows = Webhooks(repo.db).deliveries()
    assert sorted(row["status"] for row in rows) == ["delivered", "pending"]
    assert [row["attempts"] for row in rows if row["status"] == "pending"] == [0]
