"""What each kind of route hands its handler, read from the WSGI environ in
the contract's order of checks (after the route and the token): the path
parameters, then the headers, then the body or the query.

A reader returns the handler's keyword arguments, so a handler sees values,
never the environ, and can be called without WSGI.
"""

from __future__ import annotations

from typing import NamedTuple

from . import domain, http
from .errors import InvalidActor, InvalidIdempotencyKey

MAX_IDEMPOTENCY_KEY = 255
MAX_BULK_BODY = 64 * 1024

# The environ key under which the app leaves the authenticated caller
# (tokens.Operator), as a server leaves REMOTE_USER.
OPERATOR = "triport.operator"


class Action(NamedTuple):
    """A POST on one payout (payout_id), or one that creates (payout_id
    ""), checked up to its fields (a tuple: made on every action, and a
    frozen dataclass costs a microsecond to make)."""

    payout_id: str
    actor: str | None
    idempotency_key: str | None
    raw_body: bytes  # what a retry must repeat byte for byte
    body: dict
    on_behalf_of: str | None = None


def action(environ, params: dict[str, str]) -> dict:
    """{"request": Action}: the payout id, X-Admin-Actor, Idempotency-Key, the body."""
    payout_id = domain.parse_payout_id(params["payout_id"])
    return {"request": _action(environ, payout_id)}


def write(environ, params: dict[str, str]) -> dict:
    """{"request": Action} for a POST that creates: no payout id."""
    return {"request": _action(environ, "")}


def bulk(environ, params: dict[str, str]) -> dict:
    """{"request": Action} for a bulk action: no payout id, a larger body."""
    return {"request": _action(environ, "", MAX_BULK_BODY)}


def _action(environ, payout_id: str, cap: int = http.MAX_BODY) -> Action:
    actor = _actor(environ)
    key = _idempotency_key(environ)
    raw = http.read_body(environ, cap)
    body = http.parse_object(raw)
    operator = environ.get(OPERATOR)
    if operator is not None and operator.name is not None:
        # A named token is the actor; the name it sends is whom it acts for.
        return Action(payout_id, operator.name, key, raw, body, actor)
    return Action(payout_id, actor, key, raw, body)


def payout(environ, params: dict[str, str]) -> dict:
    """{"payout_id": the canonical id}; raises InvalidPayoutId."""
    return {"payout_id": domain.parse_payout_id(params["payout_id"])}


def user(environ, params: dict[str, str]) -> dict:
    """{"user_id": the segment as the text the client sent}. No user with an
    id that is not UTF-8 or not a valid id can exist: UserNotFound."""
    try:
        user_id = domain.parse_user_id(params["user_id"].encode("latin-1").decode("utf-8"))
    except (UnicodeError, domain.InvalidField):
        # A NUL, say, which PostgreSQL cannot even compare.
        raise domain.UserNotFound() from None
    return {"user_id": user_id}


def query(environ, params: dict[str, str]) -> dict:
    """{"query": {name: [values]}}."""
    return {"query": http.query(environ)}


def nothing(environ, params: dict[str, str]) -> dict:
    return {}


def _actor(environ) -> str | None:
    """The optional X-Admin-Actor: who, behind the shared token, did this."""
    try:
        actor = http.header(environ, "X-Admin-Actor")
    except UnicodeError:
        raise InvalidActor() from None
    if actor is not None and not domain.is_clean_text(actor, domain.MAX_NAME_LENGTH):
        raise InvalidActor()
    return actor


def _idempotency_key(environ) -> str | None:
    """The optional Idempotency-Key: 1 to 255 printable ASCII characters."""
    key = environ.get("HTTP_IDEMPOTENCY_KEY")
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY or not all(" " <= c <= "~" for c in key):
        raise InvalidIdempotencyKey()
    return key
