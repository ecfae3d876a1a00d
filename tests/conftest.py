"""Shared fixtures: a fresh database per test, the app over it, a WebTest client."""

from __future__ import annotations

from decimal import Decimal

import pytest
import webtest

from triport_payouts import create_app
from triport_payouts.db import open_database
from triport_payouts.repository import Repository

TOKEN = "test-admin-token"
AUTH = {"X-Admin-Token": TOKEN}
PAYOUTS = "/v1/admin/referrals/payouts"


@pytest.fixture
def database_url(tmp_path):
    return str(tmp_path / "triport.sqlite3")


@pytest.fixture
def repo(database_url):
    db = open_database(database_url)
    db.init_schema()
    yield Repository(db)
    db.close()


@pytest.fixture
def app(repo, database_url):
    return create_app(database=database_url, admin_token=TOKEN)


@pytest.fixture
def client(app):
    return webtest.TestApp(app, lint=True)


@pytest.fixture
def make_payout(repo):
    """make_payout(user_id="alice", amount="10.00", currency="USDT") -> payout id,
    with the user credited enough first."""

    def make(user_id="alice", amount="10.00", currency="USDT", destination="0xdest"):
        repo.credit(user_id, Decimal(amount), currency, "test earnings")
        return repo.create_payout(user_id, Decimal(amount), currency, destination)["id"]

    return make
