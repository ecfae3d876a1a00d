"""Hostile input straight to the WSGI callable: random methods, paths,
headers, queries and bodies in hand-built environs.

Whatever arrives: never a 500, always the JSON envelope (or a success body),
a status from the documented set, never more than 4097 bytes read from
``wsgi.input`` (never more than an announced length, never a read of a body
that was not announced), and no admin answer without the exact token. Each
call whose environ is valid for ``wsgiref.validate`` also runs through it.
Both backends.
"""

from __future__ import annotations

import io
import json
import sys
import uuid
import warnings
from decimal import Decimal
from urllib.parse import quote
from wsgiref.validate import WSGIWarning, validator

import pytest
from helpers import POSTGRES_URL, TOKEN
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from triport_payouts import create_app
from triport_payouts.db import open_database
from triport_payouts.http import MAX_BODY
from triport_payouts.inputs import MAX_BULK_BODY
from triport_payouts.repository import Repository
from triport_payouts.routing import ROUTES

# Thousands of generated requests: part of `make test`, left out of `make test-fast`.
pytestmark = pytest.mark.fuzz

STATUSES = {200, 201, 400, 401, 404, 405, 409, 422}
TAGS = {
    400: {"invalid_payout_id", "invalid_actor", "invalid_json", "invalid_tx_hash", "invalid_status",
          "invalid_limit", "invalid_cursor", "invalid_user_id", "invalid_idempotency_key", "invalid_type",
          "invalid_order", "invalid_time", "invalid_bulk", "invalid_amount", "invalid_currency",
          "invalid_destination"},
    401: {"admin_token_unset", "admin_token_invalid"},
    404: {"not_found", "payout_not_found", "user_not_found"},
    405: {"method_not_allowed"},
    409: {"payout_not_actionable", "idempotency_key_in_use", "insufficient_balance"},
    422: {"idempotency_key_reused"},
}
OPEN_PATHS = {route.template for route in ROUTES if route.right is None}
PAYOUT_COUNT = 3


class CountingInput:
    """``wsgi.input`` that counts what the app takes.

    `body` is what the client sent; `endless` keeps sending after it (a big
    chunked upload); `broken` raises as a dropped connection does once the
    body is used up. A read with no size, or any read when the server gave
    neither a length nor ``wsgi.input_terminated``, is recorded: on a real
    socket it could block forever.
    """

    def __init__(self, body: bytes, endless: bool, broken: bool, announced: bool):
        self.stream = io.BytesIO(body)
        self.endless, self.broken, self.announced = endless, broken, announced
        self.taken = 0
        self.unbounded_reads = 0
        self.unannounced_reads = 0

    def read(self, size=-1):
        if size is None or size < 0:
            self.unbounded_reads += 1
            size = 1 << 20
        if not self.announced:
            self.unannounced_reads += 1
        chunk = self.stream.read(size)
        if not chunk and self.broken:
            raise ConnectionResetError("client went away")
        if len(chunk) < size and self.endless:
            chunk += b"x" * (size - len(chunk))
        self.taken += len(chunk)
        return chunk

    def readline(self, size=-1):
        return self.read(1 if size is None or size < 0 else min(size, 1))

    def readlines(self, hint=-1):
        return [self.readline()]

    def __iter__(self):
        return iter(lambda: self.readline(), b"")


# -- strategies ---------------------------------------------------------------

def latin1(text: str) -> str:
    """Text as a PEP 3333 server hands it over: its UTF-8 bytes, read as latin-1."""
    return text.encode("utf-8", "surrogatepass").decode("latin-1")


