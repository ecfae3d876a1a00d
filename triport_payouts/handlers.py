"""One function per endpoint: validate the path parameters, then the headers,
then the body or query (the contract's order of checks), call the repository,
return the payload. Each takes the WSGI environ, the app (for its
repository, cursors and documents) and the route's path parameters.
"""

from __future__ import annotations

from . import domain, http, idempotency
from .errors import BadRequest
from .pagination import InvalidCursor

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
USER_VIEW_PAYOUTS = 20


# -- the three actions: one code path --------------------------------------

def mark_failed(environ, app, payout_id):
    return _transition(environ, app, payout_id, "failed", _reason_field)


def mark_sent(environ, app, payout_id):
    return _transition(environ, app, payout_id, "sent", _tx_hash_field)


def mark_processing(environ, app, payout_id):
    return _transition(environ, app, payout_id, "processing", _no_fields)


def _transition(environ, app, payout_id, action, fields):
    payout_id = domain.parse_payout_id(payout_id)
    actor = _actor(environ)
    key = idempotency.key_from(environ)
    body = http.read_body(environ)
    values = fields(http.parse_object(body))
    if key is None:
        app.repository.transition(payout_id, action, actor=actor, **values)
        return http.OK
    return idempotency.run_once(
        app.repository, key, idempotency.fingerprint(action, payout_id, body),
        lambda within: app.repository.transition(payout_id, action, actor=actor, within=within, **values),
    )


def _reason_field(body: dict) -> dict:
    reason = body.get("reason")
    if reason is not None and not http.storable_text(reason):
        raise BadRequest("invalid_json")
    return {"reason": reason}


def _tx_hash_field(body: dict) -> dict:
    tx_hash = body.get("tx_hash")
    # Printable text excludes NUL and lone surrogates: nothing either database refuses.
    if not domain.is_clean_text(tx_hash, 256):
        raise BadRequest("invalid_tx_hash")
    return {"tx_hash": tx_hash}


def _no_fields(body: dict) -> dict:
    return {}


def _actor(environ) -> str | None:
    """The optional X-Admin-Actor: who, behind the shared token, did this."""
    try:
        actor = http.header(environ, "X-Admin-Actor")
    except UnicodeError:
        raise BadRequest("invalid_actor") from None
    if actor is not None and not domain.is_clean_text(actor, 128):
        raise BadRequest("invalid_actor")
    return actor


# -- reads -----------------------------------------------------------------

def list_payouts(environ, app):
    query = http.query(environ)
    status = _single(query, "status", "invalid_status")
    if status is not None and status not in domain.STATUSES:
        raise BadRequest("invalid_status")
    user_id = _single(query, "user_id", "invalid_user_id")
    if user_id is not None and not domain.is_clean_text(user_id, 128):
        raise BadRequest("invalid_user_id")
    limit = _limit(_single(query, "limit", "invalid_limit"))
    cursor = _single(query, "cursor", "invalid_cursor")
    filters = (status, user_id)
    after = None
    if cursor is not None:
        try:
            after = app.cursors.decode(cursor, filters)
        except InvalidCursor:
            raise BadRequest("invalid_cursor") from None
    page, last = app.repository.payout_page(status=status, user_id=user_id, limit=limit, after=after)
    return http.Response.json_text(200, http.json_members(
        ("payouts", http.json_array(page)),
        ("next_cursor", http.encode(last and app.cursors.encode(last, filters))),
    ))


def _single(query: dict, name: str, tag: str) -> str | None:
    values = query.get(name)
    if values is None:
        return None
    if len(values) != 1:
        raise BadRequest(tag)
    return values[0]


def _limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_LIMIT
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_LIMIT:
        raise BadRequest("invalid_limit")
    return int(text)


def payout_events(environ, app, payout_id):
    payout_id = domain.parse_payout_id(payout_id)
    return {"events": app.repository.events(payout_id)}


def user_view(environ, app, user_id):
    try:
        user_id = domain.parse_user_id(user_id.encode("latin-1").decode("utf-8"))
    except (UnicodeError, domain.InvalidField):
        # No user with such an id can exist (a NUL, say, which PostgreSQL cannot even compare).
        raise domain.UserNotFound() from None
    summary, newest = app.repository.user_summary(user_id, payouts=USER_VIEW_PAYOUTS)
    members = [(name, http.encode(value)) for name, value in summary.items()]
    return http.Response.json_text(200, http.json_members(*members, ("payouts", http.json_array(newest))))


def openapi(environ, app):
    return app.openapi_document()


def healthz(environ, app):
    return http.OK


def readyz(environ, app):
    app.repository.db.ping()
    return http.OK
