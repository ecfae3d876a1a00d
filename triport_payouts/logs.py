"""Keeping what a client sent out of the logs' reach: a filter for the log
handlers of a served app (see ``gunicorn_conf``).

gunicorn logs the raw request line of a request it refuses, query string
included, and a client may put anything there, the operator token too.
"""

from __future__ import annotations

import logging
import os
import re

_QUERY = re.compile(r"\?[^\s'\"]*")
REDACTED = "<redacted>"


class RedactSecrets(logging.Filter):
    """Replaces query strings and the configured operator token in every record."""

    def __init__(self, name: str = "", token: str | None = None):
        super().__init__(name)
        self._token = token if token is not None else os.environ.get("TRIPORT_ADMIN_TOKEN") or None

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = _QUERY.sub("?" + REDACTED, message)
        if self._token:
            cleaned = cleaned.replace(self._token, REDACTED)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True
