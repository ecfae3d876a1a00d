"""The change feed, GET /v1/admin/referrals/events, as a consumer reads it,
and what it must say: each event of a payout's history, with the payout as
it was right after that change.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from helpers import AUTH

FEED = "/v1/admin/referrals/events"
TYPES = ("payout.requested", "payout.processing", "payout.sent", "payout.failed", "payout.cancelled")
# Member order, as the contract lists it.
EVENT_KEYS = ["id", "type", "created_at", "from_status", "to_status", "reason", "tx_hash", "actor", "on_behalf_of", "payout"]
PAYOUT_KEYS = ["id", "user_id", "amount", "currency", "destination", "status", "reason", "tx_hash",
               "created_at", "updated_at"]
MAX_PAGES = 10_000
# How long a feed may hold committed events back. On PostgreSQL a gap-free
# feed may wait for transactions still open (maybe any in the cluster, other
# tests' included) before it shows later events: it may lag, never skip.
CATCH_UP_SECONDS = 10.0


def check_page(body: dict) -> dict:
    """A 200 answer of the feed: exactly events and next_cursor (a non-empty
    string, always), each event with its members in order; returns it."""
    assert list(body) == ["events", "next_cursor"], body
    assert isinstance(body["next_cursor"], str) and body["next_cursor"], body
    for event in body["events"]:
        assert list(event) == EVENT_KEYS, event
        assert isinstance(event["id"], str) and event["id"], event
        assert list(event["payout"]) == PAYOUT_KEYS, event
    return body


def webtest_get(client, headers=AUTH) -> Callable[[dict], dict]:
    """get(params) -> the feed's 200 body, through a WebTest client."""

    def get(params):
        return check_page(client.get(FEED, params=params, headers=headers).json)

    return get


def read_to_end(get, cursor: str | None = None, **params) -> tuple[list[dict], str]:
    """Every event after `cursor` (from the start without one), calling
    until a page comes back empty: (the events, the cursor to go on from)."""
    events: list[dict] = []
    for _ in range(MAX_PAGES):
        body = get({**params, **({"after": cursor} if cursor is not None else {})})
        cursor = body["next_cursor"]
        if not body["events"]:
            return events, cursor
        events.extend(body["events"])
    raise AssertionError(f"the feed did not end after {MAX_PAGES} pages")


def caught_up(get, count: int, cursor: str | None = None, **params) -> tuple[list[dict], str]:
    """read_to_end, again from the same cursor until it gives at least
    `count` events (or CATCH_UP_SECONDS pass: the caller's assertion then
    shows what is missing)."""
    deadline = time.monotonic() + CATCH_UP_SECONDS
    while True:
        events, end = read_to_end(get, cursor, **params)
        if len(events) >= count or time.monotonic() > deadline:
            return events, end
        time.sleep(0.02)


def drain(get, cursor: str, count: int, **params) -> tuple[list[dict], str]:
    """What a consumer that goes on from `cursor` receives until it has at
    least `count` events (or CATCH_UP_SECONDS pass); unlike caught_up, each
    call goes on from the last cursor, as a tailing consumer does."""
    deadline = time.monotonic() + CATCH_UP_SECONDS
    events: list[dict] = []
    while True:
        more, cursor = read_to_end(get, cursor, **params)
        events.extend(more)
        if len(events) >= count or time.monotonic() > deadline:
            return events, cursor
        time.sleep(0.02)


def after_each_change(listed: dict, history: list[dict]) -> list[dict]:
    """The feed's events (without their ids) of one payout: `listed` is the
    payout as the list shows it now (its fixed fields are taken from it),
    `history` its events as GET .../payouts/{id}/events shows them."""
    state = {**listed, "status": None, "reason": None, "tx_hash": None, "updated_at": None}
    events = []
    for change in history:
        state = {
            **state,
            "status": change["to_status"],
            # A change sets what it carries and keeps the rest (reason and
            # tx_hash are never cleared).
            "reason": change["reason"] if change["reason"] is not None else state["reason"],
            "tx_hash": change["tx_hash"] if change["tx_hash"] is not None else state["tx_hash"],
            "updated_at": change["at"],
        }
        events.append({
            "type": f"payout.{change['to_status']}",
            "created_at": change["at"],
            "from_status": change["from_status"],
            "to_status": change["to_status"],
            "reason": change["reason"],
            "tx_hash": change["tx_hash"],
            "actor": change["actor"],
            "on_behalf_of": change["on_behalf_of"],
            "payout": state,
        })
    assert state == listed, ("the history (its creation event first) must replay to the payout as listed",
                             history, listed)
    return events


def without_id(event: dict) -> dict:
    return {name: value for name, value in event.items() if name != "id"}


def by_payout(events: list[dict]) -> dict[str, list[dict]]:
    """The events of each payout (without ids), in the order they came."""
    grouped: dict[str, list[dict]] = {}
    for event in events:
        grouped.setdefault(event["payout"]["id"], []).append(without_id(event))
    return grouped
