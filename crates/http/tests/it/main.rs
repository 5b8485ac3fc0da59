//! HTTP tests (tier b): the real actix app on port 0, services over in-memory fakes.

mod auth;
mod envelope;
mod me;
mod support;
