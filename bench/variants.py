"""Bench-only builds of the app, to measure what one of its features costs
by its absence, side by side with the app itself. Never served otherwise:
the app always does what these leave out.

- ``without_creation_event``: the app as ``triport_payouts.wsgi`` builds
  it, except that creating a payout does not write the payout's creation
  event (issue 17: the creation event may cost at most 5% of the create
  path). Only the repository's create_payout changes: for the length of
  that call, the statement it inserts the event with is one that writes
  nothing (a SELECT of its parameters that returns no row), so the
  request's code path is otherwise the app's own, down to the tuple of the
  event's values; what the variant saves is the row, its index entries and
  the schema's triggers on it. A status change still records its event.

    gunicorn --config python:triport_payouts.gunicorn_conf bench.variants:without_creation_event
"""

from __future__ import annotations

import dataclasses
import os

from triport_payouts.app import App
from triport_payouts.config import Config
from triport_payouts.repository import EVENT_COLUMNS, Repository

# Takes the event's parameters and writes nothing.
NO_EVENT = f"SELECT {', '.join('?' * len(EVENT_COLUMNS))} WHERE 0"


class WithoutCreationEvent(Repository):
    def __init__(self, db):
        super().__init__(db)
        self._without_event = {**self._sql, "insert_event": self._dialect_sql(NO_EVENT)}

    def create_payout(self, *args, **kwargs) -> dict:
        statements, self._sql = self._sql, self._without_event
        try:
            return super().create_payout(*args, **kwargs)
        finally:
            self._sql = statements


def app_without_creation_event(config: Config) -> App:
    app = App(config)
    app.repository = WithoutCreationEvent(app.repository.db)
    app.services = dataclasses.replace(app.services, repository=app.repository)
    return app


without_creation_event = app_without_creation_event(Config.from_env(os.environ))
