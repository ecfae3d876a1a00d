"""``triport-payouts deliver``: the process that sends the webhook outbox.

Each round reads the due deliveries, claims one at a time with a lease (a
short transaction of its own: of several processes, one wins each delivery),
then POSTs it with no transaction open, then records the outcome. A process
that dies mid-request leaves its lease to expire, and the delivery is sent
again by whoever claims it next, with the same ``webhook-id``: at least once.
SIGTERM (or SIGINT) lets the request in flight finish and stops before the
next. HTTP is the standard library's ``http.client``: redirects are not
followed (a 3xx is a failed attempt).
"""

from __future__ import annotations

import email.utils
import http.client
import json
import logging
import random
import signal
import time
import urllib.parse
from dataclasses import dataclass

from . import signing
from .repository import Repository
from .webhooks import Job, Webhooks

log = logging.getLogger("triport_payouts")

# The Standard Webhooks schedule: the delay before each attempt, in seconds
# (immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h), give or take JITTER.
SCHEDULE = (0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
JITTER = 0.1
TIMEOUT = 10.0
# A Retry-After further off than this is taken as this.
MAX_RETRY_AFTER = 36000.0
# Enough of a response to be done with it; a receiver's body is not kept.
READ_LIMIT = 64 * 1024
BATCH = 50
POLL = 1.0


@dataclass
class Outcome:
    """What one POST came to: a status (None: no answer), its Retry-After in seconds, an error."""

    status: int | None
    retry_after: float | None = None
    error: str | None = None


def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> Outcome:
    """POSTs once; never raises for what the network or the receiver does."""
    parts = urllib.parse.urlsplit(url)
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    conn = connection_class(parts.hostname or "", parts.port, timeout=timeout)
    try:
        conn.request("POST", target, body=body, headers=headers)
        response = conn.getresponse()
        response.read(READ_LIMIT)
        retry_after = parse_retry_after(response.getheader("Retry-After"))
        error = None if 200 <= response.status < 300 else f"HTTP {response.status} {response.reason}".strip()
        return Outcome(response.status, retry_after, error)
    except TimeoutError:
        return Outcome(None, error=f"no answer within {timeout:g} s")
    except (OSError, http.client.HTTPException) as exc:
        return Outcome(None, error=f"{type(exc).__name__}: {exc}".strip())
    finally:
        conn.close()


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from now of a Retry-After (seconds or an HTTP date), capped; None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return min(max(moment.timestamp() - time.time(), 0.0), MAX_RETRY_AFTER)


class Deliverer:
    """Sends due deliveries until stopped (or, once=True, until none is due)."""

    def __init__(self, repo: Repository, *, schedule=SCHEDULE, timeout: float = TIMEOUT, poll: float = POLL):
        self.repo = repo
        self.webhooks = Webhooks(repo.db)
        self.schedule = tuple(schedule)
        self.timeout = timeout
        self.poll = poll
        # Longer than any one send, so a live process never loses its claim.
        self.lease_seconds = 2 * timeout + 1
        self.stopping = False

    def stop(self, *_args) -> None:
        self.stopping = True

    def install_signals(self) -> None:
        """SIGTERM and SIGINT stop after the request in flight (PEP 475 resumes it after the handler)."""
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)

    def run(self, *, once: bool = False) -> int:
        """Delivers until stopped; returns the number of attempts made."""
        attempts = 0
        while not self.stopping:
            try:
                due, made = self._round()
            except self.repo.db.unavailable_errors as exc:
                if once:
                    raise
                # A long-running process rides out an outage; the outbox waits.
                log.warning("webhook delivery paused, database unavailable: %s", exc)
                due, made = [], 0
            attempts += made
            if due:
                continue
            if once:
                break
            self._sleep(self.poll)
        return attempts

    def _round(self) -> tuple[list[int], int]:
        """Sends what is due now: (the due ids read, the attempts made)."""
        due = self.webhooks.due(BATCH)
        made = 0
        for delivery_id in due:
            if self.stopping:
                break
            job = self.webhooks.lease(delivery_id, self.lease_seconds)
            if job is not None:
                self.send(job)
                made += 1
        return due, made

    def send(self, job: Job) -> None:
        """One attempt of a leased delivery, recorded."""
        event = self.repo.feed_event(job.event_id)
        if event is None:  # cannot happen (a foreign key): failed for good rather than looping
            self.webhooks.record(job, delivered=False, retry_in=None, status=None, error="event not found")
            return
        body = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        headers = signing.headers(job.secrets, str(job.event_id), int(time.time()), body)
        outcome = post(job.url, body, headers, self.timeout)
        delivered = outcome.status is not None and 200 <= outcome.status < 300
        gone = outcome.status == 410
        retry_in = None if delivered or gone else self._retry_in(job.attempts + 1, outcome.retry_after)
        self.webhooks.record(job, delivered=delivered, retry_in=retry_in, status=outcome.status,
                             error=outcome.error, gone=gone)
        if delivered:
            log.info("webhook %s event %s delivered to %s", job.delivery_id, job.event_id, job.endpoint_id)
        else:
            then = "gave up" if retry_in is None else f"retry in {retry_in:.0f} s"
            log.warning("webhook %s event %s to %s failed (attempt %d): %s; %s", job.delivery_id, job.event_id,
                        job.endpoint_id, job.attempts + 1, outcome.error, then)

    def _retry_in(self, made: int, retry_after: float | None) -> float | None:
        """Seconds until the next attempt after `made` attempts, or None when the schedule is done."""
        if made >= len(self.schedule):
            return None
        delay = self.schedule[made] * random.uniform(1 - JITTER, 1 + JITTER)
        return max(delay, retry_after or 0.0)

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline:
            time.sleep(min(0.1, seconds))
