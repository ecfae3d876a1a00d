"""The calls: ``admin.referrals.payouts``, ``admin.referrals.credits``,
``admin.referrals.users`` and ``admin.referrals.events`` (the change feed).

Path segments are percent-encoded (``/`` included); the server validates
every value and answers a malformed one with its own error class.
"""

from __future__ import annotations

import builtins
import datetime
import urllib.parse
import uuid
from collections.abc import Iterable, Iterator
from decimal import Decimal

PAYOUTS = "/v1/admin/referrals/payouts"
USERS = "/v1/admin/referrals/users"
EVENTS = "/v1/admin/referrals/events"
CREDITS = "/v1/admin/referrals/credits"


def _segment(value, name: str) -> str:
    if isinstance(value, uuid.UUID):
        value = str(value)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string")
    return urllib.parse.quote(value, safe="")


def _time(value, name: str) -> str | None:
    if isinstance(value, datetime.datetime):
        if value.utcoffset() is None:
            raise ValueError(f"{name} must be an aware datetime (a naive one names no instant)")
        return value.isoformat()
    return value


class Referrals:
    def __init__(self, transport):
        self.payouts = Payouts(transport)
        self.credits = Credits(transport)
        self.users = Users(transport)
        self.events = Events(transport)


class Payouts:
    """Referral payouts: the three operator actions and the reads.

    The actions return True once the server answered ``{"ok": true}``; any
    refusal raises the ``TriportError`` subclass of its tag (e.g.
    ``PayoutNotActionable``). Each action call is safe to retry as a whole
    if you pass the same ``idempotency_key`` (the one on the exception).
    """

    def __init__(self, transport):
        self._transport = transport

    def mark_failed(self, payout_id: str, reason: str | None = None, *,
                    idempotency_key: str | None = None) -> bool:
        """requested/processing -> failed, with an optional reason (an annotation only)."""
        body = {} if reason is None else {"reason": reason}
        return self._act(payout_id, "failed", body, idempotency_key)

    def mark_sent(self, payout_id: str, tx_hash: str, *, idempotency_key: str | None = None) -> bool:
        """requested/processing -> sent, recording the transfer's tx_hash."""
        return self._act(payout_id, "sent", {"tx_hash": tx_hash}, idempotency_key)

    def mark_processing(self, payout_id: str, *, idempotency_key: str | None = None) -> bool:
        """requested -> processing."""
        return self._act(payout_id, "processing", {}, idempotency_key)

    def cancel(self, payout_id: str, *, idempotency_key: str | None = None) -> bool:
        """requested -> cancelled: the amount is available again (scope ``system``)."""
        return self._act(payout_id, "cancel", {}, idempotency_key)

    def create(self, user_id: str, amount: str, currency: str, destination: str, *,
               idempotency_key: str | None = None) -> dict:
        """A payout request (status ``requested``), returned as the server
        created it; ``InsufficientBalance`` past the available balance. The
        amount is a string ("20.00"): a float could not say it exactly.
        Retried with one key, so a lost answer never makes a second payout."""
        body = {"user_id": user_id, "amount": _amount(amount), "currency": currency, "destination": destination}
        return self._transport.post(PAYOUTS, body, idempotency_key)

    def bulk(self, action: str, items: Iterable[dict], *, idempotency_key: str | None = None) -> dict:
        """One action ("processing", "sent" or "failed") on up to 100 payouts:
        items like ``{"id": ..., "tx_hash": ...}`` or ``{"id": ..., "reason": ...}``.
        Returns ``{"results": [{"id", "ok", "error"?}, ...], "succeeded", "failed"}``:
        an item refused is reported there, not raised; a request of the wrong
        shape raises ``InvalidBulk``. One key covers the whole request."""
        return self._transport.post(f"{PAYOUTS}/bulk", {"action": action, "items": list(items)}, idempotency_key)

    def _act(self, payout_id, action, body, idempotency_key) -> bool:
        path = f"{PAYOUTS}/{_segment(payout_id, 'payout_id')}/{action}"
        return self._transport.post(path, body, idempotency_key).get("ok") is True

    def list(self, status: str | None = None, user_id: str | None = None,
             limit: int | None = None, *, order: str | None = None,
             created_after: str | datetime.datetime | None = None,
             created_before: str | datetime.datetime | None = None,
             updated_before: str | datetime.datetime | None = None) -> Iterator[dict]:
        """Every matching payout, following ``next_cursor`` across all pages.
        ``limit`` is the page size (1 to 200; the server's default is 50), not
        a cap on the total. ``order`` is ``"newest"`` (the default) or
        ``"oldest"``, by creation time; with ``updated_before`` the order is
        that of the last change instead, so ``list(status="processing",
        updated_before=an_hour_ago, order="oldest")`` gives the stalled
        payouts, stuck longest first. The times are exclusive bounds: RFC 3339
        text with its offset, or aware ``datetime`` objects. The first page is
        fetched by this call, so a bad filter raises here (e.g.
        ``InvalidStatus``, ``InvalidTime``); later pages are fetched as the
        iteration reaches them.
        """
        query = {
            "status": status, "user_id": user_id, "limit": limit, "order": order,
            "created_after": _time(created_after, "created_after"),
            "created_before": _time(created_before, "created_before"),
            "updated_before": _time(updated_before, "updated_before"),
        }
        return _Pages(self._transport, query)

    def events(self, payout_id: str) -> builtins.list[dict]:
        """The payout's audit events, oldest first."""
        return self._transport.get(f"{PAYOUTS}/{_segment(payout_id, 'payout_id')}/events")["events"]


