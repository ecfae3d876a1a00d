"""The admin token never appears in a log line: not in a 500's traceback,
not when a client puts it in the query string, not under a real gunicorn
(its access log and its own warnings about requests it refuses).
"""

from __future__ import annotations

import logging
import socket
import sqlite3
import time
import traceback
from decimal import Decimal

import pytest
from helpers import PAYOUTS, TOKEN
from live import served_sqlite


USER_VIEW = "/v1/admin/referrals/users"


def everything_logged(records) -> str:
    """Each record as the most verbose handler would write it: message,
    traceback and stack."""
    formatter = logging.Formatter("%(name)s %(levelname)s %(pathname)s %(message)s")
    lines = []
    for record in records:
        lines.append(formatter.format(record))
        if record.exc_info and record.exc_info[1] is not None:
            lines.append("".join(traceback.format_exception(record.exc_info[1])))
        lines.append(repr(record.args))
    return "\n".join(lines)


def explode(*args, **kwargs):
    # What a driver error looks like: its own text, with the SQL, no request data.
    raise sqlite3.OperationalError("disk I/O error")


@pytest.mark.parametrize("method, route, repository_method", [
    ("POST", "failed", "transition"),
    ("GET", "list", "payout_page"),
    ("GET", "events", "events_json"),
    ("GET", "user", "user_summary"),
])
def test_a_500_for_a_request_carrying_the_token_does_not_log_it(
        app, client, make_payout, monkeypatch, caplog, method, route, repository_method):
    payout_id = make_payout()
    monkeypatch.setattr(app.repository, repository_method, explode)
    path = {
        "failed": f"{PAYOUTS}/{payout_id}/failed",
        "list": PAYOUTS,
        "events": f"{PAYOUTS}/{payout_id}/events",
        "user": f"{USER_VIEW}/alice",
    }[route]
    # The token where a client might put it: the header, the query, a body.
    url = f"{path}?token={TOKEN}&x-admin-token={TOKEN}"
    headers = {"X-Admin-Token": TOKEN, "Idempotency-Key": "k-500", "Authorization": f"Bearer {TOKEN}"}
    with caplog.at_level(logging.DEBUG):
        if method == "POST":
            res = client.post(url, f'{{"reason": "{TOKEN}"}}'.encode(), headers=headers, status=500)
        else:
            res = client.get(url, headers=headers, status=500)
    assert res.json == {"error": "internal"}
    assert any(record.exc_info for record in caplog.records), "the 500 was not logged"
    assert TOKEN not in everything_logged(caplog.records)


# -- a real gunicorn -----------------------------------------------------------------

@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with served_sqlite(tmp_path_factory.mktemp("logs"), TOKEN, 2) as live:
        live.repo.credit("alice", Decimal(1000), "USDT", "logs")
        yield live


class NewLogLines:
    """The log lines written while the block runs."""

    def __init__(self, path):
        self.path = path

    def __enter__(self):
        self.start = self.path.stat().st_size
        return self

    def __exit__(self, *exc):
        time.sleep(0.2)  # gunicorn writes the access line after the answer
        with open(self.path, "rb") as log:
            log.seek(self.start)
            self.text = log.read().decode("utf-8", "replace")


def raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


@pytest.mark.live
def test_served_requests_with_the_token_in_the_query_never_log_it(server):
    payout_id = server.repo.create_payout("alice", Decimal(1), "USDT", "0xdest")["id"]
    auth = {"X-Admin-Token": TOKEN}
    with NewLogLines(server.log_path) as new:
        assert server.request("GET", f"{PAYOUTS}?token={TOKEN}")[0] == 401
        assert server.request("GET", f"{PAYOUTS}?limit=1&token={TOKEN}", headers=auth)[0] == 200
        assert server.request("GET", f"{PAYOUTS}?limit=0&token={TOKEN}", headers=auth)[0] == 400
        assert server.request("POST", f"{PAYOUTS}/{payout_id}/failed?token={TOKEN}", body={}, headers=auth)[0] == 200
        assert server.request("GET", f"/healthz?token={TOKEN}")[0] == 200
        assert server.request("GET", f"/nowhere?token={TOKEN}")[0] == 404
    assert new.text.count("\n") >= 6, new.text  # the access log is on
    assert TOKEN not in new.text


