//! Webhook delivery. Events and their deliveries are written to the outbox by the store in the
//! transaction of the change that causes them; the [`Dispatcher`] here claims due deliveries
//! (shared safely by every `partnerd` process on one database), signs them ([`sign`]), sends
//! them through a client that refuses private addresses ([`guard`]), and records each attempt.

mod dispatcher;
pub mod guard;
pub mod sign;

pub use dispatcher::{Dispatcher, DispatcherConfig, payload};
