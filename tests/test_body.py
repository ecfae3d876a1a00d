"""The 4 KiB request body cap and how the body is read from ``wsgi.input``:
announced lengths, chunked (terminated) input, unannounced bodies, short and
broken streams; then what is read as its JSON object. Requests are built by
hand and, where the environ is valid PEP 3333, sent through
``wsgiref.validate``.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import PAYOUTS, assert_untouched, call, Input, make_environ
from triport_payouts import http
from triport_payouts.errors import InvalidJson

CAP = 4096


def body_of_size(size: int) -> bytes:
    """A valid JSON object {"reason": "xxx..."} of exactly `size` bytes."""
    shell = b'{"reason": ""}'
    body = b'{"reason": "' + b"x" * (size - len(shell)) + b'"}'
    assert len(body) == size
    json.loads(body)
    return body


@pytest.fixture
def payout(make_payout):
    return make_payout()


@pytest.fixture
def url(payout):
    return f"{PAYOUTS}/{payout}/failed"


def assert_failed_with(repo, payout_id, reason):
    payout = repo.get_payout(payout_id)
    assert (payout["status"], payout["reason"]) == ("failed", reason)




# -- at the cap -----------------------------------------------------------------


def test_announced_body_of_exactly_4096_bytes_is_accepted(app, repo, payout, url):
    body = body_of_size(CAP)
    stream = Input(body)
    status, _, answer = call(app, make_environ(stream, path=url, content_length=str(CAP)))
    assert (status, answer) == (200, {"ok": True})
    assert_failed_with(repo, payout, json.loads(body)["reason"])
    assert stream.bytes_read == CAP


def test_announced_body_of_4097_bytes_is_refused_unread(app, repo, payout, url):
    stream = Input(body_of_size(CAP + 1))
    status, _, answer = call(app, make_environ(stream, path=url, content_length=str(CAP + 1)))
    assert (status, answer) == (400, {"error": "invalid_json"})
    assert stream.reads == 0
    assert_untouched(repo, payout)


def test_chunked_body_of_exactly_4096_bytes_is_accepted(app, repo, payout, url):
    body = body_of_size(CAP)
    stream = Input(body)
    status, _, answer = call(app, make_environ(stream, path=url, terminated=True))
    assert (status, answer) == (200, {"ok": True})
    assert_failed_with(repo, payout, json.loads(body)["reason"])


def test_chunked_body_of_4097_bytes_is_refused(app, repo, payout, url):
    stream = Input(body_of_size(CAP + 1))
    status, _, answer = call(app, make_environ(stream, path=url, terminated=True))
    assert (status, answer) == (400, {"error": "invalid_json"})
    assert stream.bytes_read <= CAP + 1
    assert_untouched(repo, payout)


@pytest.mark.parametrize("declared", ["4097", "1000000000", "99999999999999999999999999"])
def test_announced_length_over_the_cap_is_refused_with_nothing_read(app, repo, payout, url, declared):
    stream = Input(b"x" * 10_000)
    status, _, answer = call(app, make_environ(stream, path=url, content_length=declared))
    assert (status, answer) == (400, {"error": "invalid_json"})
    assert (stream.reads, stream.bytes_read) == (0, 0)
    assert_untouched(repo, payout)


def test_chunked_body_over_the_cap_is_refused_reading_at_most_4097_bytes(app, repo, payout, url):
    stream = Input(b"x" * 10_000)
    status, _, answer = call(app, make_environ(stream, path=url, terminated=True))
    assert (status, answer) == (400, {"error": "invalid_json"})
    assert 0 < stream.bytes_read <= CAP + 1
    assert_untouched(repo, payout)


def test_chunked_valid_json_over_the_cap_is_refused(app, repo, payout, url):
    stream = Input(body_of_size(10_000))
    status, _, answer = call(app, make_environ(stream, path=url, terminated=True))
    assert (status, answer) == (400, {"error": "invalid_json"})
    assert stream.bytes_read <= CAP + 1
    assert_untouched(repo, payout)


# -- how the body is read ---------------------------------------------------------


@pytest.mark.parametrize("step", [None, 1, 7, 1000], ids=["whole", "1-byte", "7-bytes", "1000-bytes"])
def test_chunked_small_body_is_accepted_in_any_pieces(app, repo, payout, url, step):
    stream = Input(b'{"reason": "chunked \xe2\x9c\x93"}', step=step)
    status, _, answer = call(app, make_environ(stream, path=url, terminated=True))
    assert (status, answer) == (200, {"ok": True})
    assert_failed_with(repo, payout, "chunked \u2713")


@pytest.mark.parametrize("step", [1, 7, 1000], ids=["1-byte", "7-bytes", "1000-bytes"])
def test_announced_body_is_read_whole_when_the_stream_gives_it_in_pieces(app, repo, payout, url, step):
    body = body_of_size(3000)
    stream = Input(body, step=step)
    status, _, answer = call(app, make_environ(stream, path=url, content_length=str(len(body))))
    assert (status, answer) == (200, {"ok": True})
    assert_failed_with(repo, payout, json.loads(body)["reason"])


def test_nothing_past_the_announced_length_is_read(app, repo, payout, url):
    stream = Input(b'{"reason": "r"}' + b"GET /next-pipelined-request HTTP/1.1\r\n" * 10)
    status, _, answer = call(app, make_environ(stream, path=url, content_length="15"))
    assert (status, answer) == (200, {"ok": True})
    assert stream.bytes_read == 15
    assert_failed_with(repo, payout, "r")


@pytest.mark.parametrize("content_length", [None, ""], ids=["absent", "empty"])
def test_unannounced_unterminated_body_is_empty_and_never_read(app, repo, payout, url, content_length):
    stream = Input(blocking=True)
    status, _, answer = call(app, make_environ(stream, path=url, content_length=content_length))
    assert (status, answer) == (200, {"ok": True})
    assert stream.reads == 0
    assert_failed_with(repo, payout, None)


def test_content_length_zero_is_an_empty_body(app, repo, payout, url):
    stream = Input(blocking=True)
    status, _, answer = call(app, make_environ(stream, path=url, content_length="0"))
    assert (status, answer) == (200, {"ok": True})
    assert stream.reads == 0
    assert_failed_with(repo, payout, None)


def test_empty_chunked_body_is_an_empty_object(app, repo, payout, url):
    status, _, answer = call(app, make_environ(Input(b""), path=url, terminated=True))
    assert (status, answer) == (200, {"ok": True})
    assert_failed_with(repo, payout, None)


@pytest.mark.parametrize("sent", [b"", b'{"reason"', b'{"reason": "x"}'], ids=["nothing", "partial", "whole-object"])
def test_body_shorter_than_its_content_length_is_invalid_json(app, repo, payout, url, sent):
    stream = Input(sent)
    status, _, answer = call(app, make_environ(stream, path=url, content_length="100"))
    assert (status, answer) == (400, {"error": "invalid_json"})
    assert_untouched(repo, payout)


@pytest.mark.parametrize("error", [OSError("broken"), ConnectionResetError(), TimeoutError()],
                         ids=["OSError", "ConnectionResetError", "TimeoutError"])
@pytest.mark.parametrize("terminated", [False, True], ids=["announced", "chunked"])
def test_stream_that_fails_to_read_is_invalid_json(app, repo, payout, url, error, terminated):
    stream = Input(error=error)
    environ = make_environ(stream, path=url, content_length=None if terminated else "15", terminated=terminated)
    status, _, answer = call(app, environ)
    assert (status, answer) == (400, {"error": "invalid_json"})
    assert_untouched(repo, payout)


@pytest.mark.parametrize("declared", [
    "-1", "-15", "abc", "1e3", "0x0f", "15.0", "1 5", "15abc", "\u00b2",
])
def test_malformed_content_length_is_invalid_json(app, repo, payout, url, declared):
    # A 15-byte valid object, so only the malformed length can refuse it.
    stream = Input(b'{"reason": "r"}')
    # wsgiref.validate itself rejects these lengths, so the app is called bare.
    status, headers, answer = call(app, make_environ(stream, path=url, content_length=declared), validate=False)
    assert (status, answer) == (400, {"error": "invalid_json"})
    assert headers["Cache-Control"] == "no-store"
    assert_untouched(repo, payout)


# -- the JSON object ------------------------------------------------------------

REFUSED = object()
# Around a value: what JSON calls whitespace, and what only Python or UTF-8 would.
PADDING = st.text(st.sampled_from([" ", "\t", "\n", "\r", "\x0b", "\x0c", "\xa0", "\u2028", "x", "}"]), max_size=3)
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=6,
)


def by_the_json_module(body: bytes):
    """What json.loads makes of a body, as parse_object is to read it."""
    if not body.strip():
        return {}

    def refuse(name):
        raise ValueError(name)

    try:
        value = json.loads(body.decode("utf-8"), parse_constant=refuse)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return REFUSED
    return value if isinstance(value, dict) else REFUSED


def parsed(body: bytes):
    try:
        return http.parse_object(body)
    except InvalidJson:
        return REFUSED


@settings(max_examples=1500, deadline=None)
@given(st.tuples(PADDING, VALUES.map(json.dumps) | st.sampled_from(["NaN", '{"a": -Infinity}', "{", ""]), PADDING)
       .map(lambda parts: "".join(parts).encode("utf-8")) | st.binary(max_size=12))
def test_the_body_is_read_as_the_json_module_reads_it(body):
    assert parsed(body) == by_the_json_module(body)
