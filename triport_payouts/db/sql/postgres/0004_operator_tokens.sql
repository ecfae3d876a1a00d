-- Schema version 4 (PostgreSQL): named operator tokens, and who an event was
-- recorded on behalf of.
--
-- operator_tokens: one row per token ever created. Only the SHA-256 of the
-- token is kept (a token is 32 random bytes, so a plain hash is enough: no
-- one can guess one to match). A revoked row stays, with revoked_at, so the
-- name may be reused by a new row; at most one live row per name.
-- last_used_at is written at most once a minute per token.
-- payout_events.on_behalf_of: the X-Admin-Actor sent with a named token (a
-- bot acting for a person); actor is then the token's name.

CREATE TABLE operator_tokens (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL,
    scope         text NOT NULL CHECK (scope IN ('read', 'operator', 'system', 'admin')),
    token_hash    text COLLATE "C" NOT NULL,
    created_at    text NOT NULL,
    last_used_at  text,
    revoked_at    text
);
CREATE UNIQUE INDEX operator_tokens_by_hash ON operator_tokens (token_hash);
CREATE UNIQUE INDEX operator_tokens_live_name ON operator_tokens (name) WHERE revoked_at IS NULL;

ALTER TABLE payout_events ADD COLUMN on_behalf_of text;
