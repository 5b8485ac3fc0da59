//! partnerd's domain: the rules of the channel-partner platform, the value types they speak in,
//! the ports they need, and the use-case services built on those ports. No I/O lives here.

pub mod account;
pub mod billing;
pub mod catalog;
pub mod customer;
pub mod event;
pub mod ids;
pub mod invoice;
pub mod keys;
pub mod ports;
pub mod report;
pub mod run;
pub mod services;
pub mod values;
pub mod webhook;

#[cfg(any(test, feature = "mocks"))]
pub mod testing;
