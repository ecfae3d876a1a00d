"""One function per endpoint: validate the fields, call the repository,
return the payload (a dict, or an encoded ``http.Response``).

Each takes the services it calls and the values its route's reader
(``inputs.py``) took from the request, already checked up to the fields.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

from . import domain, http, idempotency, metrics, pagination, writes
from .errors import (
    InvalidCursor,
    InvalidJson,
    InvalidLimit,
    InvalidOrder,
    InvalidStatus,
    InvalidTime,
    InvalidTxHash,
    InvalidType,
    InvalidUserId,
)
from .inputs import Action
from .pagination import Cursors
from .repository import ALL_PAYOUTS, KeyAnswer, PageFilters, Repository

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
USER_VIEW_PAYOUTS = 20
FEED_LIMIT = 100


@dataclass(frozen=True)
class Services:
    """What the handlers call."""

    repository: Repository
    cursors: Cursors
    metrics: metrics.Metrics


# -- the three actions: one code path --------------------------------------

def mark_failed(services: Services, request: Action) -> http.Response:
    return _act(services, request, "failed", **action_fields("failed", request.body))


def mark_sent(services: Services, request: Action) -> http.Response:
    return _act(services, request, "sent", **action_fields("sent", request.body))


def mark_processing(services: Services, request: Action) -> http.Response:
    return _act(services, request, "processing")


def action_fields(action: str, body: dict) -> dict:
    """What an action takes from its body, checked: {"reason": text or None}
    for failed, {"tx_hash": text} for sent, {} otherwise. Raises InvalidJson
    (a reason that is not storable text) or InvalidTxHash. Also each item of a bulk
    action (bulk.py) and each row of an import (reconcile.py)."""
    if action == "failed":
        reason = body.get("reason")
        if reason is not None and not domain.storable_text(reason):
            raise InvalidJson()
        return {"reason": reason}
    if action == "sent":
        tx_hash = body.get("tx_hash")
        # Printable text excludes NUL and lone surrogates: nothing either database refuses.
        if not domain.is_clean_text(tx_hash, domain.MAX_REFERENCE_LENGTH):
            raise InvalidTxHash()
        return {"tx_hash": tx_hash}
    return {}


def cancel_payout(services: Services, request: Action) -> http.Response:
    return _act(services, request, "cancel")


def _act(services: Services, request: Action, action: str, **fields) -> http.Response:
    def run(key: str | None) -> http.Response:
        services.repository.transition(
            request.payout_id, action, actor=request.actor, on_behalf_of=request.on_behalf_of,
            answer=None if key is None else KeyAnswer(key, http.OK.status, http.OK.body), **fields,
        )
        return http.OK

    return idempotency.once(services.repository, request, action, run)


# -- the writes: 201 with what was created ---------------------------------

def create_credit(services: Services, request: Action) -> http.Response:
    return _create(services, request, "credit", writes.credit)


def create_payout(services: Services, request: Action) -> http.Response:
    return _create(services, request, "create_payout", writes.create_payout,
                   actor=request.actor, on_behalf_of=request.on_behalf_of)


def _create(services: Services, request: Action, name: str, write: Callable, **who) -> http.Response:
    def run(key: str | None) -> http.Response:
        answer = None if key is None else (lambda created: KeyAnswer(key, 201, _created(created).body))
        return _created(write(services.repository, request.body, answer=answer, **who))

    return idempotency.once(services.repository, request, name, run)


def _created(record: dict) -> http.Response:
    return http.Response.json(201, record)


# -- reads -----------------------------------------------------------------

ORDERS = {"newest": False, "oldest": True}  # order= and whether it is oldest first


def list_payouts(services: Services, query: dict[str, list[str]]) -> http.Response:
    status = _single(query, "status", InvalidStatus)
    if status is not None and status not in domain.STATUSES:
        raise InvalidStatus()
    user_id = _single(query, "user_id", InvalidUserId)
    if user_id is not None and not domain.is_clean_text(user_id, domain.MAX_NAME_LENGTH):
        raise InvalidUserId()
    order = _single(query, "order", InvalidOrder)
    if order is not None and order not in ORDERS:
        raise InvalidOrder()
    filters = PageFilters(
        status, user_id,
        created_after=_time(query, "created_after"),
        created_before=_time(query, "created_before", upper_bound=True),
        updated_before=_time(query, "updated_before", upper_bound=True),
        oldest=ORDERS[order or "newest"],
    )
    limit = _limit(_single(query, "limit", InvalidLimit))
    cursor = _single(query, "cursor", InvalidCursor)
    # A cursor is signed over what it was issued for; the filters of the
    # first release alone keep the form they had, so its cursors stay good.
    signed = (status, user_id) if filters[2:] == ALL_PAYOUTS[2:] else tuple(filters)
    after = None
    if cursor is not None:
        try:
            after = services.cursors.decode(cursor, signed)
        except pagination.InvalidCursor:
            raise InvalidCursor() from None
    page, last = services.repository.payout_page(filters, limit=limit, after=after)
    return http.Response.json_text(200, http.json_members(
        ("payouts", http.json_array(page)),
        ("next_cursor", http.encode(last and services.cursors.encode(last, signed))),
    ))


def _time(query: dict[str, list[str]], name: str, upper_bound: bool = False) -> str | None:
    """An optional RFC 3339 time as stored (an exclusive upper bound rounds up: see domain.parse_time)."""
    text = _single(query, name, InvalidTime)
    if text is None:
        return None
    try:
        return domain.parse_time(text, round_up=upper_bound)
    except domain.InvalidField:
        raise InvalidTime() from None


def _single(query: dict[str, list[str]], name: str, error: Callable[[], Exception]) -> str | None:
    values = query.get(name)
    if values is None:
        return None
    if len(values) != 1:
        raise error()
    return values[0]


def list_events(services: Services, query: dict[str, list[str]]) -> http.Response:
    """The change feed: events oldest first, after the `after` cursor, of
    the `type`s given (comma-separated); next_cursor always names the
    position after the last event, so calling again with it tails the feed."""
    types = _single(query, "type", InvalidType)
    statuses: tuple[str, ...] = ()
    if types is not None:
        try:
            statuses = tuple(sorted({domain.EVENT_TYPES[name] for name in types.split(",")}))
        except KeyError:
            raise InvalidType() from None
    limit = _limit(_single(query, "limit", InvalidLimit), FEED_LIMIT)
    cursor = _single(query, "after", InvalidCursor)
    # A position means something on one dialect only (a database moved by
    # copy-data renumbers its events): its cursor is refused on the other.
    filters = (services.repository.db.dialect, statuses)
    after = (0, 0)
    if cursor is not None:
        try:
            after = services.cursors.decode_position(cursor, filters)
        except pagination.InvalidCursor:
            raise InvalidCursor() from None
    events, position = services.repository.feed(after=after, statuses=statuses, limit=limit)
    return http.Response.json(200, {
        "events": events, "next_cursor": services.cursors.encode_position(position, filters),
    })


def _limit(text: str | None, default: int = DEFAULT_LIMIT) -> int:
    if text is None:
        return default
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_LIMIT:
        raise InvalidLimit()
    return int(text)


def payout_events(services: Services, payout_id: str) -> http.Response:
    events = services.repository.events_json(payout_id)
    return http.Response.json_text(200, http.json_members(("events", http.json_array(events))))


def user_view(services: Services, user_id: str) -> http.Response:
    summary, newest = services.repository.user_summary(user_id, payouts=USER_VIEW_PAYOUTS)
    members = [(name, http.encode(value)) for name, value in summary.items()]
    return http.Response.json_text(200, http.json_members(*members, ("payouts", http.json_array(newest))))


def prometheus_metrics(services: Services) -> http.Response:
    return http.Response.text(200, services.metrics.render(), metrics.CONTENT_TYPE)


def openapi(services: Services) -> http.Response:
    return _openapi_document()


def healthz(services: Services) -> http.Response:
    return http.OK


def readyz(services: Services) -> http.Response:
    services.repository.db.ping()
    return http.OK


@functools.cache
def _openapi_document() -> http.Response:
    """The OpenAPI document shipped in the package, read and encoded once."""
    text = resources.files(__package__).joinpath("openapi.json").read_text("utf-8")
    return http.Response.json(200, json.loads(text))
