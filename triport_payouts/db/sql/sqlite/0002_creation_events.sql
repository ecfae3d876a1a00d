-- Schema version 2 (SQLite): every payout's history starts with its creation.
-- A creation event has no from_status (to_status 'requested'); the payouts
-- made before this version get one, at their created_at and with no actor,
-- numbered before their later events: the table is rebuilt with every event
-- renumbered (no event id was shown before): the old events keep their
-- order, each creation comes just before its payout's first event, and the
-- payouts never moved come last, by creation time. (Not by event times:
-- several hosts' clocks may disagree, and a payout's history must not.)

CREATE TABLE payout_events_v2 (
    id          INTEGER PRIMARY KEY,
    payout_id   TEXT NOT NULL REFERENCES payouts (id),
    from_status TEXT CHECK (
                    from_status IN ('requested', 'processing', 'sent', 'failed', 'cancelled')),
    to_status   TEXT NOT NULL CHECK (
                    to_status IN ('requested', 'processing', 'sent', 'failed', 'cancelled')),
    reason      TEXT,
    tx_hash     TEXT,
    actor       TEXT,
    at          TEXT NOT NULL,
    CHECK ((from_status IS NULL) = (to_status = 'requested'))
);

INSERT INTO payout_events_v2 (id, payout_id, from_status, to_status, reason, tx_hash, actor, at)
SELECT row_number() OVER (ORDER BY anchor, creation DESC, at, payout_id, old_id),
       payout_id, from_status, to_status, reason, tx_hash, actor, at
FROM (
    SELECT id AS payout_id, NULL AS from_status, 'requested' AS to_status, NULL AS reason,
           NULL AS tx_hash, NULL AS actor, created_at AS at, 1 AS creation, 0 AS old_id,
           coalesce((SELECT min(e.id) FROM payout_events e WHERE e.payout_id = payouts.id),
                    (SELECT coalesce(max(id), 0) + 1 FROM payout_events)) AS anchor
    FROM payouts
    UNION ALL
    SELECT payout_id, from_status, to_status, reason, tx_hash, actor, at, 0, id, id
    FROM payout_events
);

-- Dropping the table drops its append-only triggers (and fires none).
DROP TABLE payout_events;
ALTER TABLE payout_events_v2 RENAME TO payout_events;
CREATE INDEX payout_events_by_payout ON payout_events (payout_id, id);

CREATE TRIGGER payout_events_no_update
BEFORE UPDATE ON payout_events
BEGIN
    SELECT RAISE(ABORT, 'payout events are append-only');
END;
CREATE TRIGGER payout_events_no_delete
BEFORE DELETE ON payout_events
BEGIN
    SELECT RAISE(ABORT, 'payout events are append-only');
END;
