"""The API's errors: a status and a tag each, and the one mapping from domain
and database exceptions to them. The app turns any of these into
``{"error": tag}``.
"""

from __future__ import annotations

from . import domain
from .db import StorageFull

# Seconds a client should wait before retrying a 503: the database is down,
# locked, or its disk full, none of which clears in a moment.
RETRY_AFTER = 30


class ApiError(Exception):
    """An error the client sees as ``{"error": tag}`` with ``status``."""

    status = 500

    def __init__(self, tag: str, headers: tuple[tuple[str, str], ...] = ()):
        super().__init__(tag)
        self.tag = tag
        self.headers = headers


class BadRequest(ApiError):
    status = 400


class Unauthorized(ApiError):
    status = 401


class NotFound(ApiError):
    status = 404


class MethodNotAllowed(ApiError):
    status = 405

    def __init__(self, allow: tuple[str, ...]):
        super().__init__("method_not_allowed", (("Allow", ", ".join(allow)),))


class Conflict(ApiError):
    status = 409


class Unprocessable(ApiError):
    status = 422


class ServiceUnavailable(ApiError):
    """Always with Retry-After."""

    status = 503

    def __init__(self, tag: str):
        super().__init__(tag, (("Retry-After", str(RETRY_AFTER)),))


class Internal(ApiError):
    status = 500


_FROM_DOMAIN = {
    domain.InvalidPayoutId: (BadRequest, "invalid_payout_id"),
    domain.PayoutNotFound: (NotFound, "payout_not_found"),
    domain.UserNotFound: (NotFound, "user_not_found"),
    domain.PayoutNotActionable: (Conflict, "payout_not_actionable"),
    domain.IdempotencyKeyInUse: (Conflict, "idempotency_key_in_use"),
    domain.IdempotencyKeyReused: (Unprocessable, "idempotency_key_reused"),
}


def from_domain(exc: domain.DomainError) -> ApiError:
    """The API error for a domain refusal; unmapped ones are internal errors."""
    kind, tag = _FROM_DOMAIN.get(type(exc), (Internal, "internal"))
    return kind(tag)


def from_database(exc: BaseException) -> ApiError:
    """The API error for one of the database's ``unavailable_errors``."""
    return ServiceUnavailable("storage_full" if isinstance(exc, StorageFull) else "database_unavailable")
