//! Use cases: plain structs over ports. Each has its own error enum whose variants a caller can
//! act on, plus an opaque `Internal` for infrastructure failures.

mod admin;
mod auth;
mod profile;

pub use admin::{AdminError, AdminService, NewPartner};
pub use auth::{AuthError, AuthService};
pub use profile::{DistributorProfile, PartnerProfile, ProfileError, ProfileService, UsageSummary};
