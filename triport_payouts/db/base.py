"""The storage interface every dialect implements (``sqlite.py``,
``postgres.py``), written down once, with what the dialects share: the
errors meaning "not now" (the database unavailable, its disk full, its
schema of another version), connections per thread, and migrating the schema
through its versions (``migrations.py``).

A connection belongs to one thread of one process: it is opened lazily, after
gunicorn forks its workers, and reopened when the process id changes.
"""

from __future__ import annotations

import abc
import contextlib
import datetime
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, ClassVar

from . import migrations
from .migrations import SCHEMA_VERSION


# This process's id, kept up to date across forks: os.getpid() is a system
# call (about a microsecond here), and connection() runs several times a request.
_pid = os.getpid()


def _forked() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_forked)


class DatabaseUnavailable(Exception):
    """the database cannot be reached, or is locked past the wait allowed"""


class StorageFull(DatabaseUnavailable):
    """the database's disk is full: the write was rolled back, nothing changed"""


class NoSchema(DatabaseUnavailable):
    """the database has no schema: run triport-payouts init-db"""


class SchemaOutdated(DatabaseUnavailable):
    """the database's schema is older than the code: run triport-payouts migrate"""


class SchemaTooNew(DatabaseUnavailable):
    """the database's schema is newer than the code: run the release that migrated it"""


# The tables of schema version 1: a database with all of them and no
# schema_migrations table was made by the first release.
SCHEMA_TABLES = ("credits", "payouts", "payout_events", "idempotency_keys")

# stream(sql, params) -> an iterator of rows: what snapshot() yields.
Stream = Callable[..., Any]


