"""One function per endpoint: validate the path parameters, then the headers,
then the body or query (the contract's order of checks), call the repository,
return the payload. Each takes the WSGI environ, the repository and the
route's path parameters.
"""

from __future__ import annotations

from . import domain, http
from .errors import BadRequest

OK = {"ok": True}


def mark_failed(environ, repo, payout_id):
    payout_id = domain.parse_payout_id(payout_id)
    actor = _actor(environ)
    body = http.parse_object(http.read_body(environ))
    reason = body.get("reason")
    if reason is not None and not http.storable_text(reason):
        raise BadRequest("invalid_json")
    repo.transition(payout_id, "failed", reason=reason, actor=actor)
    return OK


def _actor(environ) -> str | None:
    """The optional X-Admin-Actor: who, behind the shared token, did this."""
    try:
        actor = http.header(environ, "X-Admin-Actor")
    except UnicodeError:
        raise BadRequest("invalid_actor") from None
    if actor is not None and not domain.is_clean_text(actor, 128):
        raise BadRequest("invalid_actor")
    return actor
