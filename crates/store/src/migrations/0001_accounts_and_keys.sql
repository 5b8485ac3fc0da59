-- Accounts, keys, customers and the monthly run counters.
-- One source for SQLite and PostgreSQL: portable types only. Timestamps are unix milliseconds (UTC).

CREATE TABLE distributors (
    id          TEXT PRIMARY KEY,
    company     TEXT NOT NULL,
    email       TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('pending', 'active', 'suspended')),
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX distributors_email ON distributors (email, created_at);

CREATE TABLE partners (
    id                TEXT PRIMARY KEY,
    distributor_id    TEXT REFERENCES distributors (id),
    company           TEXT NOT NULL,
    email             TEXT NOT NULL,
    name              TEXT NOT NULL,
    plan              TEXT NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('pending', 'active', 'suspended')),
    -- The subscription: plan above, these terms, and the period being paid for.
    billing_currency  TEXT NOT NULL,
    billing_interval  TEXT NOT NULL,
    period_start      BIGINT NOT NULL,
    period_end        BIGINT NOT NULL,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX partners_distributor ON partners (distributor_id, status, created_at);
CREATE INDEX partners_email ON partners (email, created_at);

CREATE TABLE workers (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('active', 'suspended')),
    created_at  BIGINT NOT NULL
);
CREATE INDEX workers_name ON workers (name, created_at);

-- Keys are stored only as SHA-256 hashes. An owner holds at most one active key per slot and
-- slots are 1 and 2, so the partial unique index caps every owner at two active keys.
CREATE TABLE api_keys (
    key_hash    TEXT PRIMARY KEY,
    owner_kind  TEXT NOT NULL CHECK (owner_kind IN ('partner', 'distributor', 'worker')),
    owner_id    TEXT NOT NULL,
    slot        SMALLINT NOT NULL CHECK (slot IN (1, 2)),
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE UNIQUE INDEX api_keys_active_slot ON api_keys (owner_kind, owner_id, slot) WHERE revoked_at IS NULL;

CREATE TABLE customers (
    id                        TEXT PRIMARY KEY,
    partner_id                TEXT NOT NULL REFERENCES partners (id),
    name                      TEXT NOT NULL,
    tenant_id                 TEXT NOT NULL,
    email                     TEXT,
    receivers                 TEXT NOT NULL,
    questionnaire_recipients  TEXT NOT NULL,
    created_at                BIGINT NOT NULL,
    updated_at                BIGINT NOT NULL
);
CREATE INDEX customers_partner ON customers (partner_id, created_at);

-- Units of the monthly run limit taken by each partner. Reserved by one conditional UPDATE
-- (`used + n <= limit`), so concurrent triggers can never overshoot.
CREATE TABLE run_usage (
    partner_id  TEXT NOT NULL REFERENCES partners (id),
    month       TEXT NOT NULL,
    used        BIGINT NOT NULL CHECK (used >= 0),
    PRIMARY KEY (partner_id, month)
);
CREATE INDEX run_usage_month ON run_usage (month);