@pytest.mark.live
def test_a_500_under_gunicorn_logs_its_traceback_without_the_token(server, tmp_path):
    payout_id = server.repo.create_payout("alice", Decimal(1), "USDT", "0xdest")["id"]
    # A real failure inside the transition's transaction: the events table is gone.
    conn = sqlite3.connect(server.database)
    conn.execute("ALTER TABLE payout_events RENAME TO payout_events_away")
    conn.commit()
    try:
        with NewLogLines(server.log_path) as new:
            status, body, _ = server.request(
                "POST", f"{PAYOUTS}/{payout_id}/failed?token={TOKEN}",
                body={"reason": "r"}, headers={"X-Admin-Token": TOKEN})
    finally:
        conn.execute("ALTER TABLE payout_events_away RENAME TO payout_events")
        conn.commit()
        conn.close()
    assert (status, body) == (500, {"error": "internal"})
    assert "Traceback" in new.text
    assert TOKEN not in new.text


# Requests gunicorn refuses itself, each with the token in the query string.
# gunicorn logs "Invalid request from ip=...: <what it could not parse>".
REFUSED_WITH_THE_TOKEN = {
    "no HTTP version": b"GET /healthz?token=%s\r\n\r\n",
    "a raw space in the query": b"GET /healthz?note=a b&token=%s HTTP/1.1\r\nHost: x\r\n\r\n",
    "two spaces after the method": b"GET  /healthz?token=%s HTTP/1.1\r\nHost: x\r\n\r\n",
    "a tab after the method": b"GET\t/healthz?token=%s HTTP/1.1\r\nHost: x\r\n\r\n",
    "a control character in the query": b"GET /healthz?token=%s\x7f HTTP/1.1\r\nHost: x\r\n\r\n",
    "a relative target": b"GET healthz?token=%s HTTP/1.1\r\nHost: x\r\n\r\n",
    "an unknown HTTP version": b"GET /healthz?token=%s HTTP/9.9\r\nHost: x\r\n\r\n",
    "an oversized request line": b"GET /healthz?token=%s&pad=" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "a bad token header": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Admin-Token: %s\x00\r\n\r\n",
}


@pytest.mark.live
@pytest.mark.parametrize("name", list(REFUSED_WITH_THE_TOKEN))
def test_a_request_gunicorn_refuses_does_not_log_the_token_it_carried(server, name):
    with NewLogLines(server.log_path) as new:
        answer = raw(server.port, REFUSED_WITH_THE_TOKEN[name].replace(b"%s", TOKEN.encode()))
    assert answer.startswith(b"HTTP/1.1 4"), answer[:100]
    assert new.text.strip(), "gunicorn logged nothing: the check would be vacuous"
    leaked = [line for line in new.text.splitlines() if TOKEN in line]
    assert not leaked, leaked


# Fields a record no longer fills once serve's settings skip the caller's
# frame, the thread and the multiprocessing name (they cost on every line).
_UNFILLED = {"funcName", "lineno", "pathname", "filename", "module", "thread", "threadName", "processName"}


def test_served_log_lines_use_no_field_the_settings_skip(monkeypatch):
    import importlib
    import re

    flags = ("_srcfile", "logThreads", "logMultiprocessing")
    for name in flags:
        monkeypatch.setattr(logging, name, getattr(logging, name))  # restored after the test
    before = [getattr(logging, name) for name in flags]
    conf = importlib.reload(importlib.import_module("triport_payouts.gunicorn_conf"))
    assert [getattr(logging, name) for name in flags] == before  # importing changes nothing
    conf.on_starting(None)  # gunicorn's master, before the fork
    assert (logging._srcfile, logging.logThreads, logging.logMultiprocessing) == (None, False, False)

    formats = [spec["format"] for spec in conf.logconfig_dict["formatters"].values()]
    used = {field for text in formats for field in re.findall(r"%\((\w+)\)", text)}
    assert "process" in used and not used & _UNFILLED

    plain = logging.Formatter(conf.logconfig_dict["formatters"]["plain"]["format"])
    record = logging.getLogger("triport_payouts").makeRecord(
        "triport_payouts", logging.INFO, "x.py", 1, "payout %s", ("p",), None)
    line = plain.format(record)
    assert f"[{record.process}] [INFO] triport_payouts: payout p" in line
