-- Schema version 7 (SQLite): the running totals of version 5, cheaper to keep
-- on every write (measured: the triggers were a fifth of SQLite's work in a
-- transition, and two of its pages of log).
--
-- A payout's amount is split into its four parts from the row the trigger
-- has (NEW, OLD), no longer by looking the payout up again through the
-- payout_amount_parts view (dropped). The amount and currency never change:
-- a status change is one upsert of two rows, -1 and the amount's parts out
-- of OLD.status's, +1 and them into NEW.status's.
--
-- Events are counted only where the payouts' own totals cannot count them:
-- every payout has one creation event (payout.requested), and one event into
-- the terminal status it is in, which it never leaves; so those counts are
-- payout_totals' own. Only the events into processing are counted here (a
-- payout may have left processing since).

DROP TRIGGER payout_totals_insert;
DROP TRIGGER payout_totals_update;
DROP TRIGGER payout_event_totals_insert;
DROP VIEW payout_amount_parts;
DELETE FROM payout_event_totals WHERE to_status <> 'processing';

CREATE TRIGGER payout_totals_insert
AFTER INSERT ON payouts
BEGIN
    INSERT INTO payout_totals (status, currency, payouts, units_hi, units_lo, frac_hi, frac_lo)
    SELECT NEW.status, NEW.currency, 1,
           units / 1000000000, units % 1000000000, frac / 1000000000, frac % 1000000000
    FROM (SELECT CAST(CASE WHEN point > 0 THEN substr(NEW.amount, 1, point - 1) ELSE NEW.amount END AS INTEGER)
                     AS units,
                 CAST(CASE WHEN point > 0
                           THEN substr(substr(NEW.amount, point + 1) || '000000000000000000', 1, 18)
                           ELSE '0' END AS INTEGER) AS frac
          FROM (SELECT instr(NEW.amount, '.') AS point))
    WHERE true
    ON CONFLICT (status, currency) DO UPDATE SET
        payouts = payouts + excluded.payouts, units_hi = units_hi + excluded.units_hi,
        units_lo = units_lo + excluded.units_lo, frac_hi = frac_hi + excluded.frac_hi,
        frac_lo = frac_lo + excluded.frac_lo;
END;

CREATE TRIGGER payout_totals_update
AFTER UPDATE OF status ON payouts
WHEN OLD.status <> NEW.status
BEGIN
    INSERT INTO payout_totals (status, currency, payouts, units_hi, units_lo, frac_hi, frac_lo)
    SELECT side.status, OLD.currency, side.sign, side.sign * (units / 1000000000),
           side.sign * (units % 1000000000), side.sign * (frac / 1000000000), side.sign * (frac % 1000000000)
    FROM (SELECT OLD.status AS status, -1 AS sign UNION ALL SELECT NEW.status, 1) AS side,
         (SELECT CAST(CASE WHEN point > 0 THEN substr(OLD.amount, 1, point - 1) ELSE OLD.amount END AS INTEGER)
                     AS units,
                 CAST(CASE WHEN point > 0
                           THEN substr(substr(OLD.amount, point + 1) || '000000000000000000', 1, 18)
                           ELSE '0' END AS INTEGER) AS frac
          FROM (SELECT instr(OLD.amount, '.') AS point))
    WHERE true
    ON CONFLICT (status, currency) DO UPDATE SET
        payouts = payouts + excluded.payouts, units_hi = units_hi + excluded.units_hi,
        units_lo = units_lo + excluded.units_lo, frac_hi = frac_hi + excluded.frac_hi,
        frac_lo = frac_lo + excluded.frac_lo;
END;

CREATE TRIGGER payout_event_totals_insert
AFTER INSERT ON payout_events
WHEN NEW.to_status = 'processing'
BEGIN
    INSERT INTO payout_event_totals (to_status, events) VALUES (NEW.to_status, 1)
    ON CONFLICT (to_status) DO UPDATE SET events = events + 1;
END;
