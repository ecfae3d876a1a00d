"""``POST /v1/admin/referrals/payouts/bulk``: one action on up to 100 payouts
named by id (never by a filter), as a batch transfer settles them.

Each item is the single action's compare-and-set, with its own event, in a
transaction of its own: the write lock is held for one item at a time, so
single actions are never starved behind a batch. The answer reports each
item in request order, with the tag the single action would have answered.
One Idempotency-Key covers the request; its answer is stored once every
item has run.
"""

from __future__ import annotations

from . import domain, http, idempotency
from .errors import ApiError, InvalidBulk, from_database, tag_of
from .handlers import Services, action_fields
from .inputs import Action
from .repository import KeyAnswer

ACTIONS = ("processing", "sent", "failed")
MAX_ITEMS = 100


def settle(services: Services, request: Action) -> http.Response:
    action, items = parse(request.body)
    repository = services.repository

    def run(key: str | None) -> http.Response:
        results: list[dict] = []
        unavailable = None
        for item in items:
            if unavailable is None:
                try:
                    results.append(_one(services, request, action, item))
                    continue
                except repository.db.unavailable_errors as exc:
                    # The items before it are applied: the answer says which,
                    # rather than a 503 for all; the rest are not tried (each
                    # would wait out the lock timeout).
                    unavailable = from_database(exc).tag
            results.append({"id": item["id"], "ok": False, "error": unavailable})
        succeeded = sum(result["ok"] for result in results)
        response = http.Response.json(200, {
            "results": results, "succeeded": succeeded, "failed": len(results) - succeeded,
        })
        if key is not None:
            repository.finish_key(KeyAnswer(key, response.status, response.body))
        return response

    return idempotency.once(repository, request, "bulk", run)


def parse(body: dict) -> tuple[str, list[dict]]:
    """(the action, the items); raises InvalidBulk for a request of the wrong
    shape: an unknown action, items not a list of 1 to MAX_ITEMS objects
    each with an id, or one payout named twice."""
    action, items = body.get("action"), body.get("items")
    if action not in ACTIONS or not isinstance(items, list) or not 1 <= len(items) <= MAX_ITEMS:
        raise InvalidBulk()
    seen = set()
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise InvalidBulk()
        # Two spellings of one id (upper and lower case) are one payout.
        seen.add(item["id"].lower())
    if len(seen) != len(items):
        raise InvalidBulk()
    return action, items


def _one(services: Services, request: Action, action: str, item: dict) -> dict:
    """One item, applied as the single action would be: {"id", "ok": True} or
    {"id", "ok": False, "error": tag}."""
    try:
        payout_id = domain.parse_payout_id(item["id"])
        services.repository.transition(payout_id, action, actor=request.actor, on_behalf_of=request.on_behalf_of,
                                       **action_fields(action, item))
    except (ApiError, domain.DomainError) as exc:
        return {"id": item["id"], "ok": False, "error": tag_of(exc)}
    return {"id": item["id"], "ok": True}
