-- Schema version 2 (PostgreSQL): every payout's history starts with its
-- creation, and the change feed can tell which events are final.
--
-- A creation event has no from_status (to_status 'requested'); the payouts
-- made before this version get one, at their created_at and with no actor,
-- numbered before their later events: the table is rebuilt with every event
-- renumbered (no event id was shown before): the old events keep their
-- order, each creation comes just before its payout's first event, and the
-- payouts never moved come last, by creation time. (Not by event times:
-- several hosts' clocks may disagree, and a payout's history must not.)
--
-- xid: the writing transaction's id. Ids are taken before commit, so two
-- transactions may commit their events out of id order; the feed serves only
-- events of transactions older than every one still running (see the
-- repository's feed statement), in (xid, id) order, so it never skips one.

CREATE TABLE payout_events_v2 (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    payout_id   text COLLATE "C" NOT NULL REFERENCES payouts (id),
    from_status text CHECK (
                    from_status IN ('requested', 'processing', 'sent', 'failed', 'cancelled')),
    to_status   text NOT NULL CHECK (
                    to_status IN ('requested', 'processing', 'sent', 'failed', 'cancelled')),
    reason      text,
    tx_hash     text,
    actor       text,
    at          text COLLATE "C" NOT NULL,
    xid         xid8 NOT NULL DEFAULT pg_current_xact_id(),
    CHECK ((from_status IS NULL) = (to_status = 'requested'))
);

INSERT INTO payout_events_v2 (id, payout_id, from_status, to_status, reason, tx_hash, actor, at)
OVERRIDING SYSTEM VALUE
SELECT row_number() OVER (ORDER BY anchor, creation DESC, at, payout_id, old_id),
       payout_id, from_status, to_status, reason, tx_hash, actor, at
FROM (
    SELECT id AS payout_id, NULL::text AS from_status, 'requested'::text AS to_status,
           NULL::text AS reason, NULL::text AS tx_hash, NULL::text AS actor, created_at AS at,
           1 AS creation, 0::bigint AS old_id,
           coalesce((SELECT min(e.id) FROM payout_events e WHERE e.payout_id = payouts.id),
                    (SELECT coalesce(max(id), 0) + 1 FROM payout_events)) AS anchor
    FROM payouts
    UNION ALL
    SELECT payout_id, from_status, to_status, reason, tx_hash, actor, at, 0, id, id
    FROM payout_events
) AS history;

SELECT setval(pg_get_serial_sequence('payout_events_v2', 'id'),
              coalesce((SELECT max(id) FROM payout_events_v2), 0) + 1, false);

-- Dropping the table drops its append-only trigger (and fires none).
DROP TABLE payout_events;
ALTER TABLE payout_events_v2 RENAME TO payout_events;
-- The names version 1 gave them, for whoever looks them up.
ALTER INDEX payout_events_v2_pkey RENAME TO payout_events_pkey;
ALTER TABLE payout_events RENAME CONSTRAINT payout_events_v2_payout_id_fkey TO payout_events_payout_id_fkey;
ALTER TABLE payout_events RENAME CONSTRAINT payout_events_v2_from_status_check TO payout_events_from_status_check;
ALTER TABLE payout_events RENAME CONSTRAINT payout_events_v2_to_status_check TO payout_events_to_status_check;
ALTER TABLE payout_events RENAME CONSTRAINT payout_events_v2_check TO payout_events_creation_check;
ALTER SEQUENCE payout_events_v2_id_seq RENAME TO payout_events_id_seq;
CREATE INDEX payout_events_by_payout ON payout_events (payout_id, id);
CREATE INDEX payout_events_feed ON payout_events (xid, id);

CREATE OR REPLACE TRIGGER payout_events_append_only
BEFORE UPDATE OR DELETE ON payout_events
FOR EACH ROW EXECUTE FUNCTION payout_events_append_only();
