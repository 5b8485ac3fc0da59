-- Webhooks: one endpoint per partner or distributor, and one delivery per event and endpoint
-- with the log of its attempts. Deliveries are queued in the transaction that records the event
-- (the outbox) and claimed by dispatchers with row leases.

CREATE TABLE webhook_endpoints (
    -- A partner's or a distributor's id (the prefix tells which).
    recipient                  TEXT PRIMARY KEY,
    url                        TEXT NOT NULL,
    -- Signing secrets are needed in plain text to sign; they are never logged or shown again.
    secret                     TEXT NOT NULL,
    previous_secret            TEXT,
    previous_secret_until      BIGINT,
    disabled_at                BIGINT,
    disabled_reason            TEXT,
    created_at                 BIGINT NOT NULL,
    updated_at                 BIGINT NOT NULL
);

CREATE TABLE webhook_deliveries (
    event_id         TEXT NOT NULL REFERENCES events (id),
    recipient        TEXT NOT NULL,
    -- Copied from the event, for the log's filters and order.
    event_type       TEXT NOT NULL,
    occurred_at      BIGINT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'retrying', 'delivered', 'failed')),
    -- Attempts made so far, and how many of them came before the last resend.
    attempts         INTEGER NOT NULL DEFAULT 0,
    round_base       INTEGER NOT NULL DEFAULT 0,
    -- When the next attempt is due; while claimed, when the claim's lease ends.
    next_attempt_at  BIGINT,
    lease            TEXT,
    PRIMARY KEY (event_id, recipient)
);
-- The dispatchers' queue: open deliveries by due time.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE status IN ('pending', 'retrying');
-- The delivery log, newest first, unfiltered or by status or type.
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (recipient, occurred_at, event_id);
CREATE INDEX webhook_deliveries_status ON webhook_deliveries (recipient, status, occurred_at, event_id);
CREATE INDEX webhook_deliveries_type ON webhook_deliveries (recipient, event_type, occurred_at, event_id);

CREATE TABLE webhook_attempts (
    event_id       TEXT NOT NULL,
    recipient      TEXT NOT NULL,
    attempt        INTEGER NOT NULL,
    attempted_at   BIGINT NOT NULL,
    http_status    INTEGER,
    latency_ms     INTEGER NOT NULL,
    error          TEXT,
    status         TEXT NOT NULL CHECK (status IN ('retrying', 'delivered', 'failed')),
    next_retry_at  BIGINT,
    PRIMARY KEY (recipient, event_id, attempt),
    FOREIGN KEY (event_id, recipient) REFERENCES webhook_deliveries (event_id, recipient) ON DELETE CASCADE
);
