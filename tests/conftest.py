"""Shared fixtures: a fresh database per test, the app over it, a WebTest client.
Fixtures only: what test modules import (constants, helpers) is in ``helpers.py``."""

from __future__ import annotations

import os
import shutil
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


def _schema_url(schema: str) -> str:
    return f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"


@pytest.fixture
def postgres_url(request, postgres_admin):
    """A database URL whose connections see a private schema of their own:
    empty, or, for a test that uses `repo`, already at this release's version
    (which repo would give it anyway), from the SchemaPool."""
    if "repo" in request.fixturenames:
        pool = request.getfixturevalue("schema_pool")
        schema = pool.take()
        yield _schema_url(schema)
        pool.give_back(schema)
        return
    schema = f"t_{uuid.uuid4().hex[:16]}"
    postgres_admin.execute(f"CREATE SCHEMA {schema}")
    yield _schema_url(schema)
    postgres_admin.execute(f"DROP SCHEMA {schema} CASCADE")


class SchemaPool:
    """Schemas at this release's version, for the tests that want one (those
    using `repo`): migrating a new schema costs ~300 ms of DDL, emptying a
    used one ~20 ms. A schema goes back to the pool only if its shape is
    still the migrated one (a test may damage it); otherwise it is dropped."""

    # Cheap to read (a test's teardown pays it): what a test that damages a
    # schema changes, columns, triggers, relations, functions, versions.
    _SHAPE = (
        "WITH rel AS MATERIALIZED (SELECT oid, relname FROM pg_class"
        "  WHERE relnamespace = '{s}'::regnamespace)"
        " SELECT (SELECT sum(hashtext(rel.relname::text || '.' || a.attname::text || a.atttypid::text))"
        "  FROM rel JOIN pg_attribute a ON a.attrelid = rel.oid WHERE a.attnum > 0 AND NOT a.attisdropped),"
        " (SELECT sum(hashtext(t.tgname::text || t.tgenabled::text)) FROM rel JOIN pg_trigger t ON t.tgrelid = rel.oid),"
        " (SELECT count(*) FROM rel),"
        " (SELECT sum(hashtext(proname::text || prosrc)) FROM pg_proc WHERE pronamespace = '{s}'::regnamespace),"
        " (SELECT string_agg(version::text, ',' ORDER BY version) FROM {s}.schema_migrations)"
    )

    def __init__(self, admin: PostgresAdmin):
        self.admin = admin
        self.free: list[str] = []
        self.pristine: tuple | None = None

    def take(self) -> str:
        if self.free:
            return self.free.pop()
        schema = f"t_{uuid.uuid4().hex[:16]}"
        self.admin.execute(f"CREATE SCHEMA {schema}")
        db = open_database(_schema_url(schema))
        try:
            db.init_schema()
        finally:
            db.close()
        if self.pristine is None:
            self.pristine = self._shape(schema)
        return schema

    def give_back(self, schema: str) -> None:
        try:
            if self._shape(schema) != self.pristine:
                raise ValueError("changed by its test")
            tables = [row[0] for row in self.admin.execute(
                f"SELECT tablename FROM pg_tables WHERE schemaname = '{schema}'"
                " AND tablename <> 'schema_migrations'").fetchall()]
            # DELETE with the triggers off (events are append-only; the
            # foreign keys are triggers too): ~5 ms, where TRUNCATE takes ~80.
            self.admin.execute("BEGIN")
            self.admin.execute("SET LOCAL session_replication_role = replica")
            for table in tables:
                self.admin.execute(f"DELETE FROM {schema}.{table}")
            # Identities start again at 1, as in a new schema.
            self.admin.execute(f"SELECT setval(oid::regclass, 1, false) FROM pg_class"
                               f" WHERE relkind = 'S' AND relnamespace = '{schema}'::regnamespace")
            self.admin.execute("COMMIT")
        except Exception:
            self.admin.execute("ROLLBACK")
            self.admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            return
        self.free.append(schema)

    def _shape(self, schema: str) -> tuple:
        return tuple(self.admin.execute(self._SHAPE.format(s=schema)).fetchone())

    def close(self) -> None:
        for schema in self.free:
            self.admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture(scope="session")
def schema_pool(postgres_admin):
    pool = SchemaPool(postgres_admin)
    yield pool
    pool.close()


@pytest.fixture(params=("sqlite", "postgres"))
def backend(request):
    return request.param


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> str:
    """A SQLite database at this release's schema, closed: copied for each
    test that uses `repo` (a file copy instead of six migration steps)."""
    path = str(tmp_path_factory.mktemp("template") / "template.sqlite3")
    db = open_database(path)
    db.init_schema()
    db.close()
    return path


@pytest.fixture
def database_url(backend, request, tmp_path):
    """A fresh database of each backend in turn: empty, or, for a test that
    uses `repo`, already at this release's schema (which repo would give it
    anyway; on PostgreSQL, see postgres_url)."""
    if backend == "postgres":
        return request.getfixturevalue("postgres_url")
    path = str(tmp_path / "triport.sqlite3")
    if "repo" in request.fixturenames:
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
    return path


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
