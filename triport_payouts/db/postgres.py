"""PostgreSQL (psycopg 3, the ``postgres`` extra): the ``Database`` interface
for several app hosts sharing one database.

Each thread of each worker process keeps one connection, opened on first use
(after gunicorn forks) and replaced when it breaks; a database that cannot
be reached (or a lock or statement that times out: psycopg's
``OperationalError``) is ``DatabaseUnavailable``, and a full disk met by a
write ``StorageFull``, which the app answers with 503.
"""

from __future__ import annotations

import itertools
from contextlib import contextmanager

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from .base import SCHEMA_TABLES, Database, DatabaseUnavailable, StorageFull, first_line

CONNECT_TIMEOUT = 5  # seconds: a down database answers 503 quickly, not never
STATEMENT_TIMEOUT_MS = 15_000
# Seconds a statement waits for a lock (a row another session holds FOR
# UPDATE, a LOCK TABLE) before failing with LockNotAvailable: the app's own
# transactions hold theirs for milliseconds, so a wait this long is a stuck
# session, answered 503 well before the statement timeout.
LOCK_TIMEOUT = 5.0
# Any 64-bit number: the key of the advisory lock migrations take.
_SCHEMA_LOCK = 7_405_118_022


class PostgresDatabase(Database):
    dialect = "postgres"
    writes_in_one_statement = True
    errors = (psycopg.Error,)
    unavailable_errors = (DatabaseUnavailable, psycopg.OperationalError)
    # PostgreSQL sums NUMERIC exactly: return one row per (currency, kind).
    sql_overrides = {
        "balance_rows": (
            "SELECT currency, 'credit', sum(amount), count(*) FROM credits"
            " WHERE user_id = ? AND currency = ? GROUP BY currency"
            " UNION ALL"
            " SELECT currency, status, sum(amount), count(*) FROM payouts"
            " WHERE user_id = ? AND currency = ? GROUP BY currency, status"
        ),
        "user_balance_rows": (
            "SELECT currency, 'credit', sum(amount), count(*) FROM credits"
            " WHERE user_id = ? GROUP BY currency"
            " UNION ALL"
            " SELECT currency, status, sum(amount), count(*) FROM payouts"
            " WHERE user_id = ? GROUP BY currency, status"
        ),
        # The change feed: ids are taken before commit, so two transactions
        # may commit their events out of id order. Only events of
        # transactions older than every one still running are served (none of
        # those can commit later), in (transaction, id) order: the feed may
        # lag behind a long transaction, never skip an event.
        "feed_position": "e.xid::text",
        "feed_after": "(e.xid, e.id) > (?::text::xid8, ?) AND e.xid < pg_snapshot_xmin(pg_current_snapshot())",
        "feed_order": "e.xid, e.id",
    }

    def __init__(self, url: str):
        super().__init__()
        params = conninfo_to_dict(url)
        # For messages: where the database is, never the URL (it may hold a password).
        dbname = params.get("dbname") or params.get("user") or "(default)"  # libpq's default: the user's name
        self.name = f"{dbname} on {params.get('host') or 'localhost'}"
        lock_timeout_ms = round(1000 * LOCK_TIMEOUT)
        # Keep any options the URL has (a search_path, say) and add ours.
        self._conninfo = make_conninfo(
            url,
            connect_timeout=CONNECT_TIMEOUT,
            options=(f"{params.get('options', '')} -c statement_timeout={STATEMENT_TIMEOUT_MS}"
                     f" -c lock_timeout={lock_timeout_ms}").strip(),
        )

    def __repr__(self) -> str:
        return "PostgresDatabase(<url hidden>)"

    def sql(self, text: str) -> str:
        """The repository's qmark SQL with psycopg's placeholders (it has no literal ? or %)."""
        return text.replace("?", "%s")

    @staticmethod
    def json_object(members) -> str:
        """SQL for a JSON object of (key, SQL expression) members, encoded as
        json.dumps(ensure_ascii=False) with compact separators would (json_build_object
        writes " : " between key and value): to_json quotes text as Python does."""
        parts = (f"""'"{key}":' || coalesce(to_json({expr})::text, 'null')""" for key, expr in members)
        return "'{' || " + " || ',' || ".join(parts) + " || '}'"

    def _usable(self, conn) -> bool:
        return not (conn.closed or conn.broken)

    def _connect(self) -> psycopg.Connection:
        try:
            return psycopg.connect(self._conninfo, autocommit=True)
        except psycopg.Error as exc:
            raise DatabaseUnavailable(first_line(exc)) from None

    @contextmanager
    def transaction(self):
        """A write transaction: commits on success, rolls back and re-raises
        otherwise. Raises StorageFull when the server could not extend a file
        ("No space left on device", SQLSTATE 53100): rolled back, retryable."""
        conn = self.connection()
        with self._disk_full_is_storage_full(), conn.transaction():
            yield conn

    @contextmanager
    def write_once(self):
        """The autocommit connection, for one statement that is its own
        transaction: no BEGIN and COMMIT round trips (a transition is one
        round trip instead of four). Errors as in transaction()."""
        with self._disk_full_is_storage_full():
            yield self.connection()

    @contextmanager
    def _disk_full_is_storage_full(self):
        try:
            yield
        except psycopg.errors.DiskFull as exc:
            raise StorageFull(f"no space left on the disk of PostgreSQL database {self.name}:"
                              f" {first_line(exc)}") from exc

    @contextmanager
    def snapshot(self):
        """A consistent read of the whole database: yields stream(sql, params),
        which returns server-side cursors, so a million rows never sit in memory."""
        conn = self.connection()
        names = itertools.count()
        with conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")

            def stream(sql, params=()):
                cursor = conn.cursor(name=f"stream_{next(names)}")
                cursor.itersize = 5_000
                cursor.execute(self.sql(sql), params)
                return cursor

            yield stream

    def lock_balance(self, conn, user_id: str, currency: str) -> None:
        """Serialise balance checks of one (user, currency) across every host,
        until the transaction ends. A user id never contains '/'."""
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"{user_id}/{currency}",))

    def bulk_insert(self, conn, table: str, columns: tuple[str, ...], rows) -> None:
        with conn.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def _version(self, conn) -> int:
        # pg_class, not information_schema: this runs on every new connection.
        tables = {row[0] for row in conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')"
        )}
        if "schema_migrations" in tables:
            return conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()[0]
        return 1 if tables.issuperset(SCHEMA_TABLES) else 0

    @contextmanager
    def _migration(self):
        with self.transaction() as conn:
            # A step rewrites whole tables, and another host's step may hold
            # the lock for as long: the service's timeouts are not for this.
            conn.execute("SET LOCAL statement_timeout = 0")
            conn.execute("SET LOCAL lock_timeout = 0")
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            yield conn

    def _run_script(self, conn, script: str) -> None:
        conn.execute(script)
