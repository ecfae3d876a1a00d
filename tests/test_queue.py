"""The operator's queue: GET .../payouts with order=oldest|newest,
created_after, created_before and updated_before (RFC 3339, exclusive
bounds), cursors bound to every filter and the order, and every combination
read as one index range on both backends."""

from __future__ import annotations

import itertools
import re

import pytest

from helpers import AUTH, PAYOUTS, TOKEN
from triport_payouts.pagination import Cursors
from triport_payouts.repository import SQL, PageFilters

COUNT = 20
TIME_FILTERS = ("created_after", "created_before", "updated_before")


def minute(day: int, n: int) -> str:
    return f"2026-03-0{day}T{n // 60:02d}:{n % 60:02d}:00.000000Z"


def listing(client, expect=200, **params):
    return client.get(PAYOUTS, params, headers=AUTH, status=expect)


def page_through(client, limit, **params):
    """Every payout of every page, following next_cursor to the end."""
    payouts, cursor = [], None
    while True:
        body = listing(client, limit=limit, **params, **({"cursor": cursor} if cursor else {})).json
        payouts.extend(body["payouts"])
        cursor = body["next_cursor"]
        if cursor is None:
            return payouts
        assert len(payouts) <= COUNT


@pytest.fixture
def timeline(repo):
    """COUNT payouts created a minute apart on March 1st (ids not in creation
    order); every third is in processing since March 2nd, the later created
    the earlier moved; the others are requested (updated_at = created_at).
    Returns them oldest first, as the list shows them."""
    rows = []
    for n in range(COUNT):
        payout_id = f"{(n * 7919) % 1000:08x}-0000-4000-8000-{n:012x}"
        processing = n % 3 == 0
        updated = minute(2, 40 - n) if processing else minute(1, n)
        rows.append((payout_id, f"user-{n % 2}", "1.00", "USDT", "0xwallet",
                     "processing" if processing else "requested", None, None, minute(1, n), updated))
    with repo.db.transaction() as conn:
        for row in rows:
            conn.execute(repo.db.sql(SQL["insert_payout"]), row)
    return [repo.get_payout(row[0]) for row in rows]


def expected(payouts, *, status=None, user_id=None, created_after=None, created_before=None,
             updated_before=None, order="newest"):
    """What the list must show, computed here from the filters' definitions."""
    chosen = [p for p in payouts
              if (status is None or p["status"] == status)
              and (user_id is None or p["user_id"] == user_id)
              and (created_after is None or p["created_at"] > created_after)
              and (created_before is None or p["created_at"] < created_before)
              and (updated_before is None or p["updated_at"] < updated_before)]
    key = "updated_at" if updated_before is not None else "created_at"
    return sorted(chosen, key=lambda p: (p[key], p["id"]), reverse=order == "newest")


# -- order and bounds ----------------------------------------------------------------

def test_newest_first_by_default_and_oldest_first_on_request(client, timeline):
    newest = listing(client).json["payouts"]
    assert newest == listing(client, order="newest").json["payouts"] == list(reversed(timeline))
    assert listing(client, order="oldest").json == {"payouts": timeline, "next_cursor": None}


@pytest.mark.parametrize("order", ["newest", "oldest"])
def test_paging_oldest_or_newest_visits_every_payout_once_in_order(client, timeline, order):
    seen = page_through(client, 3, order=order)
    assert seen == (timeline if order == "oldest" else list(reversed(timeline)))


def test_creation_bounds_are_exclusive(client, timeline):
    body = listing(client, order="oldest", created_after=timeline[5]["created_at"],
                   created_before=timeline[10]["created_at"]).json
    assert body == {"payouts": timeline[6:10], "next_cursor": None}


@pytest.mark.parametrize(("text", "stored"), [
    ("2026-03-01T00:05:00Z", minute(1, 5)),
    ("2026-03-01T00:05:00.000000Z", minute(1, 5)),
    ("2026-03-01t00:05:00z", minute(1, 5)),
    ("2026-03-01T01:05:00+01:00", minute(1, 5)),
    ("2026-02-28T23:35:00-00:30", minute(1, 5)),
])
@pytest.mark.parametrize("backend", ["sqlite"])  # the same on both: the handler's, before the database
def test_a_time_with_an_offset_is_the_same_instant_in_utc(client, timeline, text, stored):
    body = listing(client, order="oldest", created_after=text).json
    assert body["payouts"] == [p for p in timeline if p["created_at"] > stored]


