"""A reference for the read paths: mark-failed refused with 409, a payout's
events, and the list's pages, each written by hand in one function, the way
a careful single-purpose endpoint would be, and served like the app:

    gunicorn --config python:triport_payouts.gunicorn_conf bench.reference_reads:application

Unlike bench/reference.py's, these do every check the app does on these
routes, in the contract's order (README: route, method, token, id, then
X-Admin-Actor, Idempotency-Key, the body or the query, then the database),
and answer the same status, headers and bytes: bench/run.py asks both the
same request before it measures them, and fails if they differ. Nothing
more: one dispatch on the path by string operations instead of a route
table, the environment's token only (no named tokens), an Idempotency-Key
checked but no answers kept with it (the bench sends none), the unfiltered
list only (newest first: any of the app's filters is refused), no log line.

What it reuses of the app: nothing but the write of bench/reference.py (for
a payout that is still actionable, which the bench never sends here). The
statements are the app's, written out; the payouts' and the events' JSON is
made by SQLite's json_object, as the app makes a page's; the list's cursor
is signed in the app's format, written out here, so a cursor of either is
good on the other.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from urllib.parse import parse_qs

from bench.reference import ReferenceEndpoint

API = "/v1/admin/referrals/payouts"
PREFIX = API + "/"
MAX_BODY = 4096
MAX_NAME = 128
MAX_KEY = 255
DEFAULT_LIMIT, MAX_LIMIT = 50, 200

UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
CURSOR_KEY = re.compile(
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z\|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
)
# The app's list filters: the reference serves the unfiltered list only.
FILTERS = ("status", "user_id", "order", "created_after", "created_before", "updated_before")

STATUS = "SELECT status FROM payouts WHERE id = ?"
EVENTS = (
    "SELECT json_object('payout_id', payout_id, 'from_status', from_status, 'to_status', to_status,"
    " 'reason', reason, 'tx_hash', tx_hash, 'actor', actor, 'at', at, 'on_behalf_of', on_behalf_of)"
    " FROM payout_events WHERE payout_id = ? ORDER BY id"
)
_PAYOUT = (
    "SELECT json_object('id', id, 'user_id', user_id, 'amount', CAST(amount AS TEXT), 'currency', currency,"
    " 'destination', destination, 'status', status, 'reason', reason, 'tx_hash', tx_hash,"
    " 'created_at', created_at, 'updated_at', updated_at), created_at, id FROM payouts"
)
FIRST_PAGE = _PAYOUT + " ORDER BY created_at DESC, id DESC LIMIT ?"
NEXT_PAGE = _PAYOUT + " WHERE (created_at, id) < (?, ?) ORDER BY created_at DESC, id DESC LIMIT ?"


def _response(status: str, body: bytes, *extra: tuple[str, str]) -> tuple[str, list, list]:
    headers = [("Content-Type", "application/json"), ("Cache-Control", "no-store"),
               ("Content-Length", str(len(body))), *extra]
    return status, headers, [body]


def _error(status: str, tag: str, *extra: tuple[str, str]) -> tuple[str, list, list]:
    return _response(status, b'{"error":"%s"}\n' % tag.encode(), *extra)


# Every refusal, encoded once.
NOT_FOUND = _error("404 Not Found", "not_found")
TOKEN_UNSET = _error("401 Unauthorized", "admin_token_unset")
TOKEN_INVALID = _error("401 Unauthorized", "admin_token_invalid")
BAD_ID = _error("400 Bad Request", "invalid_payout_id")
BAD_ACTOR = _error("400 Bad Request", "invalid_actor")
BAD_KEY = _error("400 Bad Request", "invalid_idempotency_key")
BAD_JSON = _error("400 Bad Request", "invalid_json")
BAD_LIMIT = _error("400 Bad Request", "invalid_limit")
BAD_CURSOR = _error("400 Bad Request", "invalid_cursor")
NO_FILTERS = _error("400 Bad Request", "filter_not_served")
PAYOUT_NOT_FOUND = _error("404 Not Found", "payout_not_found")
NOT_ACTIONABLE = _error("409 Conflict", "payout_not_actionable")
OK = _response("200 OK", b'{"ok":true}\n')
ONLY_GET = _error("405 Method Not Allowed", "method_not_allowed", ("Allow", "GET"))
ONLY_POST = _error("405 Method Not Allowed", "method_not_allowed", ("Allow", "POST"))


def _refuse_constant(name: str):
    raise ValueError(name)


DECODER = json.JSONDecoder(parse_constant=_refuse_constant)  # NaN and Infinity are not JSON


def _actor(header: str) -> str | None:
    """X-Admin-Actor as the text the client sent, if it is a name, else None."""
    try:
        actor = header.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return None
    return actor if 0 < len(actor) <= MAX_NAME and actor.isprintable() and not actor.isspace() else None


def _body(environ) -> bytes | None:
    """The body, of at most MAX_BODY bytes; None when it is longer, or
    shorter than declared. Without a length, read only where the server
    marks the input as terminated (gunicorn does)."""
    declared = environ.get("CONTENT_LENGTH", "")
    if declared:
        if not (declared.isascii() and declared.isdigit()) or int(declared) > MAX_BODY:
            return None
        raw = environ["wsgi.input"].read(int(declared))
        return raw if len(raw) == int(declared) else None
    if environ.get("wsgi.input_terminated"):
        raw = environ["wsgi.input"].read(MAX_BODY + 1)
        return raw if len(raw) <= MAX_BODY else None
    return b""


def _object(raw: bytes) -> dict | None:
    """The body's JSON object ({} when blank), else None."""
    if not raw.strip():
        return {}
    try:
        body = DECODER.decode(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return body if isinstance(body, dict) else None


def _storable(text) -> bool:
    """Text both databases store as given: UTF-8 encodable, no NUL."""
    if not isinstance(text, str) or "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class ReadsReference(ReferenceEndpoint):
    """The three routes and /healthz, on bench/reference.py's connection
    (synchronous=FULL: the write of an actionable payout is durable)."""

    def __init__(self, database: str | None = None, token: str | None = None):
        super().__init__("FULL", database, token)
        # The key of the app's cursors (triport_payouts/pagination.py).
        self.cursor_key = hashlib.sha256(b"triport-payouts cursor\0" + self.token).digest()

    def __call__(self, environ, start_response):
        status, headers, body = self.route(environ)
        start_response(status, headers)
        return body

    def route(self, environ) -> tuple[str, list, list]:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "GET")
        if path == API:
            return self.list_page(environ) if method == "GET" else ONLY_GET
        if path.startswith(PREFIX):
            payout_id, slash, action = path[len(PREFIX):].partition("/")
            if not payout_id or not slash:
                return NOT_FOUND
            if action == "failed":
                return self.mark_failed(environ, payout_id) if method == "POST" else ONLY_POST
            if action == "events":
                return self.events(environ, payout_id) if method == "GET" else ONLY_GET
            return NOT_FOUND
        if path == "/healthz":
            return OK
        return NOT_FOUND

    def refused_token(self, environ) -> tuple | None:
        if not self.token:
            return TOKEN_UNSET
        sent = environ.get("HTTP_X_ADMIN_TOKEN")
        try:
            if sent is not None and hmac.compare_digest(sent.encode("latin-1"), self.token):
                return None
        except UnicodeEncodeError:
            pass
        return TOKEN_INVALID

    # -- POST .../payouts/{id}/failed ---------------------------------------

    def mark_failed(self, environ, payout_id: str) -> tuple[str, list, list]:
        refused = self.refused_token(environ)
        if refused:
            return refused
        if not UUID.fullmatch(payout_id):
            return BAD_ID
        payout_id = payout_id.lower()
        actor = environ.get("HTTP_X_ADMIN_ACTOR")
        if actor is not None:
            actor = _actor(actor)
            if actor is None:
                return BAD_ACTOR
        key = environ.get("HTTP_IDEMPOTENCY_KEY")
        if key is not None and not (1 <= len(key) <= MAX_KEY and all(" " <= c <= "~" for c in key)):
            return BAD_KEY
        raw = _body(environ)
        body = None if raw is None else _object(raw)
        if body is None:
            return BAD_JSON
        reason = body.get("reason")
        if reason is not None and not _storable(reason):
            return BAD_JSON
        conn, lock = self.connection()
        row = conn.execute(STATUS, (payout_id,)).fetchone()
        if row is None:
            return PAYOUT_NOT_FOUND
        if row[0] not in ("requested", "processing"):
            return NOT_ACTIONABLE
        return OK if self.fail(conn, lock, payout_id, row[0], reason, actor) else NOT_ACTIONABLE

    # -- GET .../payouts/{id}/events ------------------------------------------

    def events(self, environ, payout_id: str) -> tuple[str, list, list]:
        refused = self.refused_token(environ)
        if refused:
            return refused
        if not UUID.fullmatch(payout_id):
            return BAD_ID
        payout_id = payout_id.lower()
        conn, _ = self.connection()
        rows = conn.execute(EVENTS, (payout_id,)).fetchall()
        if not rows and conn.execute(STATUS, (payout_id,)).fetchone() is None:
            return PAYOUT_NOT_FOUND
        text = '{"events":[' + ",".join(row[0] for row in rows) + "]}\n"
        return _response("200 OK", text.encode())

    # -- GET .../payouts ----------------------------------------------------------

    def list_page(self, environ) -> tuple[str, list, list]:
        refused = self.refused_token(environ)
        if refused:
            return refused
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True, errors="replace")
        if any(name in query for name in FILTERS):
            return NO_FILTERS
        limit = DEFAULT_LIMIT
        values = query.get("limit")
        if values is not None:
            text = values[0]
            if len(values) != 1 or not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_LIMIT:
                return BAD_LIMIT
            limit = int(text)
        values = query.get("cursor")
        conn, _ = self.connection()
        if values is None:
            rows = conn.execute(FIRST_PAGE, (limit + 1,)).fetchall()
        else:
            after = self.cursor_position(values[0]) if len(values) == 1 else None
            if after is None:
                return BAD_CURSOR
            rows = conn.execute(NEXT_PAGE, (*after, limit + 1)).fetchall()
        cursor = "null"
        if len(rows) > limit:
            cursor = '"' + self.sign(f"{rows[limit - 1][1]}|{rows[limit - 1][2]}".encode()) + '"'
        text = '{"payouts":[' + ",".join(row[0] for row in rows[:limit]) + '],"next_cursor":' + cursor + "}\n"
        return _response("200 OK", text.encode())

    # The app's cursor of the unfiltered list: base64url without padding of
    # "created_at|id" and the first 16 bytes of its HMAC-SHA256, over the
    # text and the filters it was issued for, as the app writes them.
    def mac(self, payload: bytes) -> bytes:
        return hmac.new(self.cursor_key, payload + b"\0(None, None)", hashlib.sha256).digest()[:16]

    def sign(self, payload: bytes) -> str:
        return base64.urlsafe_b64encode(payload + self.mac(payload)).rstrip(b"=").decode("ascii")

    def cursor_position(self, cursor: str) -> tuple[str, str] | None:
        """(created_at, id) of a cursor this list issued, else None."""
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        except (binascii.Error, ValueError):
            return None
        payload, mac = raw[:-16], raw[-16:]
        if not hmac.compare_digest(mac, self.mac(payload)):
            return None
        text = payload.decode("ascii", "replace")
        if not CURSOR_KEY.fullmatch(text):
            return None
        created_at, _, payout_id = text.partition("|")
        return created_at, payout_id


application = ReadsReference()
