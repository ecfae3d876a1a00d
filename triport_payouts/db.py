"""Connections and transactions, one class per database dialect, and opening
a repository from a ``TRIPORT_DATABASE`` value.

A connection belongs to one thread of one process: it is opened lazily, after
gunicorn forks its workers, and reopened when the process id changes.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from contextlib import contextmanager
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


class _LockingConnection(sqlite3.Connection):
    """A SQLite connection with its own descriptor of the writers' lock file
    beside the database (None where one cannot be made: a read-only directory),
    and the path of the write-ahead log its commits sync (set on connecting;
    None when the database is not in WAL mode)."""

    wal_path: str | None = None
    _wal_fd: int | None = None

    def __init__(self, path, *args, **kwargs):
        super().__init__(path, *args, **kwargs)
        self.lock_fd = None
        if path in (":memory:", ""):
            return  # a private database: no other writer to queue behind
        try:
            self.lock_fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError:
            pass

    def sync_log(self) -> None:
        """Waits until every commit written to the log so far, by any process,
        is on disk (one fdatasync of the log). Raises OSError if the disk
        cannot say so: the caller must not answer as if it had."""
        if self.wal_path is None:
            return  # synchronous=FULL: COMMIT synced already
        if self._wal_fd is None:
            # Opened after a commit, when the log exists; SQLite keeps that
            # file (and writes to it) until this connection closes.
            self._wal_fd = os.open(self.wal_path, os.O_RDONLY | os.O_CLOEXEC)
        os.fdatasync(self._wal_fd)

    def close(self) -> None:
        for name in ("lock_fd", "_wal_fd"):
            if getattr(self, name) is not None:
                os.close(getattr(self, name))
                setattr(self, name, None)
        super().close()


class SQLiteDatabase(PerThreadConnections):
    """One SQLite file in WAL mode: readers never wait for the writer, and a
    write transaction (BEGIN IMMEDIATE) takes the one write lock up front, so
    a read-then-write inside it cannot be overtaken.
    """

    dialect = "sqlite"
    errors = (sqlite3.Error,)
    unavailable_errors = (DatabaseUnavailable,)
    PRAGMAS = ("PRAGMA foreign_keys = ON",)

    def __init__(self, path: str, busy_timeout: float = 10.0):
        super().__init__()
        self.path = path
        self.busy_timeout = busy_timeout

    def __repr__(self) -> str:
        return f"SQLiteDatabase({self.path!r})"

    def sql(self, text: str) -> str:
        """The repository's SQL in this dialect (qmark parameters already)."""
        return text

    @staticmethod
    def json_object(members) -> str:
        """SQL for a JSON object of (key, SQL expression) members, encoded as
        json.dumps(ensure_ascii=False) with compact separators would: SQLite's
        json_object quotes strings byte for byte as Python does."""
        return "json_object(" + ", ".join(f"'{key}', {expr}" for key, expr in members) + ")"

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=self.busy_timeout,
                isolation_level=None,
                check_same_thread=False,
                cached_statements=256,
                factory=_LockingConnection,
            )
            for pragma in self.PRAGMAS:
                conn.execute(pragma)
            if conn.execute("PRAGMA journal_mode = WAL").fetchone()[0] == "wal":
                # COMMIT writes the log; transaction() syncs it, outside the lock.
                conn.execute("PRAGMA synchronous = NORMAL")
                conn.wal_path = os.path.realpath(self.path) + "-wal"
            else:
                conn.execute("PRAGMA synchronous = FULL")  # in memory, say: COMMIT syncs
        except sqlite3.Error as exc:
            raise DatabaseUnavailable(f"cannot open {self.path}: {exc}") from exc
        return conn

    @contextmanager
    def transaction(self):
        """A write transaction: commits on success, rolls back and re-raises
        otherwise. Returns only once the commit is on disk.

        Writers queue on an OS lock first: SQLite's busy handler sleeps in
        steps of up to 100 ms and is not woken when the lock frees, which put
        the p99 of concurrent writes in the hundreds of milliseconds. The
        kernel hands the flock to the next writer at once. The busy timeout
        stays, for writers that do not take it.

        Group commit: COMMIT writes the log without waiting for the disk
        (synchronous=NORMAL), and the writer syncs the log after releasing the
        lock. So a commit is on disk before its transaction returns, hence
        before any client is answered, as under synchronous=FULL; but while
        one writer waits for the disk the next one commits, and one sync
        covers every commit written before it. Readers may see a commit a sync
        before it is durable; a write built on it is durable only with it, as
        the log is replayed in order.
        """
        conn = self.connection()
        lock = conn.lock_fd
        if lock is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        finally:
            if lock is not None:
                fcntl.flock(lock, fcntl.LOCK_UN)
        conn.sync_log()

    @contextmanager
    def snapshot(self):
        """A consistent read of the whole database: yields stream(sql, params),
        which returns an iterator of rows, fetched as they are read."""
        conn = self.connection()
        conn.execute("BEGIN")
        try:
            yield lambda sql, params=(): conn.execute(sql, params)
        finally:
            conn.execute("ROLLBACK")

    def lock_balance(self, conn, user_id: str, currency: str) -> None:
        """Serialise balance checks: BEGIN IMMEDIATE already holds the write lock."""

    def bulk_insert(self, conn, table: str, columns: tuple[str, ...], rows) -> None:
        # A large page cache keeps a million-row insert's index pages in memory
        # (60k to 70k rows/s measured); only a bulk load's connection asks for it.
        conn.execute("PRAGMA cache_size = -262144")
        marks = ", ".join("?" * len(columns))
        conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)

    def init_schema(self) -> None:
        conn = self.connection()
        conn.executescript(schema_text(self.dialect))
        conn.sync_log()

    def has_schema(self) -> bool:
        marks = ", ".join("?" * len(SCHEMA_TABLES))
        row = self.connection().execute(
            f"SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ({marks})", SCHEMA_TABLES
        ).fetchone()
        return row[0] == len(SCHEMA_TABLES)



def open_database(url: str):
    """The database a ``TRIPORT_DATABASE`` value names."""
    if url.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresDatabase

        return PostgresDatabase(url)
    if url.startswith("sqlite:///"):
        url = url[len("sqlite:///"):]
    return SQLiteDatabase(url)
