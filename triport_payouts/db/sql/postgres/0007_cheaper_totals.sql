-- Schema version 7 (PostgreSQL): the events counted for GET /metrics are
-- only those the payouts' own totals cannot count, as on SQLite: every
-- payout has one creation event (payout.requested), and one event into the
-- terminal status it is in, which it never leaves; so those counts are
-- payout_totals' own. Only the events into processing are counted (a payout
-- may have left processing since), by a row trigger that no other event
-- fires, instead of a statement trigger that every insert of events ran.

DROP TRIGGER payout_event_totals_insert ON payout_events;
DROP FUNCTION payout_event_totals_insert();
DELETE FROM payout_event_totals WHERE to_status <> 'processing';

CREATE FUNCTION payout_event_totals_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO payout_event_totals AS t (to_status, slot, events)
    VALUES (NEW.to_status, payout_totals_slot(), 1)
    ON CONFLICT (to_status, slot) DO UPDATE SET events = t.events + 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER payout_event_totals_insert
AFTER INSERT ON payout_events
FOR EACH ROW WHEN (NEW.to_status = 'processing')
EXECUTE FUNCTION payout_event_totals_insert();
