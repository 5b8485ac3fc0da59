//! Webhook delivery: the outbox reader, HMAC signer and retrying dispatcher.
//!
//! Not built yet: events are already written to the outbox (the `events` table) in the same
//! transaction as their change, and this crate will deliver them. It exports nothing until then.
