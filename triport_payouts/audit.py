"""The integrity audit: reads the whole database in one consistent snapshot,
streaming, and names every broken invariant.

- each payout's events replay, from its creation (nothing -> `requested`),
  through the transitions table to its status;
- a settled payout has exactly one terminal event; a sent one has a tx_hash;
- every amount is positive, and no (user, currency) balance is negative;
- no event points at a missing payout.

It also warns of the payouts stalled in `processing` (claimed, and not
settled since): not corruption, and never failed or cancelled here, since
their money may have moved already; someone must look at each.
"""

from __future__ import annotations

import datetime
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from . import domain
from .repository import PageFilters, Repository

# Every (from, to) pair the transitions table allows, and the creation (from nothing).
_MOVES: set[tuple[str | None, str]] = {
    (source, rule.target) for rule in domain.TRANSITIONS.values() for source in rule.sources
}
_MOVES.add((None, domain.REQUESTED))


@dataclass
class Report:
    payouts: int = 0
    events: int = 0
    credits: int = 0
    violations: list[str] = field(default_factory=list)
    stalled: list[dict] = field(default_factory=list)  # warnings: payouts in processing too long


def audit(repo: Repository, report: Report | None = None, *,
          stalled_after: datetime.timedelta | None = None) -> Report:
    """Checks every invariant and, given `stalled_after`, looks for payouts in
    processing for longer; returns the counts, the violations and the stalled."""
    report = report or Report()
    if stalled_after is not None:
        report.stalled.extend(stalled(repo, domain.utc_in(-stalled_after)))
    balances: dict[tuple[str, str], domain.Balance] = {}
    with repo.snapshot() as snapshot:
        for user_id, currency, amount in snapshot.credits():
            report.credits += 1
            _balance(balances, user_id, currency).add(domain.CREDIT, _amount(amount, f"credit of {user_id}", report))
        groups = itertools.groupby(snapshot.events(), key=lambda row: row[0])
        pending = next(groups, None)
        for payout_id, user_id, amount, currency, status, tx_hash in snapshot.payouts():
            report.payouts += 1
            while pending is not None and pending[0] < payout_id:
                report.events += _orphans(pending, report)
                pending = next(groups, None)
            events = []
            if pending is not None and pending[0] == payout_id:
                events = [(frm, to) for _, frm, to in pending[1]]
                pending = next(groups, None)
            report.events += len(events)
            _check_payout(payout_id, status, tx_hash, events, report)
            _balance(balances, user_id, currency).add(status, _amount(amount, f"payout {payout_id}", report))
        while pending is not None:
            report.events += _orphans(pending, report)
            pending = next(groups, None)
    for (user_id, currency), balance in sorted(balances.items()):
        if balance.available < 0:
            amounts = {name: domain.format_amount(getattr(balance, name))
                       for name in ("available", "earned", "reserved", "sent")}
            report.violations.append(
                f"user {user_id} {currency}: available is {amounts['available']}"
                f" (earned {amounts['earned']}, reserved {amounts['reserved']}, sent {amounts['sent']})"
            )
    return report


def stalled(repo: Repository, changed_before: str) -> Iterator[dict]:
    """The payouts in processing whose last change is before `changed_before`,
    stuck longest first: the list's stalled query, page by page."""
    filters = PageFilters(status=domain.PROCESSING, updated_before=changed_before, oldest=True)
    after = None
    while True:
        page, after = repo.payout_page(filters, limit=200, after=after)
        yield from (json.loads(text) for text in page)
        if after is None:
            return


def _check_payout(payout_id, status, tx_hash, events, report: Report) -> None:
    state = None  # before its creation event
    for frm, to in events:
        if frm != state or (frm, to) not in _MOVES:
            report.violations.append(
                f"payout {payout_id}: event {frm or 'nothing'} -> {to} cannot follow {state or 'nothing'}"
            )
            break
        state = to
    else:
        if state != status:
            report.violations.append(
                f"payout {payout_id}: events replay to {state or 'nothing'}, status is {status}")
    terminal = sum(1 for _, to in events if to in domain.TERMINAL)
    if status in domain.TERMINAL and terminal != 1:
        report.violations.append(f"payout {payout_id}: {status} with {terminal} terminal events")
    if status == domain.SENT and not tx_hash:
        report.violations.append(f"payout {payout_id}: sent without a tx_hash")


def _orphans(group, report: Report) -> int:
    count = sum(1 for _ in group[1])
    report.violations.append(f"payout {group[0]}: {count} events, but no such payout")
    return count


def _amount(value, what: str, report: Report) -> Decimal:
    try:
        amount = Decimal(value)
        positive = amount.is_finite() and amount > 0
    except (InvalidOperation, TypeError, ValueError):
        positive = False
    if not positive:
        report.violations.append(f"{what}: amount {value} is not a positive decimal")
        return Decimal(0)
    return amount


def _balance(balances, user_id: str, currency: str) -> domain.Balance:
    balance = balances.get((user_id, currency))
    if balance is None:
        balance = balances[user_id, currency] = domain.Balance()
    return balance
