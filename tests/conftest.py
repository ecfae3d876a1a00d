"""Shared fixtures: a fresh database per test, the app over it, a WebTest client.
Fixtures only: what test modules import (constants, helpers) is in ``helpers.py``."""

from __future__ import annotations

import os
import uuid
from decimal import Decimal

import pytest
import webtest

from helpers import POSTGRES_URL, TOKEN, PostgresAdmin
from triport_payouts import cli, create_app
from triport_payouts.db import open_database
from triport_payouts.repository import Repository


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


@pytest.fixture(params=("sqlite", "postgres"))
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
def make_client():
    """make_client(database, admin_token=TOKEN) -> a WebTest client over a new app for that
    database and token (None or "" for a server without one); the apps close after the test."""
    apps = []

    def make(database, admin_token=TOKEN):
        app = create_app(database=database, admin_token=admin_token)
        apps.append(app)
        return webtest.TestApp(app, lint=True)

    yield make
    for app in apps:
        app.repository.db.close()


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


@pytest.fixture
def run(database_url, capsys):
    """run(*argv) -> (exit status, stdout, stderr) of cli.main on the test
    database (a module whose commands need the schema requests repo too)."""

    def run(*argv):
        code = cli.main(list(argv), {"TRIPORT_DATABASE": database_url})
        out, err = capsys.readouterr()
        return code, out, err

    return run
