-- triport_payouts, schema version 1 (PostgreSQL): the first release's data
-- model. IF NOT EXISTS throughout: on a database that release made (which has
-- no schema_migrations table) it changes nothing, and migrate only records it.
-- Amounts are NUMERIC (exact, never float); ids and times are text in the "C"
-- collation: RFC 3339 UTC with six fractional digits sorts as bytes, the same
-- order as on SQLite.

CREATE TABLE IF NOT EXISTS credits (
    id          text COLLATE "C" PRIMARY KEY,
    user_id     text NOT NULL CHECK (length(user_id) BETWEEN 1 AND 128),
    currency    text NOT NULL CHECK (length(currency) BETWEEN 2 AND 10),
    amount      numeric NOT NULL CHECK (amount > 0),
    note        text,
    created_at  text COLLATE "C" NOT NULL
);
CREATE INDEX IF NOT EXISTS credits_by_user ON credits (user_id, currency);

CREATE TABLE IF NOT EXISTS payouts (
    id          text COLLATE "C" PRIMARY KEY,
    user_id     text NOT NULL CHECK (length(user_id) BETWEEN 1 AND 128),
    amount      numeric NOT NULL CHECK (amount > 0),
    currency    text NOT NULL CHECK (length(currency) BETWEEN 2 AND 10),
    destination text NOT NULL CHECK (length(destination) BETWEEN 1 AND 256),
    status      text NOT NULL CHECK (
                    status IN ('requested', 'processing', 'sent', 'failed', 'cancelled')),
    reason      text,
    tx_hash     text CHECK (tx_hash IS NULL OR length(tx_hash) BETWEEN 1 AND 256),
    created_at  text COLLATE "C" NOT NULL,
    updated_at  text COLLATE "C" NOT NULL,
    CHECK (status <> 'sent' OR tx_hash IS NOT NULL)
);
-- Listing is newest first, optionally by status or by user: one index each,
-- ending in (created_at, id) so a keyset page is one index range.
CREATE INDEX IF NOT EXISTS payouts_newest ON payouts (created_at, id);
CREATE INDEX IF NOT EXISTS payouts_by_status ON payouts (status, created_at, id);
CREATE INDEX IF NOT EXISTS payouts_by_user ON payouts (user_id, created_at, id);

-- A settled payout never changes again, whatever the code above says.
CREATE OR REPLACE FUNCTION payouts_terminal_is_final() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'payout is settled';
END;
$$;
CREATE OR REPLACE TRIGGER payouts_terminal_is_final
BEFORE UPDATE ON payouts
FOR EACH ROW WHEN (OLD.status IN ('sent', 'failed', 'cancelled'))
EXECUTE FUNCTION payouts_terminal_is_final();

CREATE TABLE IF NOT EXISTS payout_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    payout_id   text COLLATE "C" NOT NULL REFERENCES payouts (id),
    from_status text NOT NULL CHECK (
                    from_status IN ('requested', 'processing', 'sent', 'failed', 'cancelled')),
    to_status   text NOT NULL CHECK (
                    to_status IN ('requested', 'processing', 'sent', 'failed', 'cancelled')),
    reason      text,
    tx_hash     text,
    actor       text,
    at          text COLLATE "C" NOT NULL
);
CREATE INDEX IF NOT EXISTS payout_events_by_payout ON payout_events (payout_id, id);

-- The audit trail is append-only.
CREATE OR REPLACE FUNCTION payout_events_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'payout events are append-only';
END;
$$;
CREATE OR REPLACE TRIGGER payout_events_append_only
BEFORE UPDATE OR DELETE ON payout_events
FOR EACH ROW EXECUTE FUNCTION payout_events_append_only();

-- Safe retries: the first answer to a request with an Idempotency-Key, kept
-- at least 24 hours (prune-idempotency-keys removes older ones). status is
-- NULL while the first request runs.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    key         text COLLATE "C" PRIMARY KEY CHECK (length(key) BETWEEN 1 AND 255),
    fingerprint text NOT NULL,
    status      integer,
    body        bytea,
    created_at  text COLLATE "C" NOT NULL,
    claimed_at  text COLLATE "C" NOT NULL
);
CREATE INDEX IF NOT EXISTS idempotency_keys_by_age ON idempotency_keys (created_at);
