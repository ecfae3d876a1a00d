"""Shared fixtures: a fresh database per test, the app over it, a WebTest client."""

from __future__ import annotations

import os
import uuid
from decimal import Decimal

import pytest
import webtest

from triport_payouts import create_app
from triport_payouts.db import open_database
from triport_payouts.repository import Repository

TOKEN = "test-admin-token"
AUTH = {"X-Admin-Token": TOKEN}
PAYOUTS = "/v1/admin/referrals/payouts"


POSTGRES_URL = os.environ.get("TRIPORT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
BACKENDS = ("sqlite", "postgres")


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


@pytest.fixture(scope="session")
def postgres_admin():
    """The test PostgreSQL server; skips (fails in CI) without one."""
    import psycopg

    try:
        admin = PostgresAdmin()
    except psycopg.Error as exc:
        reason = f"PostgreSQL not reachable at {POSTGRES_URL}: {str(exc).strip().splitlines()[0]}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    yield admin
    admin.close()


@pytest.fixture
def postgres_url(postgres_admin):
    """A database URL whose connections see a fresh, private schema."""
    schema = f"t_{uuid.uuid4().hex[:16]}"
    postgres_admin.execute(f"CREATE SCHEMA {schema}")
    yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    postgres_admin.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
def database_url(backend, request, tmp_path):
    """A fresh, empty database of each backend in turn."""
    if backend == "postgres":
        return request.getfixturevalue("postgres_url")
    return str(tmp_path / "triport.sqlite3")


@pytest.fixture
def repo(database_url):
    db = open_database(database_url)
    db.init_schema()
    yield Repository(db)
    db.close()


@pytest.fixture
def app(repo, database_url):
    app = create_app(database=database_url, admin_token=TOKEN)
    yield app
    app.repository.db.close()


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


@pytest.fixture
def bare_client(tmp_path):
    """A client over a database without a schema: for refusals that must come
    before any database access (a request reaching the database would fail)."""
    bare = create_app(database=str(tmp_path / "no-schema.sqlite3"), admin_token=TOKEN)
    yield webtest.TestApp(bare, lint=True)
    bare.repository.db.close()


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
