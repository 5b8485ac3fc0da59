//! HTTP tests (tier b): the real actix app on port 0, services over in-memory fakes.

mod auth;
mod distributor_inactive;
mod distributor_isolation;
mod distributor_lifecycle;
mod distributor_on_behalf;
mod distributor_partners;
mod distributor_partners_bulk;
mod distributor_plan;
mod distributor_races;
mod distributor_rate_limit;
mod distributor_usage;
mod distributor_webhooks;
mod envelope;
mod me;
mod partner_assessments;
mod partner_customers;
mod partner_customers_bulk;
mod partner_isolation;
mod partner_keys;
mod partner_plan;
mod partner_products;
mod partner_rate_limit;
mod partner_run_limits;
mod partner_webhooks;
mod support;
mod worker_protocol;
