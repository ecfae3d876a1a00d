"""``GET /metrics``: the Prometheus text format (0.0.4), computed from the
database at each scrape, so every worker and every host tells the same
truth and nothing is lost on a restart.

Every statement of a scrape is here. None reads every payout or every event:
the counts and sums come from the running totals the schema's triggers keep
(``db/sql/<dialect>/0005_metrics_totals.sql``), the oldest payouts from the
first entry of an index, and the webhook figures from the backlog only
(the outbox, and the pending and failed ranges of the deliveries' index).
"""

from __future__ import annotations

import datetime
from decimal import Decimal

from . import domain
from .db import Database

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# The statuses whose oldest payout is a metric: the ones waiting for an operator.
WAITING = (domain.REQUESTED, domain.PROCESSING)

# The exact sums of amounts per (status, currency): PostgreSQL sums NUMERIC,
# SQLite keeps four 9-digit integer parts that amount_from_parts() carries.
AMOUNTS = {
    "sqlite": (
        "SELECT status, currency, sum(payouts), sum(units_hi), sum(units_lo), sum(frac_hi), sum(frac_lo)"
        " FROM payout_totals GROUP BY status, currency"
    ),
    "postgres": "SELECT status, currency, sum(payouts), sum(amount) FROM payout_totals GROUP BY status, currency",
}

SQL = {
    "events": "SELECT to_status, sum(events) FROM payout_event_totals GROUP BY to_status",
    # The first entry of payouts_by_status (status, created_at, id) in that status.
    "oldest": "SELECT created_at FROM payouts WHERE status = ? ORDER BY created_at, id LIMIT 1",
    # Pending: waiting in the outbox or in webhook_deliveries (a range of
    # webhook_deliveries_due). Both are the backlog, small when deliveries flow.
    "pending": (
        "SELECT (SELECT count(*) FROM webhook_outbox)"
        " + (SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'),"
        " (SELECT min(created_at) FROM webhook_outbox),"
        " (SELECT min(created_at) FROM webhook_deliveries WHERE status = 'pending')"
    ),
    "failed": "SELECT count(*) FROM webhook_deliveries WHERE status = 'failed'",
}

_PART = 10**9
_FRACTION = 10**18


def amount_from_parts(units_hi: int, units_lo: int, frac_hi: int, frac_lo: int) -> Decimal:
    """The exact sum SQLite's payout_totals keeps in parts (see its schema step)."""
    fraction = frac_hi * _PART + frac_lo
    units = units_hi * _PART + units_lo + fraction // _FRACTION
    return domain.MONEY.add(Decimal(units), Decimal(fraction % _FRACTION).scaleb(-18, domain.MONEY))


def events_by_type(payouts: dict[str, int], counted: dict[str, int]) -> dict[str, int]:
    """Events recorded, by type, from the payouts by status and the events the
    schema counts (only those into processing): every payout has one creation
    event, and one into the terminal status it is in, which it never leaves."""
    events = {status: payouts[status] for status in domain.TERMINAL}
    events[domain.REQUESTED] = sum(payouts.values())
    events[domain.PROCESSING] = int(counted.get(domain.PROCESSING, 0))
    return {status: events[status] for status in domain.STATUSES}


def timestamp(text: str) -> float:
    """Seconds since the epoch of a time as the service writes them."""
    return datetime.datetime.strptime(text, domain.TIME_FORMAT).replace(tzinfo=datetime.UTC).timestamp()


class Metrics:
    """The scrape of one database."""

    def __init__(self, db: Database):
        self.db = db
        self._sql = {name: db.sql(text) for name, text in SQL.items()}
        self._amounts = db.sql(AMOUNTS[db.dialect])

    def render(self) -> str:
        """Every metric, in the text format."""
        conn = self.db.connection()
        return "".join((*self._payouts(conn), *self._webhooks(conn)))

    def _payouts(self, conn) -> list[str]:
        counts = dict.fromkeys(domain.STATUSES, 0)
        amounts: dict[tuple[str, str], Decimal] = {}
        for status, currency, payouts, *sums in conn.execute(self._amounts).fetchall():
            counts[status] += int(payouts)
            amounts[status, currency] = amount_from_parts(*sums) if len(sums) == 4 else Decimal(sums[0])
        currencies = sorted({currency for _, currency in amounts})
        events = events_by_type(counts, dict(conn.execute(self._sql["events"]).fetchall()))
        oldest = {status: conn.execute(self._sql["oldest"], (status,)).fetchone() for status in WAITING}
        return [
            family("triport_payouts", "gauge", "Payouts by current status.",
                   [({"status": status}, count) for status, count in counts.items()]),
            family("triport_payouts_amount", "gauge",
                   "The sum of the amounts of the payouts in each status, by currency (exact, in units of"
                   " the currency).",
                   [({"status": status, "currency": currency}, amounts.get((status, currency), 0))
                    for currency in currencies for status in domain.STATUSES]),
            family("triport_payout_oldest_created_timestamp_seconds", "gauge",
                   "When the oldest payout still in this status was created (absent when there is none).",
                   [({"status": status}, timestamp(row[0])) for status, row in oldest.items() if row is not None]),
            family("triport_payout_events_total", "counter", "Payout events recorded, by type.",
                   [({"type": f"payout.{status}"}, count) for status, count in events.items()]),
        ]

    def _webhooks(self, conn) -> list[str]:
        pending, *queued_at = conn.execute(self._sql["pending"]).fetchone()
        failed = conn.execute(self._sql["failed"]).fetchone()[0]
        oldest = min((at for at in queued_at if at is not None), default=None)
        return [
            family("triport_webhook_deliveries_pending", "gauge",
                   "Webhook deliveries neither delivered nor failed for good yet.", [({}, int(pending))]),
            family("triport_webhook_deliveries_failed_total", "counter",
                   "Webhook deliveries that failed for good (every attempt of the retry schedule failed).",
                   [({}, int(failed))]),
            family("triport_webhook_oldest_pending_timestamp_seconds", "gauge",
                   "When the oldest pending webhook delivery was queued (absent when there is none).",
                   [({}, timestamp(oldest))] if oldest is not None else []),
        ]


def family(name: str, kind: str, help_text: str, samples: list[tuple[dict[str, str], object]]) -> str:
    """One metric family: its HELP and TYPE lines, then a line per sample."""
    lines = [f"# HELP {name} {help_text}\n", f"# TYPE {name} {kind}\n"]
    for labels, value in samples:
        label_text = ",".join(f'{key}="{_escape(text)}"' for key, text in labels.items())
        lines.append(f"{name}{{{label_text}}} {_number(value)}\n" if labels else f"{name} {_number(value)}\n")
    return "".join(lines)


def _number(value) -> str:
    # A Decimal as its exact text (Prometheus reads it as a float); an int as is.
    if isinstance(value, Decimal):
        return domain.format_amount(value.normalize(domain.MONEY)) if value else "0"
    return repr(value)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
