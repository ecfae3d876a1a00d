-- triport_payouts, schema version 1 (SQLite): the first release's data model.
-- IF NOT EXISTS throughout: on a database that release made (which has no
-- schema_migrations table) it changes nothing, and migrate only records it.
-- Amounts are exact decimal text (never REAL); times are RFC 3339 UTC text with
-- six fractional digits, so they sort as text.

CREATE TABLE IF NOT EXISTS credits (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL CHECK (length(user_id) BETWEEN 1 AND 128),
    currency    TEXT NOT NULL CHECK (length(currency) BETWEEN 2 AND 10),
    amount      TEXT NOT NULL CHECK (
                    amount GLOB '[0-9]*' AND amount NOT GLOB '*[^0-9.]*'
                    AND amount NOT GLOB '*.*.*' AND CAST(amount AS REAL) > 0),
    note        TEXT,
    created_at  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS credits_by_user ON credits (user_id, currency);

CREATE TABLE IF NOT EXISTS payouts (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL CHECK (length(user_id) BETWEEN 1 AND 128),
    amount      TEXT NOT NULL CHECK (
                    amount GLOB '[0-9]*' AND amount NOT GLOB '*[^0-9.]*'
                    AND amount NOT GLOB '*.*.*' AND CAST(amount AS REAL) > 0),
    currency    TEXT NOT NULL CHECK (length(currency) BETWEEN 2 AND 10),
    destination TEXT NOT NULL CHECK (length(destination) BETWEEN 1 AND 256),
    status      TEXT NOT NULL CHECK (
                    status IN ('requested', 'processing', 'sent', 'failed', 'cancelled')),
    reason      TEXT,
    tx_hash     TEXT CHECK (tx_hash IS NULL OR length(tx_hash) BETWEEN 1 AND 256),
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    CHECK (status <> 'sent' OR tx_hash IS NOT NULL)
) WITHOUT ROWID;
-- Listing is newest first, optionally by status or by user: one index each,
-- ending in (created_at, id) so a keyset page is one index range.
CREATE INDEX IF NOT EXISTS payouts_newest ON payouts (created_at, id);
CREATE INDEX IF NOT EXISTS payouts_by_status ON payouts (status, created_at, id);
CREATE INDEX IF NOT EXISTS payouts_by_user ON payouts (user_id, created_at, id);

-- A settled payout never changes again, whatever the code above says.
CREATE TRIGGER IF NOT EXISTS payouts_terminal_is_final
BEFORE UPDATE ON payouts
WHEN OLD.status IN ('sent', 'failed', 'cancelled')
BEGIN
    SELECT RAISE(ABORT, 'payout is settled');
END;

CREATE TABLE IF NOT EXISTS payout_events (
    id          INTEGER PRIMARY KEY,
    payout_id   TEXT NOT NULL REFERENCES payouts (id),
    from_status TEXT NOT NULL CHECK (
                    from_status IN ('requested', 'processing', 'sent', 'failed', 'cancelled')),
    to_status   TEXT NOT NULL CHECK (
                    to_status IN ('requested', 'processing', 'sent', 'failed', 'cancelled')),
    reason      TEXT,
    tx_hash     TEXT,
    actor       TEXT,
    at          TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS payout_events_by_payout ON payout_events (payout_id, id);

-- The audit trail is append-only.
CREATE TRIGGER IF NOT EXISTS payout_events_no_update
BEFORE UPDATE ON payout_events
BEGIN
    SELECT RAISE(ABORT, 'payout events are append-only');
END;
CREATE TRIGGER IF NOT EXISTS payout_events_no_delete
BEFORE DELETE ON payout_events
BEGIN
    SELECT RAISE(ABORT, 'payout events are append-only');
END;

-- Safe retries: the first answer to a request with an Idempotency-Key, kept
-- at least 24 hours (prune-idempotency-keys removes older ones). status is
-- NULL while the first request runs.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    key         TEXT PRIMARY KEY CHECK (length(key) BETWEEN 1 AND 255),
    fingerprint TEXT NOT NULL,
    status      INTEGER,
    body        BLOB,
    created_at  TEXT NOT NULL,
    claimed_at  TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idempotency_keys_by_age ON idempotency_keys (created_at);