often = st.integers(0, 9).map(lambda n: n < 6)  # True six times in ten
raw_bytes = st.binary(max_size=64).map(lambda b: b.decode("latin-1"))
segment_values = st.one_of(
    # As the client sent them (a server decodes %XX before PATH_INFO, so these
    # arrive double-encoded) and as decoded bytes.
    st.sampled_from(["", "x", "..", ".", "%2F", "%00", "%", "%zz", "%E2%82%AC", "%ff%fe", "null", "0"]),
    st.sampled_from(["\x00", "a\x00b", "\r\n", "\x7f", " ", "\t", latin1("€"), "\xff\xfe", latin1("\U0001f4b8")]),
    st.uuids().map(str),
    st.uuids().map(lambda u: str(u).upper()),
    st.uuids().map(lambda u: f"{{{u}}}"),
    st.uuids().map(lambda u: u.hex),
    st.text(max_size=40).map(latin1),
    st.text(max_size=20).map(lambda t: quote(t, safe="")),
    raw_bytes,
    st.integers(min_value=1, max_value=20_000).map(lambda n: "a" * n),
)


@st.composite
def paths(draw, payout_ids):
    """(PATH_INFO, the method of the route it was made from)."""
    kind = draw(st.sampled_from(["route"] * 6 + ["mangled", "random", "long"]))
    if kind == "random":
        return "/" + draw(st.text(max_size=80).map(latin1)), "GET"
    if kind == "long":
        return "/v1/admin/referrals/payouts/" + "x" * draw(st.integers(4000, 70_000)) + "/failed", "POST"
    route = draw(st.sampled_from(ROUTES))
    template = route.template
    parts = []
    for part in template.split("/"):
        if part.startswith("{"):
            known = payout_ids if route.template.startswith("/v1/admin/referrals/payouts") else ["alice", "bob"]
            part = draw(st.sampled_from(known)) if draw(often) else draw(segment_values)
        parts.append(part)
    path = "/".join(parts)
    if kind == "mangled":
        path = draw(st.sampled_from([
            path + "/", path + "//", "/" + path, path.upper(), path + "/extra", path.replace("/", "//", 2),
            path + "\x00", path + "%2F", path.lstrip("/"), path + "?" + TOKEN, "", "/" + TOKEN,
        ]))
    return path, route.method


methods = st.one_of(
    st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "TRACE", "CONNECT"]),
    st.sampled_from(["get", "post", "", " POST", "POST ", "PoSt", "G\x00ET"]),
    st.text(max_size=12).map(latin1),
)

# The token in every shape a client or a sloppy proxy might produce.
token_values = st.one_of(
    st.just(TOKEN),
    st.sampled_from([
        "", " ", TOKEN + " ", " " + TOKEN, TOKEN.upper(), TOKEN[:-1], TOKEN + "\x00",
        f"{TOKEN},{TOKEN}", f"{TOKEN}, {TOKEN}", f"{TOKEN},x", TOKEN + "\r\n", "Bearer " + TOKEN,
        latin1(TOKEN + "é"), latin1("ünïcödé"), "\xff" * 8, TOKEN.encode("utf-16-le").decode("latin-1"),
    ]),
    raw_bytes,
)
token_keys = st.sampled_from([
    "HTTP_X_ADMIN_TOKEN", "HTTP_X_ADMIN_TOKEN", "HTTP_X_ADMIN_TOKEN",
    "HTTP_X-ADMIN-TOKEN", "HTTP_X_Admin_Token", "X_ADMIN_TOKEN", "HTTP_X_ADMIN_TOKEN_",
    "HTTP_ADMIN_TOKEN", "HTTP_X__ADMIN_TOKEN", "HTTP_AUTHORIZATION",
])
header_values = st.one_of(
    st.sampled_from(["", " ", "ops-anna", "x" * 129, "x" * 256, "k" * 255, "\x7f", "\t"]),
    st.text(max_size=40).map(latin1),
    raw_bytes,
)
other_headers = st.dictionaries(
    st.sampled_from(["HTTP_X_ADMIN_ACTOR", "HTTP_IDEMPOTENCY_KEY", "CONTENT_TYPE", "HTTP_TRANSFER_ENCODING",
                     "HTTP_HOST", "HTTP_COOKIE", "SCRIPT_NAME"]),
    header_values,
    max_size=4,
)

