"""What gunicorn itself must refuse, on raw sockets against a real server.

Every hostile request targets ``/failed`` with a valid token and a body that
would succeed, so a request that reached the app would move the payout: it
must stay ``requested`` with no event, the answer must be gunicorn's own (not
the app's JSON), and the log must not name the payout. Then: clients that
stall mid-body hold only their own worker.
"""

from __future__ import annotations

import socket
import time
from decimal import Decimal

import pytest
from helpers import PAYOUTS, TOKEN, transitions
from live import Gunicorn, served_sqlite

from triport_payouts.db import open_database
from triport_payouts.repository import Repository

pytestmark = pytest.mark.live

WORKERS = 2
TIMEOUT = 10.0  # seconds a socket waits: a bound, never an assertion on speed

T = TOKEN.encode()
SMUGGLED = b"POST /v1/admin/referrals/payouts/%s/failed HTTP/1.1\r\nHost: x\r\nX-Admin-Token: " + T + (
    b"\r\nContent-Length: 0\r\n\r\n")

# name -> the header lines and body after the request line, Host and token;
# "%s" is the payout id (for a smuggled second request).
REFUSED = {
    "content-length with transfer-encoding": (
        b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED),
    "transfer-encoding with content-length": (
        b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" + SMUGGLED),
    "two transfer-encodings": b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "chunked not last": b"Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
    "unknown transfer-coding": b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
    "identity transfer-coding": b"Transfer-Encoding: identity\r\n\r\n{}",
    "content-length not a number": b"Content-Length: abc\r\n\r\n{}",
    "content-length negative": b"Content-Length: -1\r\n\r\n{}",
    "content-length with a sign": b"Content-Length: +2\r\n\r\n{}",
    "content-length in hex": b"Content-Length: 0x2\r\n\r\n{}",
    "content-length list": b"Content-Length: 2, 2\r\n\r\n{}",
    "content-length two numbers": b"Content-Length: 2 2\r\n\r\n{}",
    "content-length empty": b"Content-Length: \r\n\r\n{}",
    "content-length twice, different": b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
    "content-length twice, same": b"Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}",
    "content-length folded": b"Content-Length: 2\r\n 3\r\n\r\n{}",
    "space before the colon": b"Content-Length : 2\r\n\r\n{}",
    "NUL in a header value": b"X-Note: a\x00b\r\nContent-Length: 2\r\n\r\n{}",
    "bare CR in a header value": b"X-Note: a\rb\r\nContent-Length: 2\r\n\r\n{}",
    "bare LF line ends": b"Content-Length: 2\n\n{}",
    "too many headers": b"".join(b"X-Filler-%d: v\r\n" % i for i in range(60)) + b"Content-Length: 2\r\n\r\n{}",
    "oversized header": b"X-Big: " + b"a" * 9000 + b"\r\nContent-Length: 2\r\n\r\n{}",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with served_sqlite(tmp_path_factory.mktemp("hardening"), TOKEN, WORKERS) as live:
        live.repo.credit("alice", Decimal(100000), "USDT", "hardening")
        yield live


def new_payout(server) -> str:
    return server.repo.create_payout("alice", Decimal(1), "USDT", "0xdest")["id"]


def exchange(port: int, data: bytes, timeout: float = TIMEOUT) -> bytes:
    """Sends raw bytes, half-closes, and returns everything the server answers."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may refuse and close before reading everything
        return read_all(sock)


def read_all(sock) -> bytes:
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def assert_untouched(server, payout_id: str, answer: bytes):
    assert server.repo.get_payout(payout_id)["status"] == "requested"
    assert transitions(server.repo, payout_id) == []
    assert b"application/json" not in answer.split(b"\r\n\r\n", 1)[0], "the app answered"
    time.sleep(0.05)  # gunicorn writes its log line after the answer
    assert payout_id not in server.log_path.read_text(errors="replace"), "the request reached the log as a path"


@pytest.mark.parametrize("name", list(REFUSED))
def test_gunicorn_refuses_before_the_app(server, name):
    payout_id = new_payout(server)
    head = b"POST %s/%s/failed HTTP/1.1\r\nHost: x\r\nX-Admin-Token: %s\r\n" % (
        PAYOUTS.encode(), payout_id.encode(), T)
    rest = REFUSED[name].replace(b"%s", payout_id.encode())
    answer = exchange(server.port, head + rest)
    assert 400 <= status_of(answer) < 600 and status_of(answer) != 500, answer[:200]
    assert_untouched(server, payout_id, answer)


@pytest.mark.parametrize("extra", [5000, 3900])
def test_an_oversized_request_line_is_414(server, extra):
    payout_id = new_payout(server)
    target = b"%s/%s/failed?pad=%s" % (PAYOUTS.encode(), payout_id.encode(), b"a" * extra)
    line = b"POST " + target + b" HTTP/1.1"
    answer = exchange(server.port, line + b"\r\nHost: x\r\nX-Admin-Token: " + T + b"\r\nContent-Length: 2\r\n\r\n{}")
    if len(line) > 4094:
        assert status_of(answer) == 414, answer[:200]
        assert_untouched(server, payout_id, answer)
    else:
        # Just under the limit: served, so the limit is where the settings say.
        assert status_of(answer) == 200, answer[:200]


def test_an_underscore_token_header_is_dropped_not_trusted(server):
    """X_Admin_Token would become HTTP_X_ADMIN_TOKEN in a naive server; gunicorn drops it."""
    payout_id = new_payout(server)
    answer = exchange(server.port, b"POST %s/%s/failed HTTP/1.1\r\nHost: x\r\nX_Admin_Token: %s\r\n"
                      b"Content-Length: 2\r\n\r\n{}" % (PAYOUTS.encode(), payout_id.encode(), T))
    assert status_of(answer) == 401 and answer.endswith(b'{"error":"admin_token_invalid"}\n')
    assert server.repo.get_payout(payout_id)["status"] == "requested"


@pytest.mark.parametrize("chunks", [
    b"zz\r\n{}\r\n0\r\n\r\n",  # not a chunk size
    b"-2\r\n{}\r\n0\r\n\r\n",
    b"0x2\r\n{}\r\n0\r\n\r\n",
    b"2\r\n{}XX0\r\n\r\n",  # a chunk without its CRLF
    b"2;\x01\r\n{}\r\n0\r\n\r\n",  # a control character in a chunk extension
    b"2\r\n{}\r\n0\r\nBad Trailer\r\n\r\n",  # a malformed trailer
], ids=["size", "negative-size", "hex-prefix", "terminator", "extension", "trailer"])
def test_a_malformed_chunked_body_is_invalid_json_not_500(server, chunks):
    """gunicorn hands these to the app and raises from wsgi.input.read(): the
    app must answer 400 invalid_json, as for any body it cannot read."""
    payout_id = new_payout(server)
    answer = exchange(server.port, b"POST %s/%s/failed HTTP/1.1\r\nHost: x\r\nX-Admin-Token: %s\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\n%s" % (PAYOUTS.encode(), payout_id.encode(), T, chunks))
    assert status_of(answer) == 400 and answer.endswith(b'{"error":"invalid_json"}\n'), answer[-200:]
    assert server.repo.get_payout(payout_id)["status"] == "requested"


# -- stalled clients ------------------------------------------------------------

STALLED_BODY = b'{"pad": "' + b"a" * 80 + b'"}'


def stall(port: int, payout_id: str) -> socket.socket:
    """A client that announces a body, sends part of it, and stops."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    sock.sendall(b"POST %s/%s/processing HTTP/1.1\r\nHost: x\r\nX-Admin-Token: %s\r\nContent-Length: %d\r\n\r\n%s"
                 % (PAYOUTS.encode(), payout_id.encode(), T, len(STALLED_BODY), STALLED_BODY[:10]))
    return sock


def test_clients_stalled_mid_body_hold_only_their_own_workers(tmp_path):
    """With N sync workers, N-1 stalled uploads leave one worker serving everyone else."""
    workers = 3
    database = str(tmp_path / "stall.sqlite3")
    db = open_database(database)
    db.init_schema()
    repo = Repository(db)
    repo.credit("alice", Decimal(1000), "USDT", "stall")
    stalled_ids = [repo.create_payout("alice", Decimal(1), "USDT", "0xdest")["id"] for _ in range(workers - 1)]
    with Gunicorn(database, TOKEN, workers=workers, log_path=tmp_path / "g.log") as server:
        stalled = [stall(server.port, payout_id) for payout_id in stalled_ids]
        try:
            time.sleep(0.5)  # every stalled request is now inside a worker's read
            # A stalled request sitting in the backlog would be taken by the
            # last free worker and block it: several requests in a row show
            # that one worker stays free.
            for _ in range(5):
                payout_id = repo.create_payout("alice", Decimal(1), "USDT", "0xdest")["id"]
                status, body, _ = server.request(
                    "POST", f"{PAYOUTS}/{payout_id}/failed", body={}, headers={"X-Admin-Token": TOKEN},
                    timeout=TIMEOUT)
                assert (status, body) == (200, {"ok": True})
                assert server.request("GET", "/healthz", timeout=TIMEOUT)[0] == 200
            assert all(repo.get_payout(p)["status"] == "requested" for p in stalled_ids)
            # The stalled clients finish: each was held, not dropped.
            for sock in stalled:
                sock.sendall(STALLED_BODY[10:])
                answer = read_all(sock)
                assert status_of(answer) == 200, answer[-200:]
            assert all(repo.get_payout(p)["status"] == "processing" for p in stalled_ids)
        finally:
            for sock in stalled:
                sock.close()
    db.close()
