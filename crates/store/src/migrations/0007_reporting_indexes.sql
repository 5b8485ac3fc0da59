-- Reports, dashboards and analytics aggregate a partner's runs over a range of creation times,
-- grouped by day, product, status and customer. This index covers those queries: each is a range
-- scan of one partner's runs that never reads the table. (runs_partner_created starts the same
-- way but carries only the id, so each counted run would cost a table lookup.)
CREATE INDEX runs_partner_report ON runs (partner_id, created_at, status, product, customer_id);
