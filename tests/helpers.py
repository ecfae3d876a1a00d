"""What several test modules share beside the fixtures of ``conftest.py``:
constants, and the repository's reads as dicts."""

from __future__ import annotations

import json

from triport_payouts.handlers import DEFAULT_LIMIT, USER_VIEW_PAYOUTS

TOKEN = "test-admin-token"
AUTH = {"X-Admin-Token": TOKEN}
PAYOUTS = "/v1/admin/referrals/payouts"
# A well-formed payout id that no test creates.
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


def list_payouts(repo, **page) -> tuple[list[dict], tuple | None]:
    """repo.payout_page's payouts as dicts: (payouts, key of the last one if more follow)."""
    texts, last = repo.payout_page(**{"limit": DEFAULT_LIMIT, **page})
    return [json.loads(text) for text in texts], last


def user_view(repo, user_id: str, payouts: int = USER_VIEW_PAYOUTS) -> dict:
    """repo.user_summary as the API answers it: one dict, the newest payouts under "payouts"."""
    summary, newest = repo.user_summary(user_id, payouts)
    return {**summary, "payouts": [json.loads(text) for text in newest]}
