"""Configuration: the only reader of the environment besides ``wsgi.py`` and
``cli.py``, which hand it the environment they were given.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_DATABASE = "triport_payouts.sqlite3"


@dataclass(frozen=True)
class Config:
    database: str = DEFAULT_DATABASE
    # None or "" means unset: every admin request is refused (fail closed).
    admin_token: str | None = None

    @classmethod
    def from_env(cls, environ=None) -> Config:
        environ = os.environ if environ is None else environ
        return cls(
            database=environ.get("TRIPORT_DATABASE") or DEFAULT_DATABASE,
            admin_token=environ.get("TRIPORT_ADMIN_TOKEN") or None,
        )
