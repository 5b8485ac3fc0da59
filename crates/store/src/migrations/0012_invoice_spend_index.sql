-- Analytics' spend reads a distributor's partners' invoices by issue time (a partner's own are
-- read through invoices_account_issued).
CREATE INDEX invoices_distributor_issued ON invoices (distributor_id, issued_at);
