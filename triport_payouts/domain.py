"""The payout domain: states, the transitions table, domain errors, and the
parsing of the values the domain owns (payout ids, amounts, currencies).

Nothing here knows of HTTP or of SQL. ``errors.py`` maps the exceptions to
HTTP statuses and tags; ``cli.py`` maps them to exit codes.
"""

from __future__ import annotations

import datetime
import decimal
import os
import re
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeGuard

REQUESTED = "requested"
PROCESSING = "processing"
SENT = "sent"
FAILED = "failed"
CANCELLED = "cancelled"

STATUSES = (REQUESTED, PROCESSING, SENT, FAILED, CANCELLED)
TERMINAL = frozenset({SENT, FAILED, CANCELLED})
# The change feed's (and webhooks') event types, by the status each moves a payout to.
EVENT_TYPES = {f"payout.{status}": status for status in STATUSES}

# Payouts in these states still hold their amount back from `available`.
RESERVING = frozenset({REQUESTED, PROCESSING})

# The longest name (a user id, an actor) and reference (a destination, a
# tx_hash) the service stores.
MAX_NAME_LENGTH = 128
MAX_REFERENCE_LENGTH = 256


@dataclass(frozen=True)
class Transition:
    sources: frozenset[str]
    target: str


# The state machine: every status change goes through one of these rows.
TRANSITIONS = {
    "processing": Transition(frozenset({REQUESTED}), PROCESSING),
    "sent": Transition(frozenset({REQUESTED, PROCESSING}), SENT),
    "failed": Transition(frozenset({REQUESTED, PROCESSING}), FAILED),
    "cancel": Transition(frozenset({REQUESTED}), CANCELLED),
}


class DomainError(Exception):
    """The domain refused the operation."""

    def __str__(self) -> str:
        return self.args[0] if self.args else (self.__doc__ or "").strip()


class PayoutNotFound(DomainError):
    """no payout exists with that id"""


class UserNotFound(DomainError):
    """no credits and no payouts exist for that user"""


class PayoutNotActionable(DomainError):
    """the payout's status does not allow that action"""


class WouldOverdraw(DomainError):
    """the amount is more than the user's available balance"""


class InvalidPayoutId(DomainError):
    """a payout id is a hyphenated UUID (8-4-4-4-12 hex digits)"""


class InvalidAmount(DomainError):
    """an amount is a positive decimal such as 12.50 (at most 18 digits each side of the point)"""


class IdempotencyKeyReused(DomainError):
    """that Idempotency-Key was used for a different request"""


class IdempotencyKeyInUse(DomainError):
    """the first request with that Idempotency-Key is still running"""


class InvalidField(DomainError):
    """a field's value is not acceptable"""


class InvalidUserId(InvalidField):
    """a user id is not acceptable"""


class InvalidCurrency(InvalidField):
    """a currency is not acceptable"""


class InvalidDestination(InvalidField):
    """a destination is not acceptable"""


class InvalidNote(InvalidField):
    """a note is text without NUL characters"""


_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_AMOUNT = re.compile(r"(?:0|[1-9][0-9]{0,17})(?:\.[0-9]{1,18})?")
_CURRENCY = re.compile(r"[A-Z][A-Z0-9]{1,9}")

# Wide enough that no sum of amounts of the shape above is ever rounded.
MONEY = decimal.Context(prec=80, traps=[decimal.Inexact, decimal.InvalidOperation])


def parse_payout_id(text: str) -> str:
    """The canonical (lower-case) form of a payout id; raises InvalidPayoutId."""
    if not isinstance(text, str) or not _UUID.fullmatch(text):
        raise InvalidPayoutId()
    return text.lower()


