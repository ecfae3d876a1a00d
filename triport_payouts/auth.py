"""Who is calling, and may they: the token of ``X-Admin-Token`` against the
environment's token and the named tokens, then the route's right against
the token's scope.

Each worker keeps a copy of the live named tokens (their hashes, names and
scopes) and reads it again when it is older than REFRESH seconds, so a
revoked token stops working on every worker and host within REFRESH of its
revocation, and a request costs a hash and a dictionary lookup, not a query.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import logging
import threading
import time

from . import domain
from .db import first_line
from .errors import AdminTokenInvalid, AdminTokenUnset, Forbidden
from .tokens import PREFIX, SCOPES, Operator, TokenStore

# Seconds a worker trusts its copy of the live tokens (the README promises
# a revocation is seen everywhere within 5).
REFRESH = 2.0
# last_used_at is written at most this often per token.
TOUCH_EVERY = 60.0

# The environment's token: every right, and the actor is whoever the caller names.
BOOTSTRAP = Operator(None, "admin")
_PREFIX = PREFIX.encode("ascii")

log = logging.getLogger("triport_payouts")


class Authenticator:
    def __init__(self, env_token: str | None, store: TokenStore, clock=time.monotonic):
        self._env = env_token.encode("utf-8") if env_token else None
        self._store = store
        self._clock = clock
        self._live: dict[bytes, Operator] = {}
        self._loaded_at = -REFRESH - 1.0
        self._touched: dict[bytes, float] = {}
        self._lock = threading.Lock()

    def check(self, sent: bytes | None, right: str) -> Operator:
        """The operator behind `sent` (the token's bytes, None when absent)
        if its scope has `right`. Raises AdminTokenUnset when no token is
        configured at all, AdminTokenInvalid for a missing, unknown or
        revoked token, Forbidden outside its scope."""
        if self._env is not None and sent is not None and hmac.compare_digest(sent, self._env):
            return BOOTSTRAP
        operator = self._named(sent)
        if operator is None:
            raise AdminTokenInvalid()
        if right not in SCOPES[operator.scope]:
            raise Forbidden()
        return operator

    def _named(self, sent: bytes | None) -> Operator | None:
        candidate = sent is not None and sent.startswith(_PREFIX)
        if not candidate and self._env is not None:
            return None  # refused without asking the database
        now = self._clock()
        if now - self._loaded_at > REFRESH:
            self._reload(now)
        if self._env is None and not self._live:
            raise AdminTokenUnset()
        if sent is None or not candidate:
            return None
        token_hash = hashlib.sha256(sent).digest()
        operator = self._live.get(token_hash)
        if operator is None:
            # Created since the last reload, perhaps: one indexed lookup.
            operator = self._store.find(token_hash.hex())
            if operator is None:
                return None
            self._live[token_hash] = operator
        if now - self._touched.get(token_hash, -TOUCH_EVERY) >= TOUCH_EVERY:
            self._touch(token_hash, now)
        return operator

    def _reload(self, now: float) -> None:
        live = self._store.live()
        with self._lock:
            self._live, self._loaded_at = live, now

    def _touch(self, token_hash: bytes, now: float) -> None:
        """Records the token's use, at most once every TOUCH_EVERY seconds
        per worker (and, by the statement's guard, per token everywhere).
        Best effort: a request never fails for it."""
        self._touched[token_hash] = now
        try:
            since = domain.utc_in(datetime.timedelta(seconds=-TOUCH_EVERY))
            self._store.touch(token_hash.hex(), domain.utcnow(), since)
        except Exception as exc:  # the request goes on without it
            log.warning("could not record a token's last use: %s", first_line(exc))
