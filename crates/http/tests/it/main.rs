//! HTTP tests (tier b): the real actix app on port 0, services over in-memory fakes.

mod auth;
mod envelope;
mod me;
mod partner_assessments;
mod partner_customers;
mod partner_customers_bulk;
mod partner_products;
mod support;
