//! HTTP tests (tier b): the real actix app on port 0, services over in-memory fakes.

mod auth;
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
mod support;