@pytest.mark.parametrize("backend", ["sqlite"])  # the same on both: the handler's, before the database
def test_a_time_finer_than_a_microsecond_bounds_the_stored_microseconds_exactly(client, timeline):
    # created_at < 00:05:00.0000001 includes the payout made at 00:05:00.000000.
    fine = "2026-03-01T00:05:00.0000001Z"
    assert listing(client, order="oldest", created_before=fine).json["payouts"] == timeline[:6]
    assert listing(client, order="oldest", created_after=fine).json["payouts"] == timeline[6:]


def test_stalled_payouts_come_stuck_longest_first(client, timeline):
    """status=processing&updated_before=T: the payouts that have not moved
    since T, in the order of their last change."""
    cutoff = minute(2, 30)
    stalled = page_through(client, 1, status="processing", updated_before=cutoff, order="oldest")
    assert [p["updated_at"] for p in stalled] == sorted(p["updated_at"] for p in stalled)
    assert stalled == expected(timeline, status="processing", updated_before=cutoff, order="oldest")
    assert [p["id"] for p in stalled] == [timeline[n]["id"] for n in (18, 15, 12)]


def test_every_filter_and_order_pages_through_exactly_the_matching_payouts(client, timeline):
    values = {
        "status": (None, "processing"), "user_id": (None, "user-1"),
        "created_after": (None, minute(1, 2)), "created_before": (None, minute(1, 17)),
        "updated_before": (None, minute(2, 35)), "order": ("newest", "oldest"),
    }
    for combination in itertools.product(*values.values()):
        params = {name: value for name, value in zip(values, combination) if value is not None}
        want = expected(timeline, **params)
        assert page_through(client, 2, **params) == want, params
        assert want or params.keys() >= {"status", "user_id", "updated_before"}, params


# -- validation --------------------------------------------------------------------

@pytest.mark.parametrize("query", [
    "order=", "order=asc", "order=OLDEST", "order=oldest%20", "order=oldest&order=oldest",
    "order=oldest&order=newest",
])
def test_invalid_order(bare_client, query):
    res = bare_client.get(f"{PAYOUTS}?{query}", headers=AUTH, status=400)
    assert res.json == {"error": "invalid_order"}


@pytest.mark.parametrize("name", TIME_FILTERS)
@pytest.mark.parametrize("value", [
    "", "2026-03-01", "2026-03-01T00:00:00", "2026-03-01 00:00:00Z", "2026-03-01T00:00Z",
    "2026-02-30T00:00:00Z", "2026-03-01T24:00:00Z", "2026-03-01T00:00:00+25:00", "2026-03-01T00:00:00.Z",
    "2026-03-01T00:00:00.1234567890Z", "1772323200", "now", "2026-03-01T00:00:00Z%20",
    "%D9%A2026-03-01T00:00:00Z", "0001-01-01T00:00:00%2B01:00",
])
def test_invalid_time(bare_client, name, value):
    res = bare_client.get(f"{PAYOUTS}?{name}={value}", headers=AUTH, status=400)
    assert res.json == {"error": "invalid_time"}


@pytest.mark.parametrize("name", TIME_FILTERS)
def test_a_repeated_time_is_invalid(bare_client, name):
    value = "2026-03-01T00:00:00Z"
    res = bare_client.get(f"{PAYOUTS}?{name}={value}&{name}={value}", headers=AUTH, status=400)
    assert res.json == {"error": "invalid_time"}


def test_order_and_times_are_checked_after_status_and_user_and_before_limit(bare_client):
    def error(query):
        return bare_client.get(f"{PAYOUTS}?{query}", headers=AUTH, status=400).json["error"]

    assert error("order=x&created_after=x&limit=0&status=x") == "invalid_status"
    assert error("order=x&created_after=x&limit=0&user_id=") == "invalid_user_id"
    assert error("order=x&created_after=x&limit=0") == "invalid_order"
    assert error("created_after=x&limit=0&cursor=x") == "invalid_time"
    assert error("order=oldest&limit=0&cursor=x") == "invalid_limit"


