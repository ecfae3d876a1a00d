"""What every database dialect shares (``sqlite.py``, ``postgres.py``): the
unavailable-database error, connections per thread, the schema files, and
opening the database a ``TRIPORT_DATABASE`` value names.

A connection belongs to one thread of one process: it is opened lazily, after
gunicorn forks its workers, and reopened when the process id changes.
"""

from __future__ import annotations

import os
import threading
from importlib import resources


class DatabaseUnavailable(Exception):
    """the database cannot be reached"""


# The tables init-db creates; a database without all of them needs init-db.
SCHEMA_TABLES = ("credits", "payouts", "payout_events", "idempotency_keys")


def first_line(exc: BaseException) -> str:
    """An exception's first line of text, for one-line logs and messages."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def schema_text(dialect: str) -> str:
    return resources.files(__package__).joinpath("sql", f"{dialect}.sql").read_text("utf-8")


class PerThreadConnections:
    """One connection per thread of each process, opened on first use, so
    never shared across gunicorn's fork; replaced when no longer usable.
    """

    def __init__(self):
        self._local = threading.local()
        self._opened: list[tuple[int, object]] = []
        self._lock = threading.Lock()

    def connection(self):
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

    def _usable(self, conn) -> bool:
        return True

    def ping(self) -> None:
        """Raises DatabaseUnavailable unless the schema can be read."""
        try:
            if not self.has_schema():
                raise DatabaseUnavailable("the database has no schema: run init-db")
        except self.errors as exc:
            raise DatabaseUnavailable(first_line(exc)) from None

    def _connect(self):
        raise NotImplementedError


def open_database(url: str):
    """The database a ``TRIPORT_DATABASE`` value names."""
    if url.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresDatabase

        return PostgresDatabase(url)
    from .sqlite import SQLiteDatabase

    if url.startswith("sqlite:///"):
        url = url[len("sqlite:///"):]
    return SQLiteDatabase(url)
