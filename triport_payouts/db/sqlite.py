"""SQLite: one file in WAL mode, one connection per thread of each process,
writers queued on a lock file beside the database, and group commit (each
writer syncs the log itself, after the lock).
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import time
from contextlib import contextmanager

from .base import SCHEMA_TABLES, Database, DatabaseUnavailable, StorageFull

log = logging.getLogger("triport_payouts")

# Seconds a writer waits for the write lock held by a connection outside the
# writers' queue (the sqlite3 shell, a backup) before giving up: 503.
BUSY_TIMEOUT = 10.0

# A connection's writes between two checkpoints of the log (see checkpoint()):
# about SQLite's own 1,000 pages of log, at ten pages a transition.
CHECKPOINT_EVERY = 100


class _LockingConnection(sqlite3.Connection):
    """A SQLite connection with its own descriptor of the writers' lock file
    beside the database (None where one cannot be made: a read-only directory),
    and the path of the write-ahead log its commits sync (set on connecting;
    None when the database is not in WAL mode)."""

    wal_path: str | None = None
    _wal_fd: int | None = None
    commits = 0  # since this connection last checkpointed the log
    finish_checkpoint = False  # the next write transaction first finishes one (see checkpoint())

    def __init__(self, path, *args, **kwargs):
        super().__init__(path, *args, **kwargs)
        self.lock_fd = None
        if path in (":memory:", ""):
            return  # a private database: no other writer to queue behind
        try:
            # Resolved: every name of one database file queues on one lock.
            lock = os.path.realpath(path) + ".lock"
            self.lock_fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
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


class SQLiteDatabase(Database):
    """One SQLite file in WAL mode: readers never wait for the writer, and a
    write transaction (BEGIN IMMEDIATE) takes the one write lock up front, so
    a read-then-write inside it cannot be overtaken.
    """

    dialect = "sqlite"
    errors = (sqlite3.Error,)
    unavailable_errors = (DatabaseUnavailable,)
    PRAGMAS = (
        "PRAGMA foreign_keys = ON",
        # A statement inside a transaction keeps what it would have to undo
        # (a statement journal) in memory: SQLite spills it to a temporary
        # file past 64 KiB, which a transition that splits index pages
        # reaches: a file created, written and deleted per write (strace).
        "PRAGMA temp_store = MEMORY",
    )

    def __init__(self, path: str):
        super().__init__()
        self.path = path
        self.busy_timeout = BUSY_TIMEOUT
        self._sync_failed: str | None = None  # why this database is no longer used
        # Checked before every write: the name is resolved once (realpath stats every component).
        self._sync_failed_marker = os.path.realpath(path) + ".sync-failed"

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
        self._refuse_after_failed_sync()
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
            if _to_wal(conn, self.busy_timeout) == "wal":
                # COMMIT writes the log; transaction() syncs it, outside the lock.
                conn.execute("PRAGMA synchronous = NORMAL")
                # And checkpoints it, outside the lock too (see checkpoint()).
                conn.execute("PRAGMA wal_autocheckpoint = 0")
                # The file name SQLite itself resolved, and so its log's.
                conn.wal_path = conn.execute("PRAGMA database_list").fetchone()[2] + "-wal"
            else:
                conn.execute("PRAGMA synchronous = FULL")  # in memory, say: COMMIT syncs
        except sqlite3.Error as exc:
            raise self._not_now(exc) or DatabaseUnavailable(f"cannot open {self.path}: {exc}") from exc
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

        Raises StorageFull when the disk is full, DatabaseUnavailable when the
        write lock is not granted within the busy timeout: in both cases
        SQLite wrote nothing visible and the transaction is rolled back, so a
        retry is safe.
        """
        conn = self.connection()
        self._refuse_after_failed_sync()
        lock = conn.lock_fd
        if lock is not None:
            self._queue(lock)
        try:
            if conn.finish_checkpoint:
                conn.finish_checkpoint = False
                self._checkpoint(conn)
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.OperationalError as exc:
            error = self._not_now(exc)
            if error is None:
                raise
            raise error from exc
        finally:
            if lock is not None:
                fcntl.flock(lock, fcntl.LOCK_UN)
        self._sync(conn)
        conn.commits += 1
        if conn.commits >= CHECKPOINT_EVERY:
            self.checkpoint(conn)

    def checkpoint(self, conn) -> None:
        """Copies the log's committed pages into the database file, so that
        the log can start over, mostly outside the writers' lock.

        SQLite's own automatic checkpoint runs inside the COMMIT that crosses
        1,000 pages of log, so under the write lock: every writer queued
        behind it waited for its reads, writes and sync of the database file,
        which made the 200 path's p99. Here each connection, after every
        CHECKPOINT_EVERY of its own commits and once it has released the
        lock, copies what the log holds (a PASSIVE checkpoint waits for no
        reader and no writer) while the writers go on appending to it. The
        log starts over only when a write begins on a log copied whole,
        which writers appending meanwhile never leave: so the connection's
        next write transaction, under the lock, first copies the few pages
        appended since (without it the log grew by 20 MB a second under five
        writing processes). A checkpoint that fails (a full disk, say) is
        left to the next one: nothing committed depends on it."""
        conn.commits = 0
        if conn.wal_path is not None:
            self._checkpoint(conn)
            conn.finish_checkpoint = True

    def _checkpoint(self, conn) -> None:
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as exc:
            log.warning("checkpoint of %s not done: %s", self.path, exc)

    def _queue(self, lock: int) -> None:
        """Takes the writers' lock. A writer ahead waits up to the busy timeout
        when a connection outside the queue holds SQLite's lock, and the queue
        would add those waits up (five workers: 50 s, past gunicorn's 30 s
        timeout, which kills the worker unanswered). So a writer that waited
        longer than the busy timeout in the queue gives up at once, and none
        waits much more than twice the busy timeout in all. One blocking
        flock, as before, and two clock reads: a non-blocking try first
        measured 0.33 of the ceiling on the 200 path against 0.35 to 0.40
        without it, in alternating make bench runs."""
        queued = time.monotonic()
        fcntl.flock(lock, fcntl.LOCK_EX)
        if time.monotonic() - queued > self.busy_timeout:
            fcntl.flock(lock, fcntl.LOCK_UN)
            raise DatabaseUnavailable(self._locked())

    def _not_now(self, exc: sqlite3.Error) -> DatabaseUnavailable | None:
        """The error meaning "not now" for a driver's error, else None.

        SQLITE_FULL: a write to the database or its log found the disk full
        (ENOSPC); SQLite undid the transaction, and the same write succeeds
        once there is room. SQLITE_IOERR_SHMSIZE: opening the database could
        not size its -shm file, what a full disk does to the first connection
        (later ones use the file already there, and can still read).
        """
        code = getattr(exc, "sqlite_errorcode", None)  # not on errors the sqlite3 module makes itself
        if code is None:
            return None
        if code & 0xFF == sqlite3.SQLITE_FULL or code == sqlite3.SQLITE_IOERR_SHMSIZE:
            return StorageFull(f"no space left on the disk of {self.path}: {exc}")
        if code & 0xFF == sqlite3.SQLITE_BUSY:
            return DatabaseUnavailable(self._locked())
        return None

    def _locked(self) -> str:
        return (f"{self.path} is locked: another connection held its write lock"
                f" past the busy timeout ({self.busy_timeout:g} s)")

    # -- when the disk fails to sync the log ----------------------------------
    #
    # Linux reports a failed writeback once, then may drop the pages unwritten:
    # a later sync succeeds, and the commits already visible (and every later
    # one, as the log is replayed only up to the hole) can be lost. So a failed
    # sync stops this database for good: this process at once, every other
    # process at its next write or connection, through a file beside the
    # database that only an operator removes.
    #
    # A full disk is not that: SQLite meets it writing the log at COMMIT
    # (SQLITE_FULL, before anything is visible; see _not_now). On tmpfs and on
    # ext4, which reserves blocks when they are written, it is that write
    # that fails, never fdatasync (seen with strace). A filesystem that
    # allocates only at writeback (NFS, thin provisioning) may fail the sync
    # with ENOSPC instead; the commit is visible by then and its pages may be
    # dropped as after any failed writeback, so that too stops the database.

    def _sync(self, conn) -> None:
        try:
            conn.sync_log()
        except OSError as exc:
            reason = f"the disk failed to sync the write-ahead log of {self.path}: {exc}"
            self._sync_failed = reason
            log.critical("%s; no more requests are served on it. Check the disk, then remove %s",
                         reason, self._sync_failed_marker)
            try:
                with open(self._sync_failed_marker, "a", encoding="utf-8") as marker:
                    marker.write(reason + "\n")
            except OSError:
                pass
            raise DatabaseUnavailable(reason) from exc

    def _refuse_after_failed_sync(self) -> None:
        if self._sync_failed is None and os.path.exists(self._sync_failed_marker):
            self._sync_failed = f"a sync of the log failed earlier: see {self._sync_failed_marker}"
        if self._sync_failed is not None:
            raise DatabaseUnavailable(self._sync_failed)

    def connection(self):
        if self._sync_failed is not None:
            raise DatabaseUnavailable(self._sync_failed)
        return super().connection()

    def ping(self) -> None:
        self._refuse_after_failed_sync()
        super().ping()

    def sync_reads(self) -> None:
        """Group commit lets a read see a commit before its writer synced the
        log: one sync of the log makes all of it durable."""
        conn = self.connection()
        if conn.wal_path is not None and os.path.exists(conn.wal_path):
            self._sync(conn)

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
        """Inserts rows inside conn's write transaction."""
        # A large page cache keeps a million-row insert's index pages in memory
        # (60k to 70k rows/s measured); only a bulk load's connection asks for it.
        conn.execute("PRAGMA cache_size = -262144")
        # Into an empty table, each index is built after the rows by one sort
        # instead of row by row (100,000 payouts: 1.10 s -> 0.86 s). In the same
        # transaction: a load that fails leaves the indexes as they were.
        indexes = []
        if conn.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone() is None:
            indexes = conn.execute(
                "SELECT name, sql FROM sqlite_master"
                " WHERE type = 'index' AND tbl_name = ? COLLATE NOCASE AND sql IS NOT NULL",
                (table,),
            ).fetchall()
        for name, _sql in indexes:
            conn.execute("DROP INDEX " + _quoted(name))
        marks = ", ".join("?" * len(columns))
        conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)
        for _name, sql in indexes:
            conn.execute(sql)

    def _version(self, conn) -> int:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "schema_migrations" in tables:
            return conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()[0]
        return 1 if tables.issuperset(SCHEMA_TABLES) else 0

    def _migration(self):
        # BEGIN IMMEDIATE: one writer, so one migration, at a time.
        return self.transaction()

    def _run_script(self, conn, script: str) -> None:
        # One statement at a time: executescript() would commit first.
        statement = ""
        for line in script.splitlines(keepends=True):
            statement += line
            if sqlite3.complete_statement(statement):
                conn.execute(statement)
                statement = ""
        if statement.strip():
            conn.execute(statement)  # the last statement, without its semicolon


def _to_wal(conn: sqlite3.Connection, timeout: float) -> str:
    """PRAGMA journal_mode = WAL (the mode it is in afterwards), tried again
    for up to `timeout` seconds while another process switches the same file
    at the same moment: SQLite answers that race (both reading, both wanting
    the exclusive lock) with an immediate SQLITE_BUSY, not after its busy
    wait. Two migrate processes on a first release's database met it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() >= deadline:
                raise
            time.sleep(0.005)


def _quoted(name: str) -> str:
    """An SQL identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'