# -- cursors -----------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["sqlite"])  # the same on both: the handler's, before the database
@pytest.mark.parametrize(("made_with", "used_with"), [
    ({}, {"order": "oldest"}),
    ({"order": "oldest"}, {}),
    ({"order": "oldest"}, {"order": "newest"}),
    ({}, {"created_after": minute(1, 0)}),
    ({"created_after": minute(1, 0)}, {}),
    ({"created_after": minute(1, 0)}, {"created_after": minute(1, 1)}),
    ({"created_before": minute(1, 19)}, {"created_before": minute(1, 18)}),
    ({"created_before": minute(1, 19)}, {"created_after": minute(1, 19)}),
    ({"updated_before": minute(3, 0)}, {}),
    ({"updated_before": minute(3, 0)}, {"created_before": minute(3, 0)}),
    ({"updated_before": minute(3, 0)}, {"updated_before": minute(3, 1)}),
    ({"updated_before": minute(3, 0), "order": "oldest"}, {"updated_before": minute(3, 0)}),
    ({"status": "requested", "order": "oldest"}, {"status": "requested"}),
])
def test_a_cursor_used_with_other_filters_or_order_is_invalid(client, timeline, made_with, used_with):
    cursor = listing(client, limit=2, **made_with).json["next_cursor"]
    assert cursor is not None
    assert listing(client, 400, limit=2, cursor=cursor, **used_with).json == {"error": "invalid_cursor"}


@pytest.mark.parametrize("backend", ["sqlite"])  # the same on both: the handler's, before the database
def test_a_cursor_is_good_with_the_same_instant_written_another_way(client, timeline):
    first = listing(client, limit=2, order="oldest", created_after="2026-03-01T00:05:00Z").json
    rest = listing(client, limit=20, order="oldest", created_after="2026-03-01T01:05:00.000+01:00",
                   cursor=first["next_cursor"]).json
    assert first["payouts"] + rest["payouts"] == timeline[6:]


@pytest.mark.parametrize("backend", ["sqlite"])  # the same on both: the handler's, before the database
def test_cursors_without_the_new_filters_keep_their_form(client, timeline):
    """A cursor issued before order and the times existed is still good: the
    list signs the filters of the first release as it did then."""
    requested = [p for p in reversed(timeline) if p["status"] == "requested"]
    old_form = Cursors(TOKEN).encode((requested[0]["created_at"], requested[0]["id"]), ("requested", None))
    assert listing(client, status="requested", limit=1).json["next_cursor"] == old_form
    body = listing(client, status="requested", order="newest", cursor=old_form).json
    assert body["payouts"] == requested[1:]


# -- query plans -------------------------------------------------------------------

COMBINATIONS = [
    dict(zip(("status", "user_id", *TIME_FILTERS, "oldest", "cursor"), values))
    for values in itertools.product(
        (None, "processing"), (None, "user-1"), (None, minute(1, 2)), (None, minute(1, 17)),
        (None, minute(2, 35)), (False, True), (False, True))
]


def _page_queries(repo):
    """(combination, sql, params) of a page of every combination of filters,
    order and cursor, as the repository runs it."""
    for combination in COMBINATIONS:
        filters = PageFilters(**{k: v for k, v in combination.items() if k != "cursor"})
        after = (minute(1, 10), "00000000-0000-4000-8000-000000000000") if combination["cursor"] else None
        yield combination, *repo.page_query(filters, limit=50, after=after)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_every_page_is_one_index_range_in_index_order_on_sqlite(repo, timeline):
    conn = repo.db.connection()
    wrong = []
    for combination, sql, params in _page_queries(repo):
        plan = [row[-1] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params)]
        scans = [line for line in plan if line.startswith("SCAN") and "INDEX payouts_" not in line]
        # Only the whole list, with no bound at all, reads its index from one end.
        searched = all(line.startswith("SEARCH payouts USING") for line in plan) or not any(
            v for k, v in combination.items() if k != "oldest")
        if scans or not searched or any("TEMP B-TREE" in line for line in plan) or len(plan) != 1:
            wrong.append((combination, plan))
    assert wrong == []


@pytest.mark.parametrize("backend", ["postgres"])
def test_every_page_is_one_index_range_in_index_order_on_postgres(repo, timeline):
    """With sequential scans, bitmap scans and sorts priced out, the planner
    still finds a plan for each page: so each has an index range read in the
    list's order, which the planner takes for a LIMIT over a large table."""
    wrong = []
    with repo.db.transaction() as conn:
        for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
            conn.execute(f"SET LOCAL {setting} = off")
        for combination, sql, params in _page_queries(repo):
            plan = [row[0] for row in conn.execute("EXPLAIN " + sql, params)]
            text = "\n".join(plan)
            if re.search(r"Seq Scan|Sort|Bitmap", text) or not re.search(r"Index (Only )?Scan", text):
                wrong.append((combination, plan))
    assert wrong == []
