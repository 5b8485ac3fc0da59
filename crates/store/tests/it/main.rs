//! Store tests (tier c): every repository against a real database, a fresh one per test, on
//! SQLite and on PostgreSQL.

mod accounts;
mod billing;
mod customers;
mod invoices;
mod keys;
mod managed;
mod reports;
mod run_queue;
mod runs;
mod support;
mod webhooks;
