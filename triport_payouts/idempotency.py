"""Safe retries: the ``Idempotency-Key`` of the POST actions.

The first request with a key that passes every check claims it, runs, and
stores its answer (status and exact body) with the key; the success answer
is stored in the transition's own transaction, so a crash cannot leave a
transition without it. A retry with the same key, route, payout and body
gets that answer byte for byte and changes nothing.
"""

from __future__ import annotations

import datetime
import hashlib

from . import domain, http
from .errors import BadRequest
from .http import Response

MAX_KEY_LENGTH = 255
# A claim this old belongs to a worker that died (gunicorn kills a worker
# after 30 s without a response): a retry may take it over.
STALE_CLAIM = datetime.timedelta(seconds=120)
KEEP = datetime.timedelta(hours=24)


def key_from(environ) -> str | None:
    """The optional Idempotency-Key: 1 to 255 printable ASCII characters."""
    key = environ.get("HTTP_IDEMPOTENCY_KEY")
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not all(" " <= c <= "~" for c in key):
        raise BadRequest("invalid_idempotency_key")
    return key


def fingerprint(action: str, payout_id: str, body: bytes) -> str:
    """What a retry must repeat exactly: the route's action, the payout, the body."""
    return hashlib.sha256(f"{action}\0{payout_id}\0".encode() + body).hexdigest()


def run_once(repository, key: str, request_fingerprint: str, transition) -> Response:
    """Runs `transition(within)` at most once for `key`; returns its answer."""
    stored = repository.claim_key(key, request_fingerprint, _ago(STALE_CLAIM))
    if stored is not None:
        return Response(*stored)
    ok = http.OK
    try:
        transition(lambda conn: repository.finish_key(key, ok.status, ok.body, conn))
    except domain.DomainError as exc:
        refused = Response.refusal(exc)
        repository.finish_key(key, refused.status, refused.body)
        return refused
    except BaseException:
        repository.release_key(key)
        raise
    return ok


def prune(repository, older_than: datetime.timedelta = KEEP) -> int:
    """Deletes keys older than `older_than` (never less than 24 hours)."""
    return repository.prune_keys(_ago(max(older_than, KEEP)))


def _ago(delta: datetime.timedelta) -> str:
    return (datetime.datetime.now(datetime.timezone.utc) - delta).strftime(domain.TIME_FORMAT)
