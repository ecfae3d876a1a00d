"""The client's exceptions: one class per error tag of the API, all under
``TriportError``, which carries the HTTP ``status`` and the ``tag``.

Messages name the method, the path, the status and the tag; they never
contain a header, so never the admin token.
"""

from __future__ import annotations

import json


class TriportError(Exception):
    """An error from the Triport API, or no answer from it at all.

    ``status``: the HTTP status, or None when no answer arrived.
    ``tag``: the ``{"error": tag}`` of the answer; None when the answer had no
    such envelope (a proxy's HTML page, a truncated body) or never arrived.
    An unknown tag is kept here on a plain ``TriportError``.
    ``idempotency_key``: for the POST actions, the key the call sent; pass it
    back (``idempotency_key=...``) to retry the same action safely later.
    """

    status: int | None = None
    tag: str | None = None

    def __init__(self, message: str = "", *, status: int | None = None, tag: str | None = None,
                 method: str | None = None, path: str | None = None, idempotency_key: str | None = None):
        super().__init__(message)
        if status is not None:
            self.status = status
        if tag is not None:
            self.tag = tag
        self.method = method
        self.path = path
        self.idempotency_key = idempotency_key

    def __reduce__(self):
        return _rebuild, (type(self), self.args[0] if self.args else "", self.__dict__)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status!r}, tag={self.tag!r}, message={str(self)!r})"


def _rebuild(cls, message, state):
    exc = cls(message)
    exc.__dict__.update(state)
    return exc


class TransportError(TriportError):
    """No answer after every attempt: connection refused or dropped, timeout, TLS."""


class InvalidPayoutId(TriportError):
    """The payout id is not a hyphenated UUID."""

    status, tag = 400, "invalid_payout_id"


class InvalidActor(TriportError):
    """The actor is not 1 to 128 printable characters."""

    status, tag = 400, "invalid_actor"


class InvalidJson(TriportError):
    """The body is not a JSON object of the right shape (or is over 4 KiB)."""

    status, tag = 400, "invalid_json"


class InvalidTxHash(TriportError):
    """tx_hash is not a non-empty string of at most 256 characters."""

    status, tag = 400, "invalid_tx_hash"


class InvalidStatus(TriportError):
    """status is not one of the five payout states."""

    status, tag = 400, "invalid_status"


class InvalidUserId(TriportError):
    """user_id is not 1 to 128 printable characters."""

    status, tag = 400, "invalid_user_id"


class InvalidLimit(TriportError):
    """limit is not an integer from 1 to 200."""

    status, tag = 400, "invalid_limit"


class InvalidCursor(TriportError):
    """The cursor is not one the server issued for these filters."""

    status, tag = 400, "invalid_cursor"


class InvalidOrder(TriportError):
    """order is not ``newest`` or ``oldest``."""

    status, tag = 400, "invalid_order"


class InvalidTime(TriportError):
    """A time filter is not an RFC 3339 time with its offset (``2026-11-23T22:31:00Z``)."""

    status, tag = 400, "invalid_time"


class InvalidType(TriportError):
    """An event type of the feed's ``type`` filter is not one the server knows."""

    status, tag = 400, "invalid_type"


class InvalidIdempotencyKey(TriportError):
    """The Idempotency-Key is not 1 to 255 printable ASCII characters."""

    status, tag = 400, "invalid_idempotency_key"


class AdminTokenUnset(TriportError):
    """The server has no admin token configured."""

    status, tag = 401, "admin_token_unset"


class AdminTokenInvalid(TriportError):
    """The admin token is missing or wrong."""

    status, tag = 401, "admin_token_invalid"


class InvalidBulk(TriportError):
    """A bulk request of the wrong shape (an unknown action, not 1 to 100 items, a payout named twice)."""

    status, tag = 400, "invalid_bulk"


class InvalidAmount(TriportError):
    """amount is not a positive decimal string (a JSON number is refused: it may be rounded)."""

    status, tag = 400, "invalid_amount"


class InvalidCurrency(TriportError):
    """currency is not 2 to 10 upper-case letters or digits, starting with a letter."""

    status, tag = 400, "invalid_currency"


class InvalidDestination(TriportError):
    """destination is not 1 to 256 printable characters."""

    status, tag = 400, "invalid_destination"


class Forbidden(TriportError):
    """The token is valid, but its scope does not cover this call."""

    status, tag = 403, "forbidden"


