-- Invoices: issued by renewals (partners) and monthly (distributors), each with its lines.
-- Money in minor units (cents), as in invoice_items.

-- The distributor's discount on its partners' invoices, a decimal percentage as text ("12.5")
-- so it stays exact on both back-ends; NULL means the default (20). The domain checks 0–100.
ALTER TABLE distributors ADD COLUMN discount_percent TEXT;

CREATE TABLE invoices (
    id                      TEXT PRIMARY KEY,
    account_kind            TEXT NOT NULL CHECK (account_kind IN ('partner', 'distributor')),
    account_id              TEXT NOT NULL,
    period_start            BIGINT NOT NULL,
    period_end              BIGINT NOT NULL,
    currency                TEXT NOT NULL,
    subtotal_minor          BIGINT NOT NULL,
    discount_minor          BIGINT NOT NULL,
    total_minor             BIGINT NOT NULL,
    issued_at               BIGINT NOT NULL,
    -- Partner invoices: the partner's distributor when it was issued (NULL for a direct
    -- partner), and the distributor invoice that covers it once there is one.
    distributor_id          TEXT REFERENCES distributors (id),
    distributor_invoice_id  TEXT REFERENCES invoices (id)
);
-- Issuing is idempotent: one invoice per account, period and currency, however many processes
-- or retries try.
CREATE UNIQUE INDEX invoices_account_period ON invoices (account_kind, account_id, period_start, currency);
CREATE INDEX invoices_account_issued ON invoices (account_kind, account_id, issued_at, id);
CREATE INDEX invoices_uncovered ON invoices (distributor_id, distributor_invoice_id, issued_at);

CREATE TABLE invoice_lines (
    invoice_id    TEXT NOT NULL REFERENCES invoices (id),
    line_no       SMALLINT NOT NULL,
    kind          TEXT NOT NULL,
    description   TEXT NOT NULL,
    amount_minor  BIGINT NOT NULL,
    period_start  BIGINT,
    period_end    BIGINT,
    PRIMARY KEY (invoice_id, line_no)
);

CREATE INDEX invoice_items_invoice ON invoice_items (invoice_id);
-- The renewal sweep: active partners whose period has ended.
CREATE INDEX partners_period_end ON partners (status, period_end);
