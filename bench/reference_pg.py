"""The raw loop for PostgreSQL: mark-failed written by hand in one function,
as bench/reference.py is for SQLite, and served like the app.

It answers the same requests on the same schema: the token compared, the
JSON body read, the status read (a 409 there for a payout already failed,
as the app's 409 path does), then the writes of the transition in one
transaction; over ONE psycopg connection per worker, opened after the fork
(autocommit, as the app's, so a read is one round trip and a write
transaction is BEGIN, its statements, COMMIT). Nothing else: no validation
beyond the token and the body, no idempotency keys, no log line.
synchronous_commit is the server's (on): an answered write is on disk.

The statements are below and nowhere else: the load rounds' raw loop and
bench/pg_profile.py take them from here. WRITES is the app's transition
(the compare-and-set and the event as one data-modifying statement); if
the app's changes shape, change WRITES to match and the raw loop follows: one statement runs on its
own (autocommit makes it its own transaction, one round trip), several run
between BEGIN and COMMIT.

    gunicorn --config python:triport_payouts.gunicorn_conf bench.reference_pg:application
"""

from __future__ import annotations

import os

from triport_payouts.domain import utcnow

from bench.reference import _answer, _error, read_request

# The status read: the 409 path ends here.
STATUS = "SELECT status FROM payouts WHERE id = %(id)s"
# The transition's writes as the app sends them (repository.SQL's
# "transition_and_event", in psycopg's placeholders): one data-modifying
# statement, its own transaction, so a transition is two round trips (the
# status read, this). It must change exactly one row, or the payout moved
# under us: 409. The parameters: id, from, to, reason, tx_hash, actor,
# on_behalf_of, now.
WRITES = [
    "WITH moved AS (UPDATE payouts SET status = %(to)s, reason = coalesce(%(reason)s, reason),"
    " tx_hash = coalesce(%(tx_hash)s, tx_hash), updated_at = %(now)s"
    " WHERE id = %(id)s AND status = %(from)s RETURNING id)"
    " INSERT INTO payout_events (payout_id, from_status, to_status, reason, tx_hash, actor, at, on_behalf_of)"
    " SELECT id, %(from)s, %(to)s, %(reason)s, %(tx_hash)s, %(actor)s, %(now)s, %(on_behalf_of)s FROM moved",
]
# The app's first shape, kept as a yardstick for bench/pg_profile.py: the
# same writes as two statements between BEGIN and COMMIT, five round trips.
SEVERAL_STATEMENTS = [
    "UPDATE payouts SET status = %(to)s, reason = coalesce(%(reason)s, reason),"
    " tx_hash = coalesce(%(tx_hash)s, tx_hash), updated_at = %(now)s"
    " WHERE id = %(id)s AND status = %(from)s",
    "INSERT INTO payout_events (payout_id, from_status, to_status, reason, tx_hash, actor, at, on_behalf_of)"
    " VALUES (%(id)s, %(from)s, %(to)s, %(reason)s, %(tx_hash)s, %(actor)s, %(now)s, %(on_behalf_of)s)",
]
SOURCES = ("requested", "processing")  # where mark-failed may come from


class _Moved(Exception):
    """A write changed no row: another request moved the payout first."""


def transition(conn, params: dict, writes: list[str] = WRITES) -> bool:
    """The writes of one transition on an autocommit connection: one statement
    alone, several in one transaction. False if the payout moved first."""
    if len(writes) == 1:
        return conn.execute(writes[0], params).rowcount == 1
    try:
        with conn.transaction():
            for sql in writes:
                if conn.execute(sql, params).rowcount != 1:
                    raise _Moved
    except _Moved:
        return False
    return True


class RawEndpoint:
    def __init__(self, writes: list[str] | None = None):
        self.writes = writes  # None: WRITES, as it is when called
        self.token = (os.environ.get("TRIPORT_ADMIN_TOKEN") or "").encode()
        self.url = os.environ.get("TRIPORT_DATABASE", "")
        self._conn, self._pid = None, None

    def connection(self):
        """This process's one connection, opened after gunicorn forks."""
        if self._pid != os.getpid() or self._conn is None or self._conn.closed:
            import psycopg

            self._conn, self._pid = psycopg.connect(self.url, autocommit=True), os.getpid()
        return self._conn

    def __call__(self, environ, start_response):
        early, payout_id, reason = read_request(environ, self.token)
        if early is not None:
            return _answer(start_response, *early)
        conn = self.connection()
        row = conn.execute(STATUS, {"id": payout_id}).fetchone()
        if row is None:
            return _error(start_response, "404 Not Found", "payout_not_found")
        if row[0] not in SOURCES:
            return _error(start_response, "409 Conflict", "payout_not_actionable")
        params = {"id": payout_id, "from": row[0], "to": "failed", "reason": reason, "tx_hash": None,
                  "actor": None, "on_behalf_of": None, "now": utcnow()}
        if not transition(conn, params, WRITES if self.writes is None else self.writes):
            return _error(start_response, "409 Conflict", "payout_not_actionable")
        return _answer(start_response, "200 OK", {"ok": True})


application = RawEndpoint()
several_statements = RawEndpoint(SEVERAL_STATEMENTS)