class InsufficientBalance(TriportError):
    """The payout asked for is more than the user's available balance."""

    status, tag = 409, "insufficient_balance"


class NotFound(TriportError):
    """No route has that path."""

    status, tag = 404, "not_found"


class PayoutNotFound(TriportError):
    """No payout has that id."""

    status, tag = 404, "payout_not_found"


class UserNotFound(TriportError):
    """The user has no credits and no payouts."""

    status, tag = 404, "user_not_found"


class MethodNotAllowed(TriportError):
    """The route does not take that method."""

    status, tag = 405, "method_not_allowed"


class PayoutNotActionable(TriportError):
    """The payout's status does not allow that action."""

    status, tag = 409, "payout_not_actionable"


class IdempotencyKeyInUse(TriportError):
    """The first request with this Idempotency-Key is still running."""

    status, tag = 409, "idempotency_key_in_use"


class IdempotencyKeyReused(TriportError):
    """This Idempotency-Key was used for a different request."""

    status, tag = 422, "idempotency_key_reused"


class Internal(TriportError):
    """The server failed unexpectedly."""

    status, tag = 500, "internal"


class DatabaseUnavailable(TriportError):
    """The server cannot reach its database."""

    status, tag = 503, "database_unavailable"


class StorageFull(TriportError):
    """The disk of the server's database is full: nothing was changed."""

    status, tag = 503, "storage_full"


class SchemaOutdated(TriportError):
    """The server's database has an older schema than the server: it needs ``triport-payouts migrate``."""

    status, tag = 503, "schema_outdated"


class SchemaTooNew(TriportError):
    """The server's database was migrated by a newer release than the server."""

    status, tag = 503, "schema_too_new"


ERROR_CLASSES: dict[str, type[TriportError]] = {
    cls.tag: cls for cls in (
        InvalidPayoutId, InvalidActor, InvalidJson, InvalidTxHash, InvalidStatus, InvalidUserId,
        InvalidLimit, InvalidOrder, InvalidTime, InvalidCursor, InvalidType, InvalidIdempotencyKey, InvalidBulk,
        InvalidAmount, InvalidCurrency, InvalidDestination, AdminTokenUnset, AdminTokenInvalid, Forbidden,
        NotFound, PayoutNotFound, UserNotFound, MethodNotAllowed, PayoutNotActionable, InsufficientBalance,
        IdempotencyKeyInUse, IdempotencyKeyReused, Internal, DatabaseUnavailable, StorageFull,
        SchemaOutdated, SchemaTooNew,
    )
}

__all__ = [
    "AdminTokenInvalid",
    "AdminTokenUnset",
    "DatabaseUnavailable",
    "Forbidden",
    "IdempotencyKeyInUse",
    "IdempotencyKeyReused",
    "InsufficientBalance",
    "Internal",
    "InvalidActor",
    "InvalidBulk",
    "InvalidAmount",
    "InvalidCurrency",
    "InvalidCursor",
    "InvalidDestination",
    "InvalidIdempotencyKey",
    "InvalidJson",
    "InvalidLimit",
    "InvalidOrder",
    "InvalidPayoutId",
    "InvalidStatus",
    "InvalidTime",
    "InvalidTxHash",
    "InvalidType",
    "InvalidUserId",
    "MethodNotAllowed",
    "NotFound",
    "PayoutNotActionable",
    "PayoutNotFound",
    "SchemaOutdated",
    "SchemaTooNew",
    "StorageFull",
    "TransportError",
    "TriportError",
    "UserNotFound",
]


def error_for(tag: str | None) -> type[TriportError]:
    """The exception class of a tag; ``TriportError`` for an unknown one."""
    return ERROR_CLASSES.get(tag, TriportError) if tag is not None else TriportError


def tag_of(body: bytes) -> str | None:
    """The tag of an ``{"error": tag}`` body, else None."""
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if isinstance(payload, dict) and isinstance(payload.get("error"), str):
        return payload["error"]
    return None


def error_from_answer(status: int, body: bytes, method: str, path: str, **extra) -> TriportError:
    """The exception for a non-2xx answer."""
    tag = tag_of(body)
    detail = tag if tag is not None else "(no error envelope in the answer)"
    return error_for(tag)(f"{status} {detail} on {method} {path}", status=status, tag=tag,
                          method=method, path=path, **extra)