def new_payout_id() -> str:
    """A time-ordered UUID (version 7 of RFC 9562): new rows land at the end
    of every id index instead of at random pages."""
    return _uuid7(time.time_ns() // 1_000_000, int.from_bytes(os.urandom(10), "big"))


def _uuid7(unix_ms: int, random_bits: int) -> str:
    # 48 bits of milliseconds, version 7, 12 + 62 bits of `random_bits`, variant 10.
    rand_a = (random_bits >> 62) & 0xFFF
    rand_b = random_bits & ((1 << 62) - 1)
    value = (unix_ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def parse_amount(text: object) -> Decimal:
    """A positive exact amount; raises InvalidAmount. Floats are refused."""
    if not isinstance(text, str) or not _AMOUNT.fullmatch(text):
        raise InvalidAmount()
    amount = Decimal(text)
    if amount <= 0:
        raise InvalidAmount()
    return amount


def parse_currency(text: object) -> str:
    if not isinstance(text, str) or not _CURRENCY.fullmatch(text):
        raise InvalidCurrency("a currency is 2 to 10 upper-case letters or digits, starting with a letter (USDT)")
    return text


def is_clean_text(text: object, max_length: int) -> TypeGuard[str]:
    """Printable, non-blank, at most max_length characters: what the database stores as names."""
    return isinstance(text, str) and 0 < len(text) <= max_length and text.isprintable() and not text.isspace()


def storable_text(value: object) -> TypeGuard[str]:
    """A string both databases store as given: UTF-8 encodable, no NUL."""
    if not isinstance(value, str) or "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_user_id(text: object) -> str:
    if not is_clean_text(text, MAX_NAME_LENGTH) or "/" in text:
        raise InvalidUserId(f"a user id is 1 to {MAX_NAME_LENGTH} printable characters, without '/'")
    return text


def parse_destination(text: object) -> str:
    if not is_clean_text(text, MAX_REFERENCE_LENGTH):
        raise InvalidDestination(f"a destination is 1 to {MAX_REFERENCE_LENGTH} printable characters")
    return text


def parse_note(text: object) -> str | None:
    if text is not None and not storable_text(text):
        raise InvalidNote()
    return text


def format_amount(amount) -> str:
    """Exact fixed-point text: str() would write 0.00000001 as 1E-8. Text is
    returned as is: every amount the database holds as text was written here."""
    return amount if isinstance(amount, str) else format(amount, "f")


CREDIT = "credit"


@dataclass
class Balance:
    """One user's money in one currency: ``available = earned - reserved - sent``.

    Earned is the credits; reserved the payouts still requested or processing;
    sent the sent ones. Failed and cancelled payouts count nowhere: their
    amount is available again.
    """

    earned: Decimal = Decimal(0)
    reserved: Decimal = Decimal(0)
    sent: Decimal = Decimal(0)

    def add(self, kind: str, amount: Decimal) -> None:
        """Counts an amount of a kind: CREDIT, or the status of a payout."""
        if kind == CREDIT:
            self.earned = MONEY.add(self.earned, amount)
        elif kind in RESERVING:
            self.reserved = MONEY.add(self.reserved, amount)
        elif kind == SENT:
            self.sent = MONEY.add(self.sent, amount)

    @property
    def available(self) -> Decimal:
        return MONEY.subtract(MONEY.subtract(self.earned, self.reserved), self.sent)


TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def utcnow() -> str:
    """Now as RFC 3339 UTC with exactly six fractional digits: sorts as text."""
    # isoformat is several times faster than strftime; "+00:00" becomes "Z".
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def utc_in(delta: datetime.timedelta) -> str:
    """The time `delta` from now (negative: ago), in utcnow's form."""
    return format_time(datetime.datetime.now(datetime.UTC) + delta)


def format_time(moment: datetime.datetime) -> str:
    """An aware time in utcnow's form (zero-padded years, unlike strftime's %Y)."""
    return moment.astimezone(datetime.UTC).isoformat(timespec="microseconds")[:-6] + "Z"


_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?([Zz]|[+-]\d\d:\d\d)", re.ASCII)


def parse_time(text: str, *, round_up: bool = False) -> str:
    """An RFC 3339 time with its offset (``Z`` or ``+hh:mm``) in utcnow's
    form; raises InvalidField. Stored times are whole microseconds, so a
    finer time is cut to the microsecond, or with `round_up` (an exclusive
    upper bound) raised to the next one: ``t < bound`` selects the same
    stored times either way."""
    match = _RFC3339.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise InvalidField(f"not an RFC 3339 time with an offset: {text!r}")
    seconds, fraction, offset = match.groups()
    fraction = fraction or ""
    try:
        moment = datetime.datetime.fromisoformat(
            f"{seconds.upper()}.{fraction[:6].ljust(6, '0')}{'+00:00' if offset in 'Zz' else offset}")
        if round_up and fraction[6:].strip("0"):
            moment += datetime.timedelta(microseconds=1)
        return format_time(moment)
    except (ValueError, OverflowError):
        raise InvalidField(f"not an RFC 3339 time with an offset: {text!r}") from None
