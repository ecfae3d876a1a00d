"""Safe retries: the ``Idempotency-Key`` of every POST (read and checked
in ``inputs.py``).

The first request with a key that passes every check claims it, runs, and
stores its answer (status and exact body) with the key; the success answer
is stored in the write's own transaction, so a crash cannot leave a
transition or a new payout without it. A retry with the same key, route, payout and body
gets that answer byte for byte and changes nothing.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
from collections.abc import Callable

from . import domain
from .http import Response
from .inputs import Action
from .repository import KeyAnswer, Repository

# A claim this old belongs to a worker that died (gunicorn kills a worker
# after 30 s without a response): a retry may take it over.
STALE_CLAIM = datetime.timedelta(seconds=120)
KEEP = datetime.timedelta(hours=24)

log = logging.getLogger("triport_payouts")


def fingerprint(action: str, payout_id: str, body: bytes) -> str:
    """What a retry must repeat exactly: the route's action, the payout, the body."""
    return hashlib.sha256(f"{action}\0{payout_id}\0".encode() + body).hexdigest()


def once(repository: Repository, request: Action, name: str, run: Callable[[str | None], Response]) -> Response:
    """Runs `request` (of the route `name`) at most once for its idempotency
    key: `run(key)` performs it and stores its success answer with `key` in
    its own transaction (`run(None)` when the request has no key). A retry
    gets the stored answer; a refusal is stored on its own. Any other
    failure forgets the claim, so that a retry runs the request again."""
    key = request.idempotency_key
    if key is None:
        return run(None)
    stored = repository.claim_key(key, fingerprint(name, request.payout_id, request.raw_body), _ago(STALE_CLAIM))
    if stored is not None:
        return Response(*stored)
    try:
        return run(key)
    except domain.DomainError as exc:
        refused = Response.refusal(exc)
        try:
            repository.finish_key(KeyAnswer(key, refused.status, refused.body))
        except BaseException:
            _release(repository, key)
            raise
        return refused
    except BaseException:
        _release(repository, key)
        raise


def _release(repository: Repository, key: str) -> None:
    """Forgets the claim so that a retry runs the request, if the database
    lets us: when it does not (down, its disk full), the claim goes stale
    after STALE_CLAIM and the error already on its way is the one to tell."""
    try:
        repository.release_key(key)
    except Exception:
        log.warning("could not release idempotency key claim; it goes stale in %s", STALE_CLAIM)


def prune(repository, older_than: datetime.timedelta = KEEP) -> int:
    """Deletes keys older than `older_than` (never less than 24 hours)."""
    return repository.prune_keys(_ago(max(older_than, KEEP)))


def _ago(delta: datetime.timedelta) -> str:
    return domain.utc_in(-delta)
