"""The API's errors: a status and a tag each, and the one mapping from domain
and database exceptions to them. The app turns any of these into
``{"error": tag}``.

Each class carries its default tag, so a tag is written once: raise
``InvalidJson()``, never ``BadRequest("invalid_json")``.
"""

from __future__ import annotations

from . import domain
from .db import SchemaOutdated, SchemaTooNew, StorageFull

# Seconds a client should wait before retrying a 503: the database is down,
# locked, or its disk full, none of which clears in a moment.
RETRY_AFTER = 30


class ApiError(Exception):
    """An error the client sees as ``{"error": tag}`` with ``status``."""

    status = 500
    tag = "internal"
    headers: tuple[tuple[str, str], ...] = ()

    def __init__(self, tag: str | None = None, headers: tuple[tuple[str, str], ...] | None = None):
        super().__init__(tag or self.tag)
        if tag is not None:
            self.tag = tag
        if headers is not None:
            self.headers = headers


class BadRequest(ApiError):
    status = 400


class InvalidJson(BadRequest):
    tag = "invalid_json"


class InvalidActor(BadRequest):
    tag = "invalid_actor"


class InvalidTxHash(BadRequest):
    tag = "invalid_tx_hash"


class InvalidStatus(BadRequest):
    tag = "invalid_status"


class InvalidUserId(BadRequest):
    tag = "invalid_user_id"


class InvalidLimit(BadRequest):
    tag = "invalid_limit"


class InvalidCursor(BadRequest):
    tag = "invalid_cursor"


class InvalidOrder(BadRequest):
    tag = "invalid_order"


class InvalidTime(BadRequest):
    tag = "invalid_time"


class InvalidIdempotencyKey(BadRequest):
    tag = "invalid_idempotency_key"


class InvalidType(BadRequest):
    tag = "invalid_type"


class InvalidBulk(BadRequest):
    """A bulk request of the wrong shape: nothing was touched."""

    tag = "invalid_bulk"


class Unauthorized(ApiError):
    status = 401


class AdminTokenUnset(Unauthorized):
    tag = "admin_token_unset"


class AdminTokenInvalid(Unauthorized):
    tag = "admin_token_invalid"


class Forbidden(ApiError):
    """A valid token whose scope does not cover the route."""

    status = 403
    tag = "forbidden"


class NotFound(ApiError):
    status = 404
    tag = "not_found"


class MethodNotAllowed(ApiError):
    status = 405
    tag = "method_not_allowed"

    def __init__(self, allow: tuple[str, ...]):
        super().__init__(headers=(("Allow", ", ".join(allow)),))


class Conflict(ApiError):
    status = 409


class Unprocessable(ApiError):
    status = 422


class ServiceUnavailable(ApiError):
    """Always with Retry-After."""

    status = 503
    tag = "database_unavailable"
    headers = (("Retry-After", str(RETRY_AFTER)),)


class StorageFullError(ServiceUnavailable):
    tag = "storage_full"


class SchemaOutdatedError(ServiceUnavailable):
    tag = "schema_outdated"


class SchemaTooNewError(ServiceUnavailable):
    tag = "schema_too_new"


class Internal(ApiError):
    pass


_FROM_DOMAIN = {
    domain.InvalidPayoutId: (BadRequest, "invalid_payout_id"),
    domain.PayoutNotFound: (NotFound, "payout_not_found"),
    domain.UserNotFound: (NotFound, "user_not_found"),
    domain.PayoutNotActionable: (Conflict, "payout_not_actionable"),
    domain.WouldOverdraw: (Conflict, "insufficient_balance"),
    domain.InvalidAmount: (BadRequest, "invalid_amount"),
    domain.InvalidUserId: (BadRequest, "invalid_user_id"),
    domain.InvalidCurrency: (BadRequest, "invalid_currency"),
    domain.InvalidDestination: (BadRequest, "invalid_destination"),
    domain.InvalidNote: (BadRequest, "invalid_json"),
    domain.IdempotencyKeyInUse: (Conflict, "idempotency_key_in_use"),
    domain.IdempotencyKeyReused: (Unprocessable, "idempotency_key_reused"),
}


def from_domain(exc: domain.DomainError) -> ApiError:
    """The API error for a domain refusal; unmapped ones are internal errors."""
    kind, tag = _FROM_DOMAIN.get(type(exc), (Internal, Internal.tag))
    return kind(tag)


def tag_of(exc: ApiError | domain.DomainError) -> str:
    """The tag a request refused with `exc` answers (for answers that report
    one refusal among others: a bulk item, an imported row)."""
    return exc.tag if isinstance(exc, ApiError) else from_domain(exc).tag


_FROM_DATABASE = (
    (StorageFull, StorageFullError),
    (SchemaOutdated, SchemaOutdatedError),
    (SchemaTooNew, SchemaTooNewError),
)


def from_database(exc: BaseException) -> ApiError:
    """The API error for one of the database's ``unavailable_errors``."""
    for cause, error in _FROM_DATABASE:
        if isinstance(exc, cause):
            return error()
    return ServiceUnavailable()
