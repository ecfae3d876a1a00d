"""Money in and payouts asked for: the fields of a credit or a payout
request, checked, and the repository call, one code path for the write API
(``POST .../credits``, ``POST .../payouts``) and the command line
(``credit``, ``create-payout``).

A body is the request's JSON object or the command line's options as one;
a field that is missing or of the wrong type is refused as a bad value
(amounts are text: a JSON number would have been rounded on its way).
"""

from __future__ import annotations

from collections.abc import Mapping

from . import domain
from .repository import Answer, Repository


def credit(repository: Repository, body: Mapping, *, answer: Answer | None = None) -> dict:
    return repository.credit(
        domain.parse_user_id(body.get("user_id")),
        domain.parse_amount(body.get("amount")),
        domain.parse_currency(body.get("currency")),
        domain.parse_note(body.get("note")),
        answer=answer,
    )


def create_payout(repository: Repository, body: Mapping, *, actor: str | None = None,
                  on_behalf_of: str | None = None, answer: Answer | None = None) -> dict:
    """A payout in `requested`; raises WouldOverdraw past the available balance."""
    return repository.create_payout(
        domain.parse_user_id(body.get("user_id")),
        domain.parse_amount(body.get("amount")),
        domain.parse_currency(body.get("currency")),
        domain.parse_destination(body.get("destination")),
        actor=actor, on_behalf_of=on_behalf_of, answer=answer,
    )
