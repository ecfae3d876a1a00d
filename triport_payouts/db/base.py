"""The storage interface every dialect implements (``sqlite.py``,
``postgres.py``), written down once, with what the dialects share: the
errors meaning "not now" (the database unavailable, its disk full), connections
per thread, and the schema files.

A connection belongs to one thread of one process: it is opened lazily, after
gunicorn forks its workers, and reopened when the process id changes.
"""

from __future__ import annotations

import abc
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from importlib import resources
from typing import Any, ClassVar


class DatabaseUnavailable(Exception):
    """the database cannot be reached, or is locked past the wait allowed"""


class StorageFull(DatabaseUnavailable):
    """the database's disk is full: the write was rolled back, nothing changed"""


# The tables init-db creates; a database without all of them needs init-db.
SCHEMA_TABLES = ("credits", "payouts", "payout_events", "idempotency_keys")

# stream(sql, params) -> an iterator of rows: what snapshot() yields.
Stream = Callable[..., Any]


def first_line(exc: BaseException) -> str:
    """An exception's first line of text, for one-line logs and messages."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def schema_text(dialect: str) -> str:
    return resources.files(__package__).joinpath("sql", f"{dialect}.sql").read_text("utf-8")


class Database(abc.ABC):
    """One database, as the repository, the audit, the export and the command
    line use it. Connections are per thread of each process (see
    ``connection``); everything else is the dialect's.
    """

    #: The name of the dialect, and of its schema file in ``sql/``.
    dialect: ClassVar[str]
    #: The driver's exception classes: any of them is a database error.
    errors: ClassVar[tuple[type[BaseException], ...]]
    #: The exceptions meaning "cannot be used now, try again later": 503.
    unavailable_errors: ClassVar[tuple[type[BaseException], ...]]
    #: Statements of the repository's SQL that this dialect writes its own way, by name.
    sql_overrides: ClassVar[Mapping[str, str]] = {}

    def __init__(self) -> None:
        self._local = threading.local()
        self._opened: list[tuple[int, Any]] = []
        self._lock = threading.Lock()

    # -- connections ---------------------------------------------------------

    def connection(self) -> Any:
        """This thread's connection (autocommit: reads need no transaction),
        opened on first use and replaced when the process forked or the
        connection broke. Raises DatabaseUnavailable when it cannot be opened.
        """
        local, pid = self._local, os.getpid()
        conn = getattr(local, "conn", None)
        if conn is None or local.pid != pid or not self._usable(conn):
            # An inherited connection is dropped, never closed: closing it
            # here would end the parent's session too.
            conn = self._connect()
            local.conn, local.pid = conn, pid
            with self._lock:
                self._opened.append((pid, conn))
        return conn

    def close(self) -> None:
        """Closes every connection this process opened, in any thread."""
        with self._lock:
            opened, self._opened = self._opened, []
        for pid, conn in opened:
            if pid == os.getpid():
                conn.close()
        self._local = threading.local()

    def ping(self) -> None:
        """Raises DatabaseUnavailable unless the schema can be read."""
        try:
            if not self.has_schema():
                raise DatabaseUnavailable("the database has no schema: run init-db")
        except self.errors as exc:
            raise DatabaseUnavailable(first_line(exc)) from None

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
    def init_schema(self) -> None:
        """Creates the schema; running it again changes nothing."""

    @abc.abstractmethod
    def has_schema(self) -> bool:
        """Whether every table of the schema exists."""

