-- Billing is in advance: a partner is invoiced for a period when the period opens, the first one
-- included. `invoiced_until` is the end of the last period its invoices (or a plan change's
-- proration) have paid for, in epoch milliseconds; 0 means nothing yet. The invoicing sweep
-- takes active partners whose paid-for time has run out: `invoiced_until <= now`.
ALTER TABLE partners ADD COLUMN invoiced_until BIGINT NOT NULL DEFAULT 0;

DROP INDEX partners_period_end;
CREATE INDEX partners_invoice_due ON partners (status, invoiced_until);
