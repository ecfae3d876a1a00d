"""Payout ids and the stamps of bulk-made payouts: their exact text, since
listing orders by them and seed-demo makes them by the hundred thousand."""

from __future__ import annotations

import datetime
import re
import time
import uuid

import pytest

from triport_payouts import demo
from triport_payouts import domain

STAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")


def _is_uuid7(text: str) -> bool:
    value = uuid.UUID(text)
    return str(value) == text and value.version == 7 and value.variant == uuid.RFC_4122


def _unix_ms(text: str) -> int:
    return uuid.UUID(text).int >> 80


def test_a_payout_id_is_a_canonical_version_7_uuid_of_now():
    before = time.time_ns() // 1_000_000
    payout_id = domain.new_payout_id()
    after = time.time_ns() // 1_000_000
    assert _is_uuid7(payout_id)
    assert before <= _unix_ms(payout_id) <= after


@pytest.mark.parametrize("count", [0, 1, 2, 3, (1 << 14) + 3])  # past the carry into the version's 12 bits
def test_bulk_ids_are_canonical_version_7_uuids_of_now_in_strictly_increasing_order(count):
    before = time.time_ns() // 1_000_000
    ids = demo.new_payout_ids(count)
    after = time.time_ns() // 1_000_000
    assert len(ids) == count
    assert all(_is_uuid7(payout_id) for payout_id in ids)
    assert all(before <= _unix_ms(payout_id) <= after for payout_id in ids)
    assert all(a < b for a, b in zip(ids, ids[1:]))


def test_bulk_ids_are_the_counter_in_the_top_random_bits_over_a_salt():
    # Each is _uuid7(now, counter << 48 | salt), the one-id function's text.
    ids = demo.new_payout_ids((1 << 15) + 7)
    first = uuid.UUID(ids[0]).int
    unix_ms, salt = first >> 80, first & ((1 << 48) - 1)
    for i in (0, 1, (1 << 14) - 1, 1 << 14, (1 << 14) + 1, 1 << 15, (1 << 15) + 6):
        assert ids[i] == domain._uuid7(unix_ms, (i << 48) | salt)


def test_more_bulk_ids_than_the_counter_can_number_are_refused():
    with pytest.raises(ValueError):
        demo.new_payout_ids(demo.MAX_BULK_IDS + 1)


def _stamp_the_slow_way(i: int, count: int, now: datetime.datetime) -> str:
    utc = now.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return (utc - datetime.timedelta(microseconds=count - 1 - i)).isoformat(timespec="microseconds") + "Z"


def _stamps_the_slow_way(count: int, now: datetime.datetime) -> list[str]:
    return [_stamp_the_slow_way(i, count, now) for i in range(count)]


NOWS = [
    datetime.datetime(2026, 11, 24, 5, 31, 11, 123456, tzinfo=datetime.timezone.utc),
    datetime.datetime(2026, 11, 24, 5, 31, 12, 40, tzinfo=datetime.timezone.utc),  # across a second
    datetime.datetime(2027, 1, 1, 0, 0, 0, 0, tzinfo=datetime.timezone.utc),  # across a year, at .000000
    datetime.datetime(2027, 1, 1, 2, 0, 0, 5, tzinfo=datetime.timezone(datetime.timedelta(hours=2))),  # in UTC
]


@pytest.mark.parametrize("now", NOWS)
@pytest.mark.parametrize("count", [0, 1, 2, 100])
def test_stamps_are_one_microsecond_apart_and_end_now(now, count):
    stamps = demo.utc_stamps(count, now=now)
    assert stamps == _stamps_the_slow_way(count, now)
    assert all(STAMP.fullmatch(stamp) for stamp in stamps)


@pytest.mark.parametrize("now", NOWS)
def test_stamps_over_more_than_a_second_miss_no_microsecond(now):
    count = 1_234_567
    stamps = demo.utc_stamps(count, now=now)
    assert len(stamps) == count
    assert all(a < b for a, b in zip(stamps, stamps[1:]))
    for i in [*range(0, count, 9_973), *range(count - 5, count)]:
        assert stamps[i] == _stamp_the_slow_way(i, count, now)


def test_stamps_default_to_now():
    before = domain.utcnow()
    stamps = demo.utc_stamps(3)
    after = domain.utcnow()
    assert len(stamps) == 3 and stamps[0] < stamps[1] < stamps[2]
    assert before <= stamps[-1] <= after


def test_stamps_refuse_a_time_without_its_zone():
    with pytest.raises(ValueError):
        demo.utc_stamps(3, now=datetime.datetime(2026, 11, 24, 5, 31, 11))
