-- Partner lifecycle timestamps, and the outbox: events written in the same transaction as the
-- change that causes them, for the webhook dispatcher to deliver.

ALTER TABLE partners ADD COLUMN activated_at BIGINT;
ALTER TABLE partners ADD COLUMN suspended_at BIGINT;
ALTER TABLE partners ADD COLUMN suspend_reason TEXT;

CREATE TABLE events (
    id              TEXT PRIMARY KEY,
    type            TEXT NOT NULL,
    -- Who receives it: a partner's endpoint, a distributor's, or both.
    to_partner      TEXT,
    to_distributor  TEXT,
    -- The event's data object as JSON text.
    data            TEXT NOT NULL,
    occurred_at     BIGINT NOT NULL
);
CREATE INDEX events_occurred ON events (occurred_at);
CREATE INDEX events_to_partner ON events (to_partner, occurred_at);
CREATE INDEX events_to_distributor ON events (to_distributor, occurred_at);