json_bodies = st.sampled_from([
    b"{}", b'{"reason": "r"}', b'{"reason": null}', b'{"reason": 1}', b'{"tx_hash": "0xabc"}',
    b'{"tx_hash": ""}', b'{"tx_hash": null}', b"[]", b"null", b"1", b'"s"', b"NaN", b'{"a": NaN}',
    b'{"reason": "\\ud800"}', b'{"reason": "a\\u0000b"}', b"\xef\xbb\xbf{}", b'{"tx_hash": "\xff"}',
    b"[" * 3000 + b"]" * 3000, b'{"a":' * 1000 + b"1" + b"}" * 1000, b" " * 4096, b" " * 4097,
    b'{"reason": "' + b"r" * 4090 + b'"}', b"{" + b" " * 5000 + b"}",
])
bodies = st.one_of(json_bodies, st.binary(max_size=300), st.integers(4090, 9000).map(lambda n: b"a" * n))


@st.composite
def content_lengths(draw, body: bytes):
    n = len(body)
    return draw(st.one_of(
        st.none(),
        st.sampled_from(["", str(n), str(n), str(max(n - 1, 0)), str(n + 1), str(n + 1000), "0", "-1", "-0",
                         "4096", "4097", "99999999999999999999", "1e3", "abc", " 5", "5 ", "+5", "0x10",
                         "1_0", "²", "٣", f"{n},{n}", str(MAX_BODY + 1), "00000000000000000000000001"]),
    ))


