"""Bulk loads into SQLite (seed-demo, copy-data): into an empty table the
indexes are rebuilt after the rows; the schema, the data and the query plans
come out as if every row had been inserted one by one."""

from __future__ import annotations

import itertools
import sqlite3

import pytest

from helpers import list_payouts
from triport_payouts import demo
from triport_payouts.db import open_database
from triport_payouts.repository import PAYOUT_COLUMNS, PageFilters, Repository


def _indexes(path) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return sorted(conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master WHERE type = 'index'"))


def _integrity(path) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute("PRAGMA integrity_check").fetchall()


@pytest.fixture
def fresh(tmp_path):
    path = tmp_path / "bulk.sqlite3"
    db = open_database(str(path))
    db.init_schema()
    yield path, Repository(db)
    db.close()


def test_a_load_into_empty_tables_leaves_the_schema_and_every_index_whole(fresh):
    path, repo = fresh
    schema = _indexes(path)
    assert {row[1] for row in schema} >= {"payouts_newest", "payouts_by_status", "payouts_by_user", "credits_by_user"}
    ids = demo.seed_demo(repo, 3_000, 30)
    assert _indexes(path) == schema
    assert _integrity(path) == [("ok",)]
    # The indexes hold every row: a page through each one finds them all.
    by_user, _ = list_payouts(repo, user_id="demo-user-0007", limit=200)
    assert len(by_user) == 100 and {p["user_id"] for p in by_user} == {"demo-user-0007"}
    requested, _ = list_payouts(repo, status="requested", limit=200)
    assert [p["id"] for p in requested] == sorted(ids, reverse=True)[:200]


FILTERS = list(itertools.product((None, "requested"), (None, "u"), (None, ("t", "i"))))


@pytest.mark.parametrize("status,user_id,after", FILTERS)
def test_every_listing_reads_an_index_after_a_bulk_load(fresh, status, user_id, after):
    path, repo = fresh
    demo.seed_demo(repo, 500, 5)
    sql, params = repo.page_query(PageFilters(status, user_id), limit=50, after=after)
    with sqlite3.connect(path) as conn:
        plan = " ".join(row[-1] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params))
    assert "USING INDEX payouts_" in plan or "USING COVERING INDEX payouts_" in plan, plan
    assert "TEMP B-TREE" not in plan, plan


def _statements(repo) -> list[str]:
    """The statements the repository's connection runs from now on."""
    seen: list[str] = []
    repo.db.connection().set_trace_callback(seen.append)
    return seen


def test_a_load_into_an_empty_table_rebuilds_its_indexes_after_the_rows(fresh):
    path, repo = fresh
    seen = _statements(repo)
    demo.seed_demo(repo, 100, 2)
    for table, indexes in (("credits", ["credits_by_user"]),
                           ("payouts", ["payouts_newest", "payouts_by_status", "payouts_by_user",
                                        "payouts_changed", "payouts_by_status_changed", "payouts_by_user_changed"])):
        drops = [i for i, sql in enumerate(seen) if sql in {f'DROP INDEX "{name}"' for name in indexes}]
        insert = next(i for i, sql in enumerate(seen) if sql.startswith(f"INSERT INTO {table} "))
        creates = [i for i, sql in enumerate(seen) if sql.startswith("CREATE INDEX") and f" ON {table} " in sql]
        assert len(drops) == len(creates) == len(indexes)
        assert max(drops) < insert < min(creates)


def test_a_load_into_tables_that_hold_rows_keeps_their_indexes(fresh):
    path, repo = fresh
    first = demo.seed_demo(repo, 200, 4)
    schema = _indexes(path)
    seen = _statements(repo)
    second = demo.seed_demo(repo, 300, 4)
    assert not [sql for sql in seen if sql.startswith(("DROP", "CREATE"))]
    assert _indexes(path) == schema
    assert _integrity(path) == [("ok",)]
    listed, _ = list_payouts(repo, limit=200)
    assert len(set(first) | set(second)) == 500 and len(listed) == 200


def test_a_load_that_fails_leaves_the_indexes_as_they_were(fresh):
    path, repo = fresh
    schema = _indexes(path)
    good = ("p-1", "u", "1.00", "USDT", "w", "requested", None, None, "2026-01-01T00:00:00.000000Z",
            "2026-01-01T00:00:00.000000Z")
    bad = ("p-2", "u", "-1", *good[3:])  # a negative amount: refused by the table's CHECK
    seen = _statements(repo)
    with pytest.raises(sqlite3.IntegrityError), repo.db.transaction() as conn:
        repo.db.bulk_insert(conn, "payouts", PAYOUT_COLUMNS, [good, bad])
    assert [sql for sql in seen if sql.startswith("DROP INDEX")]  # dropped, then rolled back
    assert _indexes(path) == schema
    assert list_payouts(repo, ) == ([], None)


def test_an_index_whose_name_needs_quoting_is_rebuilt_too(fresh):
    path, repo = fresh
    conn = repo.db.connection()
    conn.execute('CREATE INDEX "odd ""name""" ON payouts (destination)')
    schema = _indexes(path)
    demo.seed_demo(repo, 50, 2)
    assert _indexes(path) == schema
    assert _integrity(path) == [("ok",)]
