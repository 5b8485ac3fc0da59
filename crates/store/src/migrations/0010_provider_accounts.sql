-- A partner's ids at a Stripe-compatible billing provider (`--billing-provider stripe`): its
-- customer, subscription and the subscription's one item. Written once, when the provider first
-- bills the partner; the primary key makes that insert-if-absent, so processes racing to open
-- the same partner's account agree on one row.
CREATE TABLE provider_accounts (
    partner_id       TEXT PRIMARY KEY REFERENCES partners (id),
    customer_id      TEXT NOT NULL,
    subscription_id  TEXT NOT NULL,
    item_id          TEXT NOT NULL
);
