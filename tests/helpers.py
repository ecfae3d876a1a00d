"""What test modules share beside the fixtures of ``conftest.py``: constants,
the test PostgreSQL server, the repository's reads and moves, and requests
built by hand as a WSGI environ. Test
modules import these from here, never from ``conftest``."""

from __future__ import annotations

import fcntl
import io
import json
import os
from unittest.mock import ANY
from wsgiref.validate import validator

from triport_payouts.handlers import DEFAULT_LIMIT, USER_VIEW_PAYOUTS
from triport_payouts.repository import PageFilters

TOKEN = "test-admin-token"
AUTH = {"X-Admin-Token": TOKEN}
PAYOUTS = "/v1/admin/referrals/payouts"
CREDITS = "/v1/admin/referrals/credits"
# A well-formed payout id that no test creates.
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"

POSTGRES_URL = os.environ.get("TRIPORT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


class PostgresAdmin:
    """Statements on the test server, reconnecting after a test restarted it."""

    def __init__(self):
        import psycopg

        self._psycopg = psycopg
        self._conn = None
        self.execute("SELECT 1")

    def execute(self, sql: str):
        if self._conn is not None:
            try:
                return self._conn.execute(sql)
            except self._psycopg.OperationalError:
                self._conn.close()
        self._conn = self._psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=3)
        return self._conn.execute(sql)

    def close(self):
        if self._conn is not None:
            self._conn.close()


def move_to(repo, payout_id, status):
    """Brings a new (requested) payout to `status` through the repository."""
    if status == "processing":
        repo.transition(payout_id, "processing")
    elif status == "sent":
        repo.transition(payout_id, "sent", tx_hash="0xprior")
    elif status == "failed":
        repo.transition(payout_id, "failed", reason="prior failure")
    elif status == "cancelled":
        repo.cancel_payout(payout_id)
    assert repo.get_payout(payout_id)["status"] == status


def list_payouts(repo, *, limit=DEFAULT_LIMIT, after=None, **filters) -> tuple[list[dict], tuple | None]:
    """repo.payout_page's payouts as dicts: (payouts, key of the last one if more follow);
    `filters` are PageFilters' fields."""
    texts, last = repo.payout_page(PageFilters(**filters), limit=limit, after=after)
    return [json.loads(text) for text in texts], last


def lock_free(path: str) -> bool:
    """Whether the writers' lock file of the SQLite database at `path` is free now."""
    fd = os.open(os.path.realpath(path) + ".lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def events_of(repo, payout_id: str) -> list[dict]:
    """repo.events_json's events as dicts: a payout's history, oldest first."""
    return [json.loads(text) for text in repo.events_json(payout_id)]


def user_view(repo, user_id: str, payouts: int = USER_VIEW_PAYOUTS) -> dict:
    """repo.user_summary as the API answers it: one dict, the newest payouts under "payouts"."""
    summary, newest = repo.user_summary(user_id, payouts)
    return {**summary, "payouts": [json.loads(text) for text in newest]}


# -- requests built by hand: a WSGI environ and a wsgi.input that records its reads --


class Input:
    """A ``wsgi.input`` that serves ``data`` at most ``step`` bytes a read and
    records how much was asked for and read. ``error`` is raised by every
    read; ``blocking`` stands for a socket with nothing more to come."""

    def __init__(self, data: bytes = b"", *, step: int | None = None, error: BaseException | None = None,
                 blocking: bool = False):
        self._data = io.BytesIO(data)
        self._step = step
        self._error = error
        self._blocking = blocking
        self.reads = 0
        self.bytes_read = 0

    def read(self, size=-1):
        self.reads += 1
        if self._blocking:
            raise AssertionError("read() on a body that was never announced would block")
        if self._error is not None:
            raise self._error
        if size is None or size < 0:
            raise AssertionError("unbounded read() of wsgi.input")
        if self._step is not None:
            size = min(size, self._step)
        chunk = self._data.read(size)
        self.bytes_read += len(chunk)
        return chunk

    def readline(self, size=-1):
        raise AssertionError("readline() is not how a JSON body is read")

    def readlines(self, hint=-1):
        raise AssertionError("readlines() is not how a JSON body is read")

    def __iter__(self):
        raise AssertionError("iterating is not how a JSON body is read")


def make_environ(stream, *, path, content_length=None, terminated=False, **extra):
    """A POST to `path` with the right token, its body read from `stream`; `extra` adds or overrides keys."""
    environ = {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "localhost",
        "HTTP_X_ADMIN_TOKEN": TOKEN,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": stream,
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    if content_length is not None:
        environ["CONTENT_LENGTH"] = content_length
    if terminated:
        environ["wsgi.input_terminated"] = True
    environ.update(extra)
    return environ


def call(app, environ, *, validate=True):
    """(status code, headers, JSON body) of one request; PEP 3333-checked unless validate=False."""
    seen = {}

    def start_response(status, headers, exc_info=None):
        seen["status"], seen["headers"] = status, headers
        return lambda data: None

    wsgi = validator(app) if validate else app
    result = wsgi(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    headers = dict(seen["headers"])
    assert headers["Content-Length"] == str(len(body))
    assert headers["Content-Type"].split(";")[0] == "application/json"
    return int(seen["status"].split()[0]), headers, json.loads(body)


def post_body(client, url, body: bytes, headers=AUTH, status=None, **kwargs):
    """POST raw bytes as application/json (WebTest sets CONTENT_LENGTH);
    `status` is the one expected."""
    return client.post(url, body, headers=headers, content_type="application/json", status=status, **kwargs)


def snapshot(repo, payout_id):
    """A payout and its events: what a refused request must leave as it was."""
    return repo.get_payout(payout_id), events_of(repo, payout_id)


def is_creation(event: dict) -> bool:
    """Whether an event of GET .../events is a payout's creation."""
    return (event["from_status"], event["to_status"], event["reason"], event["tx_hash"]) == (
        None, "requested", None, None)


def creation_of(payout_id: str, actor: str | None = None) -> dict:
    """What GET .../events shows of a payout's creation, but for its time
    (`actor`: who asked for it; the command line's user, or the repository's None)."""
    return {"payout_id": payout_id, "from_status": None, "to_status": "requested", "reason": None,
            "tx_hash": None, "actor": actor, "at": ANY, "on_behalf_of": None}


def transitions(events_or_repo, payout_id=None) -> list[dict]:
    """A payout's events after its creation event, which must come first:
    transitions(repo, payout_id), or transitions(events) of a list."""
    events = events_or_repo if payout_id is None else events_of(events_or_repo, payout_id)
    assert events and is_creation(events[0]), events
    return events[1:]


def assert_untouched(repo, payout_id):
    """The payout is still as made: requested, no reason, no event but its creation."""
    payout = repo.get_payout(payout_id)
    assert payout["status"] == "requested"
    assert payout["reason"] is None
    assert transitions(repo, payout_id) == []


# The tables a request may change (operator_tokens aside: a token's use is
# recorded there), with the columns they are ordered by.
DATA_TABLES = {"credits": "id", "payouts": "id", "payout_events": "id", "idempotency_keys": "key",
               "webhook_outbox": "id"}


def data_rows(database_url: str) -> dict[str, list[tuple]]:
    """Every row of DATA_TABLES: what a refused request must leave as it was."""
    from schema_v1 import Raw

    raw = Raw(database_url)
    try:
        return {table: raw.rows(f"SELECT * FROM {table} ORDER BY {order}") for table, order in DATA_TABLES.items()}
    finally:
        raw.close()
