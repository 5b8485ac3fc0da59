-- Assessment runs, plan changes (the audit and the hourly allowance), and pending invoice items.

CREATE TABLE runs (
    id                TEXT PRIMARY KEY,
    partner_id        TEXT NOT NULL REFERENCES partners (id),
    customer_id       TEXT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    product           TEXT NOT NULL,
    maturity_target   SMALLINT NOT NULL CHECK (maturity_target BETWEEN 1 AND 5),
    status            TEXT NOT NULL CHECK (status IN ('queued', 'running', 'completed', 'failed')),
    -- The month (YYYY-MM, UTC) whose run limit this run took a unit of.
    month             TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    started_at        BIGINT,
    completed_at      BIGINT,
    score             SMALLINT CHECK (score BETWEEN 0 AND 100),
    critical          BIGINT CHECK (critical >= 0),
    high              BIGINT CHECK (high >= 0),
    medium            BIGINT CHECK (medium >= 0),
    low               BIGINT CHECK (low >= 0),
    report_url        TEXT,
    failure_reason    TEXT,
    -- Worker protocol: how many times the run was claimed, by whom, until when.
    attempts          SMALLINT NOT NULL DEFAULT 0,
    lease_worker_id   TEXT,
    lease_expires_at  BIGINT
);
CREATE INDEX runs_partner_created ON runs (partner_id, created_at, id);
CREATE INDEX runs_partner_month ON runs (partner_id, month, product);
CREATE INDEX runs_customer_created ON runs (customer_id, created_at);
CREATE INDEX runs_queue ON runs (status, created_at);

CREATE TABLE plan_changes (
    id             TEXT PRIMARY KEY,
    partner_id     TEXT NOT NULL REFERENCES partners (id),
    actor_kind     TEXT NOT NULL CHECK (actor_kind IN ('partner', 'distributor')),
    actor_id       TEXT NOT NULL,
    from_plan      TEXT NOT NULL,
    to_plan        TEXT NOT NULL,
    from_interval  TEXT NOT NULL,
    to_interval    TEXT NOT NULL,
    from_currency  TEXT NOT NULL,
    to_currency    TEXT NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('reserved', 'applied', 'released')),
    requested_at   BIGINT NOT NULL,
    applied_at     BIGINT
);
CREATE INDEX plan_changes_partner ON plan_changes (partner_id, requested_at);

-- Money in minor units (cents) so sums are exact on both back-ends.
CREATE TABLE invoice_items (
    plan_change_id  TEXT NOT NULL REFERENCES plan_changes (id),
    line_no         SMALLINT NOT NULL,
    account_kind    TEXT NOT NULL CHECK (account_kind IN ('partner', 'distributor')),
    account_id      TEXT NOT NULL,
    kind            TEXT NOT NULL,
    description     TEXT NOT NULL,
    amount_minor    BIGINT NOT NULL,
    currency        TEXT NOT NULL,
    period_start    BIGINT NOT NULL,
    period_end      BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    invoice_id      TEXT,
    PRIMARY KEY (plan_change_id, line_no)
);
CREATE INDEX invoice_items_account ON invoice_items (account_kind, account_id, invoice_id);
