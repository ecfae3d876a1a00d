"""Named operator tokens: each person or system its own token, with a scope,
revoked alone (``triport-payouts token ...``).

A token is ``tpk_`` and 43 characters of base64url (32 random bytes); the
database keeps only its SHA-256, so a copy of the database opens nothing,
and a lookup compares hashes, never the secret itself.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import NamedTuple

from . import domain
from .db import Database

PREFIX = "tpk_"

# What each scope may do: a route names the one right it needs.
SCOPES = {
    "read": frozenset({"read"}),
    "operator": frozenset({"read", "operator"}),
    "system": frozenset({"read", "system"}),
    "admin": frozenset({"read", "operator", "system", "admin"}),
}

# What copy-data moves: every token, revoked ones too (their names are in
# the events), by hash: a token works the same on the new database.
COPIED_COLUMNS = ("name", "scope", "token_hash", "created_at", "last_used_at", "revoked_at")

SQL = {
    "copy": f"SELECT {', '.join(COPIED_COLUMNS)} FROM operator_tokens ORDER BY id",
    "any": "SELECT 1 FROM operator_tokens LIMIT 1",
    "create": "INSERT INTO operator_tokens (name, scope, token_hash, created_at) VALUES (?, ?, ?, ?)",
    "live": "SELECT token_hash, name, scope FROM operator_tokens WHERE revoked_at IS NULL",
    "by_hash": "SELECT token_hash, name, scope FROM operator_tokens WHERE token_hash = ? AND revoked_at IS NULL",
    "list": (
        "SELECT name, scope, created_at, last_used_at FROM operator_tokens"
        " WHERE revoked_at IS NULL ORDER BY name"
    ),
    "name_taken": "SELECT 1 FROM operator_tokens WHERE name = ? AND revoked_at IS NULL",
    "revoke": "UPDATE operator_tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
    # At most once a minute per token, across every worker and host: a
    # worker that lost the race to another's write changes nothing.
    "touch": (
        "UPDATE operator_tokens SET last_used_at = ?"
        " WHERE token_hash = ? AND (last_used_at IS NULL OR last_used_at < ?)"
    ),
}


class Operator(NamedTuple):
    """Who is calling: a named token's name and scope, or (name None) the
    environment's token, with every right and an actor the caller names."""

    name: str | None
    scope: str


class InvalidTokenInput(ValueError):
    """A name or scope the command line refuses (exit 2)."""


class NameTaken(domain.DomainError):
    """a live token already has that name (revoke it first)"""


class NoSuchToken(domain.DomainError):
    """no live token has that name"""


def new_secret() -> str:
    return PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii").rstrip("=")


def digest(token: bytes) -> str:
    """The stored form of a token: its SHA-256, in hex."""
    return hashlib.sha256(token).hexdigest()


def check_name(name: str) -> str:
    if not domain.is_clean_text(name, domain.MAX_NAME_LENGTH):
        raise InvalidTokenInput(f"a token name is 1 to {domain.MAX_NAME_LENGTH} printable characters")
    return name


def check_scope(scope: str) -> str:
    if scope not in SCOPES:
        raise InvalidTokenInput(f"a scope is one of {', '.join(SCOPES)}")
    return scope


class TokenStore:
    """The operator_tokens table."""

    def __init__(self, db: Database):
        self.db = db
        self._sql = {name: db.sql(text) for name, text in SQL.items()}

    def create(self, name: str, scope: str) -> dict:
        """A new token: its one showing, with the secret."""
        token = {"name": check_name(name), "scope": check_scope(scope),
                 "token": new_secret(), "created_at": domain.utcnow()}
        with self.db.transaction() as conn:
            # The unique index refuses a second live name too; asking first
            # gives the command line a sentence instead of a constraint name.
            if conn.execute(self._sql["name_taken"], (name,)).fetchone() is not None:
                raise NameTaken()
            conn.execute(self._sql["create"], (name, scope, digest(token["token"].encode("ascii")),
                                               token["created_at"]))
        return token

    def list(self) -> list[dict]:
        rows = self.db.connection().execute(self._sql["list"]).fetchall()
        return [dict(zip(("name", "scope", "created_at", "last_used_at"), row)) for row in rows]

    def revoke(self, name: str) -> None:
        with self.db.transaction() as conn:
            if conn.execute(self._sql["revoke"], (domain.utcnow(), name)).rowcount != 1:
                raise NoSuchToken()

    def live(self) -> dict[bytes, Operator]:
        """Every live token: {its SHA-256 as bytes: Operator} (bytes: a
        request's digest() is cheaper than its hexdigest())."""
        rows = self.db.connection().execute(self._sql["live"]).fetchall()
        return {bytes.fromhex(token_hash): Operator(name, scope) for token_hash, name, scope in rows}

    def find(self, token_hash: str) -> Operator | None:
        row = self.db.connection().execute(self._sql["by_hash"], (token_hash,)).fetchone()
        return None if row is None else Operator(row[1], row[2])

    def has_tokens(self, conn) -> bool:
        return conn.execute(self._sql["any"]).fetchone() is not None

    def copied(self, snapshot, batch: int):
        """("operator_tokens", COPIED_COLUMNS, rows) for each list of at most
        `batch` rows, read in `snapshot` (Repository.snapshot)."""
        for rows in snapshot.rows(self._sql["copy"], batch):
            yield "operator_tokens", COPIED_COLUMNS, rows

    def touch(self, token_hash: str, now: str, unless_since: str) -> None:
        with self.db.transaction() as conn:
            conn.execute(self._sql["touch"], (now, token_hash, unless_since))
