"""A reference for the 200 path: mark-failed written by hand in one function,
the way a careful single-purpose endpoint would be, and served like the app.
It answers the same requests on the same schema with the same statements
(bench/inprocess.py's: the status read, then the compare-and-set and the
event in one BEGIN IMMEDIATE), on a connection per worker opened after the
fork, with writers queued on an flock of the lock file the app uses, as the
app queues them (SQLite's own busy handler sleeps in steps and is not woken
when the lock frees). Nothing else: no validation beyond the token and the
JSON body, no idempotency keys, no log line, no group commit.

Two callables differ only in how COMMIT meets the disk:

- ``durable``: synchronous=FULL, every COMMIT synced before it returns, so
  an answered write survives a power cut, as the app's do (the app syncs
  after the lock instead, so that one sync may cover several commits);
- ``normal``: synchronous=NORMAL, the common WAL setting: a COMMIT only
  writes the log, so the last answered writes can be lost in a power cut or
  a kernel crash (not in a process crash).

So the load rounds show, side by side with the app and the ceiling, what a
write costs here with and without that promise. The read paths' reference,
with every check the app does, is bench/reference_reads.py.

    gunicorn --config python:triport_payouts.gunicorn_conf bench.reference:durable
"""

from __future__ import annotations

import fcntl
import hmac
import json
import os
import sqlite3

from triport_payouts.domain import utcnow

# The raw statements the in-process figures time: the work itself, written out.
from bench.inprocess import CAS, EVENT, STATUS

PREFIX = "/v1/admin/referrals/payouts/"
SUFFIX = "/failed"
HEADERS = [("Content-Type", "application/json"), ("Cache-Control", "no-store")]


def _answer(start_response, status: str, payload: dict):
    body = json.dumps(payload, separators=(",", ":")).encode() + b"\n"
    start_response(status, [*HEADERS, ("Content-Length", str(len(body)))])
    return [body]


def _error(start_response, status: str, tag: str):
    return _answer(start_response, status, {"error": tag})


def read_request(environ, token: bytes) -> tuple[tuple[str, dict] | None, str, str | None]:
    """The 200 path's request read as a raw endpoint does: route, method,
    token, then the JSON body with its optional reason. (early answer,
    payout id, reason), the early answer being None or the (status line,
    payload) of /healthz or of a refusal."""
    path = environ.get("PATH_INFO", "")
    if path == "/healthz":
        return ("200 OK", {"ok": True}), "", None
    if not (path.startswith(PREFIX) and path.endswith(SUFFIX)):
        return ("404 Not Found", {"error": "not_found"}), "", None
    if environ["REQUEST_METHOD"] != "POST":
        return ("405 Method Not Allowed", {"error": "method_not_allowed"}), "", None
    sent = environ.get("HTTP_X_ADMIN_TOKEN", "").encode("latin-1")
    if not token or not hmac.compare_digest(sent, token):
        return ("401 Unauthorized", {"error": "unauthorized"}), "", None
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = json.loads(environ["wsgi.input"].read(length) or b"{}") if length <= 4096 else None
    except ValueError:
        body = None
    reason = body.get("reason") if isinstance(body, dict) else None
    if not isinstance(body, dict) or not (reason is None or isinstance(reason, str)):
        return ("400 Bad Request", {"error": "invalid_json"}), "", None
    return None, path[len(PREFIX) : -len(SUFFIX)], reason


class ReferenceEndpoint:
    def __init__(self, synchronous: str, database: str | None = None, token: str | None = None):
        """The database and the token are the environment's, as the app's
        (given here when called in process)."""
        self.synchronous = synchronous
        self.token = (token or os.environ.get("TRIPORT_ADMIN_TOKEN") or "").encode()
        self.database = database or os.environ.get("TRIPORT_DATABASE", "")
        self._conn, self._lock, self._pid = None, None, None

    def connection(self) -> tuple[sqlite3.Connection, int]:
        """This process's connection and its descriptor of the writers' lock file."""
        if self._pid != os.getpid():
            conn = sqlite3.connect(self.database, timeout=10, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            lock = os.open(os.path.realpath(self.database) + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._conn, self._lock, self._pid = conn, lock, os.getpid()
        return self._conn, self._lock

    def __call__(self, environ, start_response):
        early, payout_id, reason = read_request(environ, self.token)
        if early is not None:
            return _answer(start_response, *early)
        conn, lock = self.connection()
        row = conn.execute(STATUS, (payout_id,)).fetchone()
        if row is None:
            return _error(start_response, "404 Not Found", "payout_not_found")
        if row[0] not in ("requested", "processing"):
            return _error(start_response, "409 Conflict", "payout_not_actionable")
        if not self.fail(conn, lock, payout_id, row[0], reason):
            return _error(start_response, "409 Conflict", "payout_not_actionable")
        return _answer(start_response, "200 OK", {"ok": True})

    def fail(self, conn, lock: int, payout_id: str, current: str, reason: str | None,
             actor: str | None = None) -> bool:
        """The write: the compare-and-set from `current` and the event, in one
        transaction behind the writers' lock. False when another request
        moved the payout first."""
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                now = utcnow()
                if conn.execute(CAS, ("failed", reason, None, now, payout_id, current)).rowcount != 1:
                    conn.execute("ROLLBACK")  # another request moved it first
                    return False
                conn.execute(EVENT, (payout_id, current, "failed", reason, None, actor, now))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
        return True


durable = ReferenceEndpoint("FULL")
normal = ReferenceEndpoint("NORMAL")
