//! Store tests (tier c): every repository against a real database, a fresh one per test, on
//! SQLite and on PostgreSQL.

mod accounts;
mod billing;
mod customers;
mod invoices;
mod keys;
mod managed;
mod provider_accounts;
mod reports;
mod request_counts;
mod run_queue;
mod runs;
mod support;
mod webhooks;