def first_line(exc: BaseException) -> str:
    """An exception's first line of text, for one-line logs and messages."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def require_version(version: int) -> None:
    """Raises unless a database at schema `version` is one this code can use."""
    if version == SCHEMA_VERSION:
        return
    if version == 0:
        raise NoSchema(NoSchema.__doc__)
    if version < SCHEMA_VERSION:
        raise SchemaOutdated(f"the database's schema is at version {version}, this code needs"
                             f" {SCHEMA_VERSION}: run triport-payouts migrate")
    raise SchemaTooNew(f"the database's schema is at version {version}, newer than this code's"
                       f" {SCHEMA_VERSION}: run the release that migrated it")


class Database(abc.ABC):
    """One database, as the repository, the audit, the export and the command
    line use it. Connections are per thread of each process (see
    ``connection``); everything else is the dialect's.
    """

    #: The name of the dialect, and of its folder of schema steps in ``sql/``.
    dialect: ClassVar[str]
    #: The driver's exception classes: any of them is a database error.
    errors: ClassVar[tuple[type[BaseException], ...]]
    #: The exceptions meaning "cannot be used now, try again later": 503.
    unavailable_errors: ClassVar[tuple[type[BaseException], ...]]
    #: Statements of the repository's SQL that this dialect writes its own way, by name.
    sql_overrides: ClassVar[Mapping[str, str]] = {}
    #: Whether one statement may write several tables (data-modifying WITH
    #: clauses), each statement being its own transaction (see write_once).
    writes_in_one_statement: ClassVar[bool] = False

    def __init__(self) -> None:
        # Whether a new connection refuses a schema of another version than
        # the code's; off only to migrate (see migrate()).
        self.checks_schema = True
        self._local = threading.local()
        self._opened: list[tuple[int, Any]] = []
        self._lock = threading.Lock()

    # -- connections ---------------------------------------------------------

    def connection(self) -> Any:
        """This thread's connection (autocommit: reads need no transaction),
        opened on first use and replaced when the process forked or the
        connection broke. Raises DatabaseUnavailable when it cannot be opened,
        SchemaOutdated or SchemaTooNew when the schema is not the code's
        (checked once per connection: a migration while serving is seen by
        the connections opened after it).
        """
        local, pid = self._local, _pid
        conn = getattr(local, "conn", None)
        if conn is None or local.pid != pid or not self._usable(conn):
            if conn is not None and local.pid == pid:
                self._forget(conn)  # broken: replaced
            # An inherited connection is dropped, never closed: closing it
            # here would end the parent's session too.
            conn = self._connect()
            if self.checks_schema:
                try:
                    require_version(self._version(conn))
                except BaseException:
                    conn.close()
                    raise
            local.conn, local.pid = conn, pid
            with self._lock:
                self._opened.append((pid, conn))
        return conn

    def _forget(self, conn: Any) -> None:
        with self._lock:
            self._opened = [(pid, other) for pid, other in self._opened if other is not conn]
        with contextlib.suppress(*self.errors):  # it is broken already
            conn.close()

    def close(self) -> None:
        """Closes every connection this process opened, in any thread."""
        with self._lock:
            opened, self._opened = self._opened, []
        for pid, conn in opened:
            if pid == _pid:
                conn.close()
        self._local = threading.local()

    def ping(self) -> None:
        """Raises DatabaseUnavailable (or SchemaOutdated, SchemaTooNew) unless
        the database answers with the code's schema version."""
        try:
            require_version(self._version(self.connection()))
        except self.errors as exc:
            raise DatabaseUnavailable(first_line(exc)) from None

    def schema_version(self) -> int:
        """The database's schema version (0 when empty, 1 for the first
        release's), read on a connection of its own: whatever the version,
        the connections the code uses stay checked."""
        conn = self._connect()
        try:
            return self._version(conn)
        finally:
            conn.close()

    def migrate(self) -> tuple[int, int]:
        """Brings the schema up to SCHEMA_VERSION, step by step, each in one
        transaction that re-reads the version first, so several hosts may
        migrate at once. Returns (version before, version after). Raises
        SchemaTooNew for a database newer than the code. Stops checking the
        schema of new connections (it is the code's afterwards)."""
        self.checks_schema = False
        before = self._version(self.connection())
        if before > SCHEMA_VERSION:
            require_version(before)
        for step in migrations.steps(self.dialect):
            if step.version <= before:
                continue
            with self._migration() as conn:
                if self._version(conn) >= step.version:
                    continue  # another host applied it meanwhile
                self._run_script(conn, step.sql)
                self._run_script(conn, migrations.RECORD_TABLE)
                conn.execute(self.sql("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)"),
                             (step.version, _now()))
        return before, self._version(self.connection())

    def init_schema(self) -> None:
        """Creates the schema, or brings it up to date: migrate()."""
        self.migrate()

    def sync_reads(self) -> None:  # noqa: B027 - most dialects have nothing to do
        """Returns once every commit this thread's connection has read is
        durable (where a commit may be visible before it is)."""

    def _usable(self, conn: Any) -> bool:
        return True

    @abc.abstractmethod
    def _connect(self) -> Any:
        """A new connection; raises DatabaseUnavailable."""

    # -- the dialect ---------------------------------------------------------

    @abc.abstractmethod
    def sql(self, text: str) -> str:
        """The repository's SQL (qmark parameters) in this dialect."""

    @staticmethod
    @abc.abstractmethod
    def json_object(members: Iterable[tuple[str, str]]) -> str:
        """SQL for a JSON object of (key, SQL expression) members, encoded as
        ``json.dumps(ensure_ascii=False)`` with compact separators would."""

    # -- transactions --------------------------------------------------------

    @abc.abstractmethod
    def transaction(self) -> AbstractContextManager[Any]:
        """A write transaction on this thread's connection, yielded: commits
        on success (and returns only once the commit is durable), rolls back
        and re-raises otherwise. A full disk is raised as StorageFull, and a
        lock not granted in time as DatabaseUnavailable."""

    def write_once(self) -> AbstractContextManager[Any]:
        """A connection for one writing statement that is a transaction of
        its own, with the errors mapped as in transaction(); only where
        writes_in_one_statement."""
        raise NotImplementedError

    @abc.abstractmethod
    def snapshot(self) -> AbstractContextManager[Stream]:
        """A consistent read of the whole database: yields stream(sql,
        params), which returns an iterator of rows fetched as they are read."""

    @abc.abstractmethod
    def lock_balance(self, conn: Any, user_id: str, currency: str) -> None:
        """Inside `conn`'s write transaction, serialises every balance check
        of (user, currency) until the transaction ends."""

    @abc.abstractmethod
    def bulk_insert(self, conn: Any, table: str, columns: tuple[str, ...], rows: Iterable[Sequence]) -> None:
        """Inserts rows inside `conn`'s write transaction, as fast as the dialect can."""

    # -- the schema ----------------------------------------------------------

    @abc.abstractmethod
    def _version(self, conn: Any) -> int:
        """The schema version `conn` sees (see schema_version)."""

    @abc.abstractmethod
    def _migration(self) -> AbstractContextManager[Any]:
        """A write transaction that no other migration runs beside."""

    @abc.abstractmethod
    def _run_script(self, conn: Any, script: str) -> None:
        """Runs the statements of a schema step inside `conn`'s transaction."""


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="microseconds")
