"""What test modules share beside the fixtures of ``conftest.py``: constants,
the test PostgreSQL server, and the repository's reads and moves. Test
modules import these from here, never from ``conftest``."""

from __future__ import annotations

import json
import os

TOKEN = "test-admin-token"
AUTH = {"X-Admin-Token": TOKEN}
PAYOUTS = "/v1/admin/referrals/payouts"
# A well-formed payout id that no test creates.
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"

POSTGRES_URL = os.environ.get("TRIPORT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


class PostgresAdmin:
    """Statements on the test server, reconnecting after a test restarted it."""

    def __init__(self):
        import psycopg

        self._psycopg = psycopg
        self._conn = None
        self.execute("SELECT 1")

    def execute(self, sql: str):
        if self._conn is not None:
            try:
                return self._conn.execute(sql)
            except self._psycopg.OperationalError:
                self._conn.close()
        self._conn = self._psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=3)
        return self._conn.execute(sql)

    def close(self):
        if self._conn is not None:
            self._conn.close()


def move_to(repo, payout_id, status):
    """Brings a new (requested) payout to `status` through the repository."""
    if status == "processing":
        repo.transition(payout_id, "processing")
    elif status == "sent":
        repo.transition(payout_id, "sent", tx_hash="0xprior")
    elif status == "failed":
        repo.transition(payout_id, "failed", reason="prior failure")
    elif status == "cancelled":
        repo.cancel_payout(payout_id)
    assert repo.get_payout(payout_id)["status"] == status


def list_payouts(repo, **page) -> tuple[list[dict], tuple | None]:
    """repo.payout_page's payouts as dicts: (payouts, key of the last one if more follow)."""
    texts, last = repo.payout_page(**page)
    return [json.loads(text) for text in texts], last


def user_view(repo, user_id: str, payouts: int = 20) -> dict:
    """repo.user_summary as the API answers it: one dict, the newest payouts under "payouts"."""
    summary, newest = repo.user_summary(user_id, payouts)
    return {**summary, "payouts": [json.loads(text) for text in newest]}