@st.composite
def requests(draw, payout_ids):
    path, route_method = draw(paths(payout_ids))
    body = draw(bodies)
    length = draw(content_lengths(body))
    terminated = draw(st.sampled_from([None, True, False]))
    environ = {
        "REQUEST_METHOD": route_method if draw(often) else draw(methods),
        "PATH_INFO": path,
        "QUERY_STRING": draw(st.one_of(
            st.just(""),
            st.text(max_size=80).map(latin1),
            st.sampled_from(["limit=0", "limit=201", "limit=1&limit=2", "status=sent", "status=SENT",
                             "cursor=abc", "cursor=", "user_id=%00", "user_id=" + "u" * 200, "limit=%EF%BC%91",
                             f"token={TOKEN}", "cursor=" + "A" * 5000, "status=sent&user_id=alice&limit=200"]),
        )),
        "SERVER_NAME": "fuzz.invalid",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "SCRIPT_NAME": "",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    if length is not None:
        environ["CONTENT_LENGTH"] = length
    if terminated is not None:
        environ["wsgi.input_terminated"] = terminated
    if draw(st.booleans()):
        environ[draw(token_keys)] = draw(token_values)
    environ.update(draw(other_headers))
    if draw(often):
        environ["HTTP_X_ADMIN_TOKEN"] = TOKEN
    announced = bool(length) or bool(terminated)
    stream = CountingInput(body, endless=draw(st.booleans()), broken=draw(st.booleans()), announced=announced)
    environ["wsgi.input"] = stream
    return environ


def valid_for_wsgiref(environ) -> bool:
    """What wsgiref.validate asserts of an environ, checked without asserting."""
    length = environ.get("CONTENT_LENGTH")
    if length:
        try:
            if int(length) < 0:
                return False
        except ValueError:
            return False
    path, script = environ.get("PATH_INFO", ""), environ.get("SCRIPT_NAME", "")
    if path and not path.startswith("/"):
        return False
    if script and not script.startswith("/") or script == "/":
        return False
    return bool(script) or "PATH_INFO" in environ


# -- the fixture: one database per backend, a few payouts in it ---------------

@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def fuzz_app(request, tmp_path_factory):
    if request.param == "postgres":
        admin = request.getfixturevalue("postgres_admin")
        schema = f"t_{uuid.uuid4().hex[:16]}"
        admin.execute(f"CREATE SCHEMA {schema}")
        url = f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
        request.addfinalizer(lambda: admin.execute(f"DROP SCHEMA {schema} CASCADE"))
    else:
        url = str(tmp_path_factory.mktemp("fuzz") / "fuzz.sqlite3")
    db = open_database(url)
    db.init_schema()
    repo = Repository(db)
    ids = []
    for user in ("alice", "bob"):
        repo.credit(user, Decimal(1000), "USDT", "fuzz")
        ids += [repo.create_payout(user, Decimal("1.5"), "USDT", "0xdest")["id"] for _ in range(PAYOUT_COUNT)]
    app = create_app(database=url, admin_token=TOKEN)
    yield app, ids
    app.repository.db.close()
    db.close()


# -- the property --------------------------------------------------------------

def call(app, environ):
    """(status line, headers, body bytes) from one call of the callable."""
    started = []

    def start_response(status, headers, exc_info=None):
        started.append((status, headers))
        return lambda data: pytest.fail("the app used write()")

    result = app(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    assert len(started) == 1, "start_response must be called exactly once"
    return started[0][0], started[0][1], body


def check_answer(environ, status_line, headers, body):
    status = int(status_line.split(" ", 1)[0])
    assert status in STATUSES, (status_line, body)
    names = [name.lower() for name, _ in headers]
    head = {name.lower(): value for name, value in headers}
    assert len(names) == len(set(names)), headers
    assert head["cache-control"] == "no-store"
    assert head["content-length"] == str(len(body))
    if status == 200 and environ["PATH_INFO"] == "/metrics":
        # The one answer that is not JSON: Prometheus' text format.
        assert head["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
        assert body.decode("utf-8").endswith("\n")
        payload: object = {}
    else:
        assert head["content-type"] == "application/json"
        payload = json.loads(body)
    if status >= 400:
        assert isinstance(payload, dict) and list(payload) == ["error"], payload
        assert payload["error"] in TAGS[status], (status, payload)
    if status == 405:
        assert head["allow"]
    event(f"{status} {payload.get('error', 'ok') if isinstance(payload, dict) else 'ok'}")
    # No admin answer without the exact token: a request without it can only
    # learn that the route does not exist, takes another method, or needs it.
    open_route = environ["PATH_INFO"] in OPEN_PATHS
    if environ.get("HTTP_X_ADMIN_TOKEN") != TOKEN and not open_route:
        assert status in (401, 404, 405), (status, payload, environ)
        if status == 404:
            assert payload == {"error": "not_found"}
    return status


def check_reads(environ, stream: CountingInput):
    # A bulk action's body may be larger; every other route's is capped at MAX_BODY.
    cap = MAX_BULK_BODY if environ["PATH_INFO"].endswith("/bulk") else MAX_BODY
    assert stream.taken <= cap + 1
    assert stream.unbounded_reads == 0
    assert stream.unannounced_reads == 0, "read a body that was never announced"
    length = environ.get("CONTENT_LENGTH", "")
    if length.isascii() and length.isdigit():
        assert stream.taken <= int(length), "read past the announced Content-Length"


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_hostile_requests_get_the_envelope_never_a_500(fuzz_app, data):
    app, payout_ids = fuzz_app
    environ = data.draw(requests(payout_ids))
    stream = environ["wsgi.input"]
    status_line, headers, body = call(app, environ)
    check_answer(environ, status_line, headers, body)
    check_reads(environ, stream)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_hostile_requests_pass_wsgiref_validate(fuzz_app, data):
    app, payout_ids = fuzz_app
    environ = data.draw(requests(payout_ids).filter(valid_for_wsgiref))
    stream = environ["wsgi.input"]
    with warnings.catch_warnings():
        # An unknown method is only a warning there: it is the point here.
        warnings.simplefilter("ignore", WSGIWarning)
        status_line, headers, body = call(validator(app), environ)
    check_answer(environ, status_line, headers, body)
    check_reads(environ, stream)