class _Pages(Iterator[dict]):
    def __init__(self, transport, query: dict):
        self._transport = transport
        self._query = query
        self._page = self._fetch(None)

    def _fetch(self, cursor):
        page = self._transport.get(PAYOUTS, {**self._query, "cursor": cursor})
        self._cursor = page.get("next_cursor")
        return iter(page["payouts"])

    def __next__(self) -> dict:
        while True:
            for payout in self._page:
                return payout
            if self._cursor is None:
                raise StopIteration
            self._page = self._fetch(self._cursor)


class Credits:
    """Referral earnings (scope ``system``)."""

    def __init__(self, transport):
        self._transport = transport

    def create(self, user_id: str, amount: str, currency: str, note: str | None = None, *,
               idempotency_key: str | None = None) -> dict:
        """Records earnings; returns the credit as the server created it."""
        body = {"user_id": user_id, "amount": _amount(amount), "currency": currency}
        if note is not None:
            body["note"] = note
        return self._transport.post(CREDITS, body, idempotency_key)


def _amount(value) -> str:
    """An amount as the API takes it: text. A Decimal is written exactly; a
    float is refused here, before it could be sent rounded."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if not isinstance(value, str):
        raise TypeError("amount must be a str such as '12.50' (or a Decimal), never a float")
    return value


class Users:
    def __init__(self, transport):
        self._transport = transport

    def get(self, user_id: str) -> dict:
        """The operator view of a user: balances per currency, counts per
        status and the 20 newest payouts. ``UserNotFound`` when the user has
        neither credits nor payouts."""
        return self._transport.get(f"{USERS}/{_segment(user_id, 'user_id')}")


class Events:
    """The change feed: every change of every payout, oldest first."""

    def __init__(self, transport):
        self._transport = transport

    def list(self, type: str | Iterable[str] | None = None, after: str | None = None,
             limit: int | None = None) -> Feed:
        """Every event after the cursor ``after`` (from the first without
        one), of the given types (``"payout.sent"``, or several), following
        cursors until the feed has nothing more. Afterwards ``.cursor`` is
        where to go on from later (it tails the feed: each later event once).
        ``limit`` is the page size (1 to 200; the server's default is 100).
        """
        if type is not None and not isinstance(type, str):
            type = ",".join(type)
        return Feed(self._transport, {"type": type, "limit": limit}, after)


class Feed(Iterator[dict]):
    """The events of Events.list, page by page; the first page is fetched at
    once, so a bad filter raises from list(). ``cursor`` is the position
    after the last page read whole: resuming from it after a break in the
    middle of a page gets the rest of that page again (at least once)."""

    def __init__(self, transport, query: dict, after: str | None):
        self._transport = transport
        self._query = query
        self.cursor = after
        self._fetch()

    def _fetch(self) -> None:
        page = self._transport.get(EVENTS, {**self._query, "after": self.cursor})
        self._events = iter(page["events"])
        self._empty = not page["events"]
        self._next = page["next_cursor"]

    def __next__(self) -> dict:
        while True:
            for event in self._events:
                return event
            self.cursor = self._next
            if self._empty:
                raise StopIteration
            self._fetch()
