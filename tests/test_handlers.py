"""Handlers called as plain functions, without WSGI: the services and the
values a route's reader took from the request go in, a payload comes out."""

from __future__ import annotations

import json

import pytest
from helpers import UNKNOWN_ID, transitions

from triport_payouts import domain, errors, handlers, http
from triport_payouts.inputs import Action
from triport_payouts.metrics import Metrics
from triport_payouts.pagination import Cursors


@pytest.fixture
def services(repo):
    return handlers.Services(repo, Cursors("secret"), Metrics(repo.db))


def action(payout_id, body=None, key=None, actor="maria") -> Action:
    raw = json.dumps(body).encode() if body is not None else b""
    return Action(payout_id, actor, key, raw, body or {})


def test_mark_failed_moves_the_payout_and_records_the_actor(services, repo, make_payout):
    payout_id = make_payout()
    assert handlers.mark_failed(services, action(payout_id, {"reason": "rejected"})) is http.OK
    [event] = transitions(repo, payout_id)
    assert (event["to_status"], event["reason"], event["actor"]) == ("failed", "rejected", "maria")


def test_mark_sent_checks_its_field_before_the_repository(services):
    with pytest.raises(errors.InvalidTxHash):
        handlers.mark_sent(services, action(UNKNOWN_ID, {"tx_hash": ""}))


def test_an_action_on_an_unknown_payout_is_the_domain_refusal(services):
    with pytest.raises(domain.PayoutNotFound):
        handlers.mark_processing(services, action(UNKNOWN_ID))


def test_an_action_with_a_key_answers_a_retry_with_the_stored_answer(services, repo, make_payout):
    payout_id = make_payout()
    first = handlers.mark_processing(services, action(payout_id, key="k-1"))
    again = handlers.mark_processing(services, action(payout_id, key="k-1"))
    assert (first.status, first.body) == (again.status, again.body) == (200, http.OK.body)
    assert len(transitions(repo, payout_id)) == 1


@pytest.mark.parametrize(("query", "error"), [
    ({"limit": ["0"]}, errors.InvalidLimit),
    ({"status": ["paid"]}, errors.InvalidStatus),
    ({"status": ["sent", "failed"]}, errors.InvalidStatus),
    ({"cursor": ["forged"]}, errors.InvalidCursor),
])
def test_list_payouts_refuses_a_bad_query(services, query, error):
    with pytest.raises(error):
        handlers.list_payouts(services, query)


def test_list_payouts_answers_a_page(services, make_payout):
    payout_id = make_payout()
    page = json.loads(handlers.list_payouts(services, {"limit": ["1"]}).body)
    assert [p["id"] for p in page["payouts"]] == [payout_id]
    assert page["next_cursor"] is None
