"""GET /v1/admin/referrals/payouts: filters, query validation, order, and
keyset paging with signed cursors (including while payouts are added)."""

from __future__ import annotations

from decimal import Decimal

import pytest
import webtest

from helpers import AUTH, PAYOUTS, move_to
from triport_payouts import demo
from triport_payouts import create_app
from triport_payouts.repository import SQL

STATUSES = ("requested", "processing", "sent", "failed", "cancelled")


def newest_first(payouts):
    return sorted(payouts, key=lambda p: (p["created_at"], p["id"]), reverse=True)


def listing(client, expect=200, **params):
    return client.get(PAYOUTS, params, headers=AUTH, status=expect)


def page_through(client, limit, **filters):
    """Every page's ids, following next_cursor to the end."""
    pages, cursor = [], None
    while True:
        params = {**filters, "limit": limit, **({"cursor": cursor} if cursor else {})}
        body = listing(client, **params).json
        pages.append([p["id"] for p in body["payouts"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        assert isinstance(cursor, str) and cursor
        assert len(pages) <= 10_000


@pytest.fixture
def mixed(repo, make_payout):
    """Two payouts in each status for each of two users: {id: payout}."""
    ids = []
    for user in ("ann", "ben"):
        for status in STATUSES:
            for _ in range(2):
                payout_id = make_payout(user, "1.00")
                move_to(repo, payout_id, status)
                ids.append(payout_id)
    return {payout_id: repo.get_payout(payout_id) for payout_id in ids}


# -- filters ------------------------------------------------------------------

def test_no_filter_lists_everything_newest_first(client, mixed):
    assert listing(client).json == {"payouts": newest_first(mixed.values()), "next_cursor": None}


@pytest.mark.parametrize("status", STATUSES)
def test_filter_by_status(client, mixed, status):
    expected = newest_first(p for p in mixed.values() if p["status"] == status)
    assert len(expected) == 4
    assert listing(client, status=status).json == {"payouts": expected, "next_cursor": None}


@pytest.mark.parametrize("user_id", ["ann", "ben"])
def test_filter_by_user(client, mixed, user_id):
    expected = newest_first(p for p in mixed.values() if p["user_id"] == user_id)
    assert len(expected) == 10
    assert listing(client, user_id=user_id).json == {"payouts": expected, "next_cursor": None}


@pytest.mark.parametrize("status", STATUSES)
def test_filter_by_status_and_user(client, mixed, status):
    expected = newest_first(p for p in mixed.values() if p["status"] == status and p["user_id"] == "ben")
    assert len(expected) == 2
    res = listing(client, status=status, user_id="ben")
    assert res.json == {"payouts": expected, "next_cursor": None}


def test_unknown_user_lists_nothing(client, mixed):
    assert listing(client, user_id="nobody").json == {"payouts": [], "next_cursor": None}


def test_empty_database_lists_nothing(client):
    assert listing(client).json == {"payouts": [], "next_cursor": None}


# -- query validation ---------------------------------------------------------

@pytest.mark.parametrize("query", [
    "status=unknown", "status=", "status=REQUESTED", "status=requested%20",
    "status=requested&status=sent", "status=sent&status=sent",
])
def test_invalid_status(bare_client, query):
    res = bare_client.get(f"{PAYOUTS}?{query}", headers=AUTH, status=400)
    assert res.json == {"error": "invalid_status"}


@pytest.mark.parametrize("query", [
    "limit=0", "limit=201", "limit=-1", "limit=abc", "limit=", "limit=1.5", "limit=%2B5",
    "limit=%205", "limit=1e2", "limit=%D9%A5", "limit=1&limit=2", "limit=5&limit=5",
    "limit=99999999999999999999999",
])
def test_invalid_limit(bare_client, query):
    res = bare_client.get(f"{PAYOUTS}?{query}", headers=AUTH, status=400)
    assert res.json == {"error": "invalid_limit"}


@pytest.mark.parametrize(("limit", "count", "first_page"), [
    (1, 2, 1), (200, 201, 200),
])
def test_limit_bounds_accepted(client, repo, limit, count, first_page):
    ids = demo.seed_demo(repo, count, 3)
    newest = list(reversed(ids))
    body = listing(client, limit=limit).json
    assert [p["id"] for p in body["payouts"]] == newest[:first_page]
    assert body["payouts"] == [repo.get_payout(i) for i in newest[:first_page]]
    assert body["next_cursor"] is not None
    rest = listing(client, limit=limit, cursor=body["next_cursor"]).json
    assert [p["id"] for p in rest["payouts"]] == newest[first_page:2 * first_page]


def test_default_limit_is_50(client, repo):
    ids = demo.seed_demo(repo, 51, 3)
    newest = list(reversed(ids))
    body = listing(client).json
    assert [p["id"] for p in body["payouts"]] == newest[:50]
    last = listing(client, cursor=body["next_cursor"]).json
    assert last == {"payouts": [repo.get_payout(newest[50])], "next_cursor": None}


def test_next_cursor_null_when_last_page_is_exactly_full(client, repo):
    ids = demo.seed_demo(repo, 4, 2)
    first = listing(client, limit=2).json
    assert first["next_cursor"] is not None
    second = listing(client, limit=2, cursor=first["next_cursor"]).json
    assert second == {"payouts": [repo.get_payout(i) for i in reversed(ids[:2])], "next_cursor": None}


def test_next_cursor_null_when_everything_fits(client, repo):
    ids = demo.seed_demo(repo, 3, 1)
    body = listing(client, limit=3).json
    assert body == {"payouts": [repo.get_payout(i) for i in reversed(ids)], "next_cursor": None}


# -- cursors ------------------------------------------------------------------

@pytest.fixture
def cursor(client, repo):
    """A real next_cursor of the unfiltered listing with limit=2 over 6 payouts."""
    demo.seed_demo(repo, 6, 2)
    return listing(client, limit=2).json["next_cursor"]


def _flip(text, index):
    swap = "A" if text[index] != "A" else "B"
    return text[:index] + swap + text[index + 1:]


@pytest.mark.parametrize("mangle", [
    pytest.param(lambda c: "garbage", id="garbage"),
    pytest.param(lambda c: "!!!!", id="punctuation"),
    pytest.param(lambda c: "", id="empty"),
    pytest.param(lambda c: "é" * 8, id="non-ascii"),
    pytest.param(lambda c: _flip(c, 0), id="flip-first"),
    pytest.param(lambda c: _flip(c, 10), id="flip-in-key"),
    pytest.param(lambda c: _flip(c, len(c) - 6), id="flip-in-mac"),
    pytest.param(lambda c: c[:-4], id="truncated-end"),
    pytest.param(lambda c: c[:20], id="truncated-half"),
    pytest.param(lambda c: c[4:], id="truncated-start"),
    pytest.param(lambda c: c + "AAAA", id="extended"),
    pytest.param(lambda c: c + c, id="doubled"),
])
def test_invalid_cursor(client, cursor, mangle):
    res = listing(client, expect=400, limit=2, cursor=mangle(cursor))
    assert res.json == {"error": "invalid_cursor"}


def test_repeated_cursor_is_invalid(client, cursor):
    res = client.get(f"{PAYOUTS}?limit=2&cursor={cursor}&cursor={cursor}", headers=AUTH, status=400)
    assert res.json == {"error": "invalid_cursor"}


@pytest.mark.parametrize("made_with, used_with", [
    ({}, {"status": "requested"}),
    ({}, {"user_id": "demo-user-0001"}),
    ({"status": "requested"}, {}),
    ({"status": "requested"}, {"status": "processing"}),
    ({"user_id": "demo-user-0001"}, {}),
    ({"user_id": "demo-user-0001"}, {"user_id": "demo-user-0002"}),
    ({"status": "requested", "user_id": "demo-user-0001"}, {"status": "requested"}),
    ({"status": "requested", "user_id": "demo-user-0001"}, {"user_id": "demo-user-0001"}),
])
def test_cursor_reused_with_other_filters_is_invalid(client, repo, made_with, used_with):
    demo.seed_demo(repo, 12, 2)
    cursor = listing(client, limit=2, **made_with).json["next_cursor"]
    assert cursor is not None
    res = listing(client, expect=400, limit=2, cursor=cursor, **used_with)
    assert res.json == {"error": "invalid_cursor"}


def test_cursor_with_other_limit_is_fine(client, repo):
    ids = demo.seed_demo(repo, 6, 2)
    cursor = listing(client, limit=2).json["next_cursor"]
    body = listing(client, limit=4, cursor=cursor).json
    assert [p["id"] for p in body["payouts"]] == list(reversed(ids))[2:]
    assert body["next_cursor"] is None


def test_cursor_of_another_token_is_invalid(client, repo, database_url):
    demo.seed_demo(repo, 6, 2)
    other = create_app(database=database_url, admin_token="another-token")
    try:
        foreign = webtest.TestApp(other, lint=True).get(
            PAYOUTS, {"limit": 2}, headers={"X-Admin-Token": "another-token"}).json["next_cursor"]
    finally:
        other.repository.db.close()
    res = listing(client, expect=400, limit=2, cursor=foreign)
    assert res.json == {"error": "invalid_cursor"}


# -- order ---------------------------------------------------------------------

def test_ties_in_created_at_are_broken_by_id_descending(client, repo):
    stamp = "2026-01-02T03:04:05.123456Z"
    ids = [f"{n:08x}-0000-4000-8000-000000000000" for n in (3, 10, 1, 15, 7)]
    rows = [(i, "tied", "1.00", "USDT", "wallet", "requested", None, None, stamp, stamp) for i in ids]
    rows.append(("ffffffff-0000-4000-8000-000000000000", "tied", "1.00", "USDT", "wallet", "requested",
                 None, None, "2026-01-02T03:04:05.123455Z", "2026-01-02T03:04:05.123455Z"))
    rows.append(("00000000-0000-4000-8000-000000000000", "tied", "1.00", "USDT", "wallet", "requested",
                 None, None, "2026-01-02T03:04:05.123457Z", "2026-01-02T03:04:05.123457Z"))
    with repo.db.transaction() as conn:
        for row in rows:
            conn.execute(repo.db.sql(SQL["insert_payout"]), row)
    expected = ["00000000-0000-4000-8000-000000000000"] + sorted(ids, reverse=True) + [
        "ffffffff-0000-4000-8000-000000000000"]
    assert [p["id"] for p in listing(client).json["payouts"]] == expected
    # The same order one row at a time: the cursor splits ties correctly.
    assert [page[0] for page in page_through(client, 1)] == expected


# -- paging ---------------------------------------------------------------------

def test_paging_10000_visits_every_payout_once_in_order(client, repo):
    ids = demo.seed_demo(repo, 10_000, 10)
    assert len(set(ids)) == 10_000
    seen, keys, cursor = [], [], None
    while True:
        params = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        body = listing(client, **params).json
        assert len(body["payouts"]) == 200
        seen.extend(p["id"] for p in body["payouts"])
        keys.extend((p["created_at"], p["id"]) for p in body["payouts"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 10_000
    assert set(seen) == set(ids)
    assert all(a > b for a, b in zip(keys, keys[1:]))
    assert seen == list(reversed(ids))


def test_paging_while_payouts_are_added_has_no_duplicates_and_no_gaps(client, repo):
    before = demo.seed_demo(repo, 500, 5)
    seen, keys, cursor, added = [], [], None, []
    while True:
        params = {"limit": 50, **({"cursor": cursor} if cursor else {})}
        body = listing(client, **params).json
        seen.extend(p["id"] for p in body["payouts"])
        keys.extend((p["created_at"], p["id"]) for p in body["payouts"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
        for user in ("demo-user-0001", "demo-user-0004", "late-user"):
            repo.credit(user, Decimal("2.00"), "USDT", "late earnings")
            added.append(repo.create_payout(user, Decimal("2.00"), "USDT", "late-wallet")["id"])
    assert len(added) == 27
    assert len(seen) == len(set(seen))
    assert set(before) <= set(seen)
    assert [i for i in seen if i in set(before)] == list(reversed(before))
    assert all(a > b for a, b in zip(keys, keys[1:]))
    # Everything is there afterwards, new payouts first.
    assert sum(page_through(client, 200), []) == list(reversed(added)) + list(reversed(before))


def test_paging_by_user(client, repo):
    ids = demo.seed_demo(repo, 60, 4)
    mine = [i for n, i in enumerate(ids) if n % 4 == 2]  # demo-user-0003
    pages = page_through(client, 4, user_id="demo-user-0003")
    assert [len(p) for p in pages] == [4, 4, 4, 3]
    assert sum(pages, []) == list(reversed(mine))


def test_paging_by_status(client, repo):
    ids = demo.seed_demo(repo, 40, 4)
    moved = ids[::3]
    for payout_id in moved:
        repo.transition(payout_id, "processing")
    pages = page_through(client, 3, status="processing")
    assert sum(pages, []) == list(reversed(moved))
    assert [len(p) for p in pages] == [3, 3, 3, 3, 2]
    requested = sum(page_through(client, 7, status="requested"), [])
    assert requested == [i for i in reversed(ids) if i not in set(moved)]


def test_paging_by_status_and_user(client, repo):
    ids = demo.seed_demo(repo, 48, 2)
    for payout_id in ids[::4]:  # all belong to demo-user-0001
        repo.transition(payout_id, "processing")
    expected = [i for n, i in enumerate(ids) if n % 2 == 0 and n % 4 != 0]
    pages = page_through(client, 5, status="requested", user_id="demo-user-0001")
    assert [len(p) for p in pages] == [5, 5, 2]
    assert sum(pages, []) == list(reversed(expected))
