//! Black-box tests: every scenario starts the real `partnerd` binary (see `partnerd_e2e`) on a
//! fresh database and talks to it over its command line and HTTP, on SQLite and PostgreSQL.

mod support;

mod admin;
mod auth;
mod distributor_bad_input;
mod distributor_inactive;
mod distributor_isolation;
mod distributor_on_behalf;
mod distributor_rate_limit;
mod distributor_suspension;
mod distributor_walk;
mod invoices;
mod logs;
mod partner_bad_input;
mod partner_isolation;
mod partner_keys;
mod partner_plan;
mod partner_rate_limit;
mod partner_run_limits;
mod partner_walk;
mod profile;
mod quickstart;
mod reports;
mod request_counts;
mod routing;
mod suspension;
mod webhook_durability;
mod webhooks;
mod webhooks_delivery;
mod worker_protocol;
mod worker_runner;
