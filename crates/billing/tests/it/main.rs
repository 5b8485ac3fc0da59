//! The billing adapters' integration tests: the Stripe-compatible adapter against a local fake
//! of Stripe's endpoints and against localstripe, both on loopback ports.

mod fake;
mod stripe_fake;
mod stripe_localstripe;
mod support;
