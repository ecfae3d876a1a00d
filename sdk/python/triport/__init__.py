"""triport-sdk: the Python client of the Triport operator API (standard library only).

    import os
    from triport import TriportAdmin, PayoutNotActionable

    admin = TriportAdmin(admin_token=os.environ["TRIPORT_ADMIN_TOKEN"])
    admin.referrals.payouts.mark_failed(payout_id, reason="destination wallet rejected the transfer")
    for payout in admin.referrals.payouts.list(status="requested"):
        ...

The base URL is the ``base_url`` argument, else ``TRIPORT_BASE_URL``, else
https://api.triport.io. ``triport.webhooks.verify(secret, headers, body)``
checks a webhook's signature and returns its event. Every API error tag is an exception class under
``TriportError`` (``.status``, ``.tag``); see ``triport.errors``.
"""

from . import errors, webhooks
from ._version import __version__
from .client import TriportAdmin
from .errors import *  # noqa: F403 - every error class, as listed in errors.__all__

__all__ = ["TriportAdmin", "__version__", "webhooks", *errors.__all__]
