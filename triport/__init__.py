"""triport-sdk: the Python client of the Triport operator API (standard library only).

    import os
    from triport import TriportAdmin, PayoutNotActionable

    admin = TriportAdmin(admin_token=os.environ["TRIPORT_ADMIN_TOKEN"])
    admin.referrals.payouts.mark_failed(payout_id, reason="destination wallet rejected the transfer")
    for payout in admin.referrals.payouts.list(status="requested"):
        ...

The base URL is the ``base_url`` argument, else ``TRIPORT_BASE_URL``, else
https://api.triport.io. Every API error tag is an exception class under
``TriportError`` (``.status``, ``.tag``); see ``triport.errors``.
"""

from ._version import __version__
from .client import TriportAdmin
from .errors import (
    AdminTokenInvalid,
    AdminTokenUnset,
    DatabaseUnavailable,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    Internal,
    InvalidActor,
    InvalidCursor,
    InvalidIdempotencyKey,
    InvalidJson,
    InvalidLimit,
    InvalidPayoutId,
    InvalidStatus,
    InvalidTxHash,
    InvalidUserId,
    MethodNotAllowed,
    NotFound,
    PayoutNotActionable,
    PayoutNotFound,
    TransportError,
    TriportError,
    UserNotFound,
)

__all__ = [
    "AdminTokenInvalid",
    "AdminTokenUnset",
    "DatabaseUnavailable",
    "IdempotencyKeyInUse",
    "IdempotencyKeyReused",
    "Internal",
    "InvalidActor",
    "InvalidCursor",
    "InvalidIdempotencyKey",
    "InvalidJson",
    "InvalidLimit",
    "InvalidPayoutId",
    "InvalidStatus",
    "InvalidTxHash",
    "InvalidUserId",
    "MethodNotAllowed",
    "NotFound",
    "PayoutNotActionable",
    "PayoutNotFound",
    "TransportError",
    "TriportAdmin",
    "TriportError",
    "UserNotFound",
    "__version__",
]
