-- Schema version 3 (PostgreSQL): signed webhooks, an outbox.
--
-- webhook_endpoints: where events are POSTed, with the secret they are signed
-- with (and, for 24 hours after a rotation, the previous one). enabled is 0
-- once the endpoint answered 410 Gone or failed for 5 days.
-- webhook_subscriptions: one row per (endpoint, event type) it receives.
-- webhook_outbox: one row per (enabled endpoint subscribed, event), written
-- by a trigger on payout_events, so in the event's own transaction whoever
-- writes the event (a transition, a creation, a bulk load): no committed
-- change without its deliveries, none for a change rolled back. With no
-- endpoint the trigger costs one probe of an empty index; with one, one row
-- in a table with no secondary index (two indexed rows cost the 200 path
-- about 10%). The delivery process moves the rows into webhook_deliveries,
-- indexed to find what is due, in transactions of its own.
-- webhook_deliveries: each delivery's attempts. A delivery process leases a
-- due row (leased_until) before sending it, so two processes never send one
-- delivery at the same time.

CREATE TABLE webhook_endpoints (
    id               text PRIMARY KEY,
    url              text NOT NULL,
    secret           text NOT NULL,
    previous_secret  text,
    previous_until   text,
    enabled          INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    disabled_reason  text,
    failing_since    text,
    created_at       text NOT NULL
);

CREATE TABLE webhook_subscriptions (
    type         text NOT NULL,
    endpoint_id  text NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    PRIMARY KEY (type, endpoint_id)
);

CREATE TABLE webhook_outbox (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    endpoint_id  text NOT NULL,
    event_id     bigint NOT NULL,
    created_at   text NOT NULL
);

CREATE TABLE webhook_deliveries (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    endpoint_id      text NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id         bigint NOT NULL REFERENCES payout_events (id),
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  text NOT NULL,
    leased_until     text,
    last_status      INTEGER,
    last_error       text,
    last_attempt_at  text,
    created_at       text NOT NULL
);
-- What the delivery process looks for: the pending ones, soonest first.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (endpoint_id, id);

-- Once per statement, over the rows it inserted: a COPY of a million
-- creation events (seed-demo, copy-data) runs it once.
CREATE FUNCTION payout_events_webhooks() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO webhook_outbox (endpoint_id, event_id, created_at)
    SELECT s.endpoint_id, e.id, e.at
    FROM inserted e
    JOIN webhook_subscriptions s ON s.type = 'payout.' || e.to_status
    JOIN webhook_endpoints w ON w.id = s.endpoint_id
    WHERE w.enabled = 1
    ORDER BY e.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER payout_events_webhooks
AFTER INSERT ON payout_events
REFERENCING NEW TABLE AS inserted
FOR EACH STATEMENT EXECUTE FUNCTION payout_events_webhooks();
