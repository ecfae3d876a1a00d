-- Schema version 5 (SQLite): running totals for GET /metrics, so that a
-- scrape reads a few rows instead of every payout and every event.
--
-- payout_totals: per (status, currency), how many payouts are in that status
-- and the exact sum of their amounts. SQLite has no exact decimal type and
-- its integers overflow past 9.2e18, so the sum is kept in four integer
-- parts of at most 9 digits each (an amount has at most 18 digits each side
-- of the point): the integer part's high and low 9 digits, and the first and
-- last 9 of the 18-digit fraction. Each part's sum stays exact up to
-- billions of payouts; the reader carries them into one decimal.
-- payout_event_totals: per to_status (the event's type), how many events.
-- Triggers keep both in the transaction of every change: one writer at a
-- time, so one row per key is no point of contention here.

CREATE TABLE payout_totals (
    status    TEXT NOT NULL,
    currency  TEXT NOT NULL,
    payouts   INTEGER NOT NULL,
    units_hi  INTEGER NOT NULL,
    units_lo  INTEGER NOT NULL,
    frac_hi   INTEGER NOT NULL,
    frac_lo   INTEGER NOT NULL,
    PRIMARY KEY (status, currency)
) WITHOUT ROWID;

CREATE TABLE payout_event_totals (
    to_status  TEXT PRIMARY KEY,
    events     INTEGER NOT NULL
) WITHOUT ROWID;

-- Each payout's amount in those four parts (written once: the triggers and
-- the first fill below read it).
CREATE VIEW payout_amount_parts AS
SELECT id, status, currency,
       units / 1000000000 AS units_hi, units % 1000000000 AS units_lo,
       frac / 1000000000 AS frac_hi, frac % 1000000000 AS frac_lo
FROM (
    SELECT id, status, currency,
           CAST(CASE WHEN instr(amount, '.') > 0 THEN substr(amount, 1, instr(amount, '.') - 1)
                     ELSE amount END AS INTEGER) AS units,
           CAST(CASE WHEN instr(amount, '.') > 0
                     THEN substr(substr(amount, instr(amount, '.') + 1) || '000000000000000000', 1, 18)
                     ELSE '0' END AS INTEGER) AS frac
    FROM payouts
);

INSERT INTO payout_totals (status, currency, payouts, units_hi, units_lo, frac_hi, frac_lo)
SELECT status, currency, count(*), sum(units_hi), sum(units_lo), sum(frac_hi), sum(frac_lo)
FROM payout_amount_parts GROUP BY status, currency;

INSERT INTO payout_event_totals (to_status, events)
SELECT to_status, count(*) FROM payout_events GROUP BY to_status;

CREATE TRIGGER payout_totals_insert
AFTER INSERT ON payouts
BEGIN
    INSERT INTO payout_totals (status, currency, payouts, units_hi, units_lo, frac_hi, frac_lo)
    SELECT status, currency, 1, units_hi, units_lo, frac_hi, frac_lo FROM payout_amount_parts WHERE id = NEW.id
    ON CONFLICT (status, currency) DO UPDATE SET
        payouts = payouts + excluded.payouts, units_hi = units_hi + excluded.units_hi,
        units_lo = units_lo + excluded.units_lo, frac_hi = frac_hi + excluded.frac_hi,
        frac_lo = frac_lo + excluded.frac_lo;
END;

-- The amount and currency never change: the payout leaves OLD.status's row
-- for NEW.status's.
CREATE TRIGGER payout_totals_update
AFTER UPDATE OF status ON payouts
WHEN OLD.status <> NEW.status
BEGIN
    UPDATE payout_totals SET (payouts, units_hi, units_lo, frac_hi, frac_lo) = (
        SELECT payout_totals.payouts - 1, payout_totals.units_hi - p.units_hi,
               payout_totals.units_lo - p.units_lo, payout_totals.frac_hi - p.frac_hi,
               payout_totals.frac_lo - p.frac_lo
        FROM payout_amount_parts AS p WHERE p.id = OLD.id)
    WHERE status = OLD.status AND currency = OLD.currency;
    INSERT INTO payout_totals (status, currency, payouts, units_hi, units_lo, frac_hi, frac_lo)
    SELECT status, currency, 1, units_hi, units_lo, frac_hi, frac_lo FROM payout_amount_parts WHERE id = NEW.id
    ON CONFLICT (status, currency) DO UPDATE SET
        payouts = payouts + excluded.payouts, units_hi = units_hi + excluded.units_hi,
        units_lo = units_lo + excluded.units_lo, frac_hi = frac_hi + excluded.frac_hi,
        frac_lo = frac_lo + excluded.frac_lo;
END;

CREATE TRIGGER payout_event_totals_insert
AFTER INSERT ON payout_events
BEGIN
    INSERT INTO payout_event_totals (to_status, events) VALUES (NEW.to_status, 1)
    ON CONFLICT (to_status) DO UPDATE SET events = events + 1;
END;
