"""``seed-demo``: demo users with earnings and many requested payouts, made
in one transaction of bulk inserts. This is how a benchmark database is made,
so ids, times and amounts are made in bulk, never row by row.
"""

from __future__ import annotations

import datetime
import os
import random
import time

from . import domain
from .repository import Repository

# Bulk ids count up in 26 of the random bits: past this they would repeat.
MAX_BULK_IDS = 1 << 26
CURRENCY = "USDT"


def seed_demo(repo: Repository, payouts: int, users: int, rng: random.Random | None = None) -> list[str]:
    """Demo users credited with enough to cover `payouts` new requested
    payouts (and 1,000.00 more each); returns the payouts' ids, oldest first."""
    rng = rng or random.Random()
    user_ids = [f"demo-user-{i:04d}" for i in range(1, users + 1)]
    cents = rng.choices(range(100, 50_000), k=payouts)  # uniform, as randrange, a few times faster
    owners = [user_ids[i % users] for i in range(payouts)]
    owed = dict.fromkeys(user_ids, 0)
    for owner, amount in zip(owners, cents):
        owed[owner] += amount
    stamps = utc_stamps(payouts)
    ids = new_payout_ids(payouts)
    payout_rows = [
        (pid, owner, _cents(amount), CURRENCY, f"demo-wallet-{owner[-4:]}", domain.REQUESTED,
         None, None, stamp, stamp)
        for pid, owner, amount, stamp in zip(ids, owners, cents, stamps)
    ]
    now = domain.utcnow()
    credit_rows = [
        (domain.new_payout_id(), user, _cents(owed[user] + 100_000), CURRENCY, "demo earnings", now)
        for user in user_ids
    ]
    repo.bulk_load(credits=credit_rows, payouts=payout_rows)
    return ids


def new_payout_ids(count: int) -> list[str]:
    """`count` version 7 UUIDs in increasing order: a counter fills the top
    of the random bits, above 48 bits of salt; each is what
    domain.new_payout_id would make of (now, counter << 48 | salt), written
    from its parts (seed-demo makes them by the hundred thousand)."""
    if count > MAX_BULK_IDS:
        raise ValueError(f"at most {MAX_BULK_IDS} ids at once: the counter has 26 bits")
    now_ms = time.time_ns() // 1_000_000
    salt = int.from_bytes(os.urandom(6), "big")
    # The counter's top 12 bits follow the version digit; its low 14 the variant bits.
    millis = f"{now_ms & ((1 << 48) - 1):012x}"
    head, tail = f"{millis[:8]}-{millis[8:]}-7", f"-{salt:012x}"
    return [f"{head}{(i >> 14) & 0xFFF:03x}-{0x8000 | (i & 0x3FFF):04x}{tail}" for i in range(count)]


def utc_stamps(count: int, now: datetime.datetime | None = None) -> list[str]:
    """`count` distinct increasing times in domain.utcnow's form, one
    microsecond apart, the last one `now` (an aware time; by default the
    current one)."""
    if now is None:
        now = datetime.datetime.now(datetime.UTC)
    elif now.utcoffset() is None:
        raise ValueError("now must be an aware time")
    last = (now - _EPOCH) // _MICROSECOND
    first = last - count + 1
    stamps: list[str] = []
    # The text up to the fraction changes once a second: formatted once per second.
    for second in range(first // 1_000_000, last // 1_000_000 + 1) if count > 0 else ():
        prefix = (_EPOCH + datetime.timedelta(seconds=second)).strftime("%Y-%m-%dT%H:%M:%S.")
        start, stop = max(first, second * 1_000_000), min(last, second * 1_000_000 + 999_999)
        stamps.extend(f"{prefix}{micro:06d}Z" for micro in range(start % 1_000_000, stop % 1_000_000 + 1))
    return stamps


_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_MICROSECOND = datetime.timedelta(microseconds=1)


def _cents(value: int) -> str:
    return f"{value // 100}.{value % 100:02d}"
