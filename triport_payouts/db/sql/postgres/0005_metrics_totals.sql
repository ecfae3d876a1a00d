-- Schema version 5 (PostgreSQL): running totals for GET /metrics, so that a
-- scrape reads a few rows instead of every payout and every event.
--
-- payout_totals: per (status, currency), how many payouts are in that status
-- and the exact sum of their amounts; payout_event_totals: per to_status (the
-- event's type), how many events. Statement triggers keep both in the
-- transaction of every change (a COPY of a million rows runs each once).
--
-- slot: one row per key would be locked by every writer of that currency
-- until its commit, serialising the hosts' transitions behind one another's
-- disk syncs. Each session writes the rows of its own slot (its process id
-- modulo 64), so two writers wait for each other only when their slots
-- collide; a scrape sums the slots. A transition locks its old status's row
-- before its new one's, and the state machine has no cycle, so two such
-- writers never deadlock; a statement locks its rows in key order.

CREATE TABLE payout_totals (
    status    text COLLATE "C" NOT NULL,
    currency  text COLLATE "C" NOT NULL,
    slot      integer NOT NULL,
    payouts   bigint NOT NULL,
    amount    numeric NOT NULL,
    PRIMARY KEY (status, currency, slot)
);

CREATE TABLE payout_event_totals (
    to_status  text COLLATE "C" NOT NULL,
    slot       integer NOT NULL,
    events     bigint NOT NULL,
    PRIMARY KEY (to_status, slot)
);

CREATE FUNCTION payout_totals_slot() RETURNS integer LANGUAGE sql STABLE AS $$
    SELECT pg_backend_pid() % 64
$$;

CREATE FUNCTION payout_totals_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO payout_totals AS t (status, currency, slot, payouts, amount)
    SELECT status, currency, payout_totals_slot(), count(*), sum(amount)
    FROM inserted GROUP BY status, currency ORDER BY status, currency
    ON CONFLICT (status, currency, slot) DO UPDATE
        SET payouts = t.payouts + EXCLUDED.payouts, amount = t.amount + EXCLUDED.amount;
    RETURN NULL;
END
$$;

-- The amount and currency never change: each payout whose status changed
-- leaves its old status's row (-1, -amount) for its new one's.
CREATE FUNCTION payout_totals_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO payout_totals AS t (status, currency, slot, payouts, amount)
    SELECT status, currency, payout_totals_slot(), sum(payouts), sum(amount)
    FROM (
        SELECT o.status, o.currency, -1 AS payouts, -o.amount AS amount, 0 AS side
        FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE o.status <> n.status
        UNION ALL
        SELECT n.status, n.currency, 1, n.amount, 1
        FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE o.status <> n.status
    ) AS moves
    GROUP BY status, currency ORDER BY min(side), status, currency
    ON CONFLICT (status, currency, slot) DO UPDATE
        SET payouts = t.payouts + EXCLUDED.payouts, amount = t.amount + EXCLUDED.amount;
    RETURN NULL;
END
$$;

CREATE FUNCTION payout_event_totals_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO payout_event_totals AS t (to_status, slot, events)
    SELECT to_status, payout_totals_slot(), count(*) FROM inserted GROUP BY to_status ORDER BY to_status
    ON CONFLICT (to_status, slot) DO UPDATE SET events = t.events + EXCLUDED.events;
    RETURN NULL;
END
$$;

-- Created before the first fill, in its transaction: they lock the tables
-- against writers until the commit, so no change falls between the two.
CREATE TRIGGER payout_totals_insert
AFTER INSERT ON payouts
REFERENCING NEW TABLE AS inserted
FOR EACH STATEMENT EXECUTE FUNCTION payout_totals_insert();

CREATE TRIGGER payout_totals_update
AFTER UPDATE ON payouts
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION payout_totals_update();

CREATE TRIGGER payout_event_totals_insert
AFTER INSERT ON payout_events
REFERENCING NEW TABLE AS inserted
FOR EACH STATEMENT EXECUTE FUNCTION payout_event_totals_insert();

INSERT INTO payout_totals (status, currency, slot, payouts, amount)
SELECT status, currency, 0, count(*), sum(amount) FROM payouts GROUP BY status, currency;

INSERT INTO payout_event_totals (to_status, slot, events)
SELECT to_status, 0, count(*) FROM payout_events GROUP BY to_status;
