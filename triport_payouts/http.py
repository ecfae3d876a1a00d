"""HTTP on top of the WSGI environ: the capped body, the JSON object, headers,
the query, and the bytes of a JSON response.
"""

from __future__ import annotations

import functools
import json
import logging
from http import HTTPStatus
from typing import NamedTuple
from urllib.parse import parse_qs

from .domain import DomainError
from .errors import ApiError, InvalidJson, from_domain

MAX_BODY = 4096

log = logging.getLogger("triport_payouts")

_STATUS_LINES = {s.value: f"{s.value} {s.phrase}" for s in HTTPStatus}


def read_body(environ, cap: int = MAX_BODY) -> bytes:
    """At most `cap` bytes of the request body; raises InvalidJson.

    A declared length over the cap is refused unread. Without a length, only a
    server that marks the input as terminated (chunked, under gunicorn) is read,
    and then at most one byte past the cap; otherwise the body is empty, as a
    read could block forever.
    """
    stream = environ.get("wsgi.input")
    declared = environ.get("CONTENT_LENGTH", "")
    if declared:
        if not (declared.isascii() and declared.isdigit()):
            raise InvalidJson()
        wanted = int(declared)
        if wanted > cap:
            raise InvalidJson()
        body = _read_at_most(stream, wanted)
        if len(body) != wanted:
            # The client closed before sending what it announced.
            raise InvalidJson()
        return body
    if environ.get("wsgi.input_terminated"):
        body = _read_at_most(stream, cap + 1)
        if len(body) > cap:
            raise InvalidJson()
        return body
    return b""


def _read_at_most(stream, limit: int) -> bytes:
    if limit == 0:
        return b""  # Content-Length: 0 (a read of nothing may still block)
    try:
        body = stream.read(limit)
        while 0 < len(body) < limit:
            # A short read (a body still arriving): read on to the limit or the end.
            more = stream.read(limit - len(body))
            if not more:
                break
            body += more
    except Exception as exc:
        # The server's own error for a broken or malformed upload (a bad chunk
        # size under gunicorn, a reset connection): the client's fault, a 400.
        log.info("request body unreadable: %s", type(exc).__name__)
        raise InvalidJson() from None
    return body


def _refuse_constant(name: str):
    raise ValueError(name)


# One decoder for every request: json.loads(..., parse_constant=...) builds a new one each call.
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)
# What JSON calls whitespace (RFC 8259), and no more: str.strip() would also take \x0c.
_JSON_WHITESPACE = " \t\n\r"


def parse_object(body: bytes) -> dict:
    """The body as a JSON object ({} when empty); raises InvalidJson."""
    if not body.strip():
        return {}
    try:
        # JSONDecoder.decode's own steps, less its two regex scans for the
        # whitespace around the value (a third of its time on a small body).
        text = body.decode("utf-8").strip(_JSON_WHITESPACE)
        value, end = _DECODER.raw_decode(text)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise InvalidJson() from None
    if end != len(text) or not isinstance(value, dict):
        raise InvalidJson()
    return value


def header(environ, name: str) -> str | None:
    """A request header as text, decoded from the bytes the client sent.

    Returns None when absent; raises UnicodeError when not UTF-8.
    """
    raw = environ.get(_cgi_name(name))
    if raw is None:
        return None
    return raw.encode("latin-1").decode("utf-8")


@functools.lru_cache(maxsize=32)
def _cgi_name(name: str) -> str:
    return "HTTP_" + name.upper().replace("-", "_")


def sent_token(environ, bearer: bool = False) -> bytes | None:
    """The token a request sends, as bytes: X-Admin-Token, or else, on a
    route that takes it (``bearer``), ``Authorization: Bearer <token>``,
    which is what Prometheus sends. None when it sends neither."""
    given = environ.get("HTTP_X_ADMIN_TOKEN")
    if given is None and bearer:
        scheme, _, credentials = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
        # The scheme is case-insensitive (RFC 9110); the token is what follows the space.
        if scheme.lower() == "bearer" and credentials.strip(" "):
            given = credentials.strip(" ")
    try:
        return None if given is None else given.encode("latin-1")
    except UnicodeEncodeError:
        return None


def query(environ) -> dict[str, list[str]]:
    return parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True, errors="replace")


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def encode(value) -> str:
    """JSON text as every response writes it: compact, UTF-8 left as is."""
    return _ENCODER.encode(value)


def json_members(*members: tuple[str, str]) -> str:
    """A JSON object from (key, value already encoded as JSON) pairs, in order."""
    return "{" + ",".join([_member_key(key) + value for key, value in members]) + "}"


@functools.lru_cache(maxsize=64)
def _member_key(key: str) -> str:
    # The keys are the code's own names, a few dozen: each encoded once.
    return encode(key) + ":"


def json_array(texts: list[str]) -> str:
    """A JSON array of values already encoded as JSON."""
    return "[" + ",".join(texts) + "]"


class Response(NamedTuple):
    """A JSON response: its status, its exact body bytes, and extra headers.
    A tuple: one is made for most requests, and a frozen dataclass costs
    a microsecond more to make; the shared ones (OK, each refusal) stay
    immutable all the same."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str = "application/json"

    @classmethod
    def json(cls, status: int, payload, headers=()) -> Response:
        return cls.json_text(status, encode(payload), headers)

    @classmethod
    def json_text(cls, status: int, text: str, headers=()) -> Response:
        """A response whose JSON is already encoded."""
        return cls(status, text.encode("utf-8") + b"\n", tuple(headers))

    @classmethod
    def text(cls, status: int, text: str, content_type: str) -> Response:
        """A response that is not JSON (the metrics), as UTF-8."""
        return cls(status, text.encode("utf-8"), content_type=content_type)

    @classmethod
    def error(cls, exc: ApiError) -> Response:
        return _error_response(exc.status, exc.tag, exc.headers)

    @classmethod
    def refusal(cls, exc: DomainError) -> Response:
        """The answer to a domain refusal (an unmapped one is a 500)."""
        kind = type(exc)
        response = _REFUSALS.get(kind)
        if response is None:
            response = _REFUSALS[kind] = cls.error(from_domain(exc))
        return response

    def start(self, start_response) -> list[bytes]:
        """Calls start_response once; returns the WSGI body iterable."""
        start_response(_STATUS_LINES.get(self.status) or f"{self.status} Unknown", [
            ("Content-Type", self.content_type), ("Cache-Control", "no-store"),
            ("Content-Length", str(len(self.body))), *self.headers,
        ])
        return [self.body]


@functools.lru_cache(maxsize=64)
def _error_response(status: int, tag: str, headers: tuple) -> Response:
    # A handful of distinct errors, answered often (every 409): encode each once.
    return Response.json(status, {"error": tag}, headers)


# One answer per kind of refusal, encoded once: every 409 is one of a handful.
_REFUSALS: dict[type[DomainError], Response] = {}


# The answer of every successful action and health check, encoded once.
OK = Response.json(200, {"ok": True})
