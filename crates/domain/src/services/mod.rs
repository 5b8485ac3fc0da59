//! Use cases: plain structs over ports. Each has its own error enum whose variants a caller can
//! act on, plus an opaque `Internal` for infrastructure failures.

mod admin;
mod assessments;
mod auth;
mod bulk;
mod customers;
mod distributors;
mod invoices;
mod keys;
pub(crate) use keys::revoke_all_events;
mod plans;
mod profile;
mod reports;
mod webhooks;
mod workers;

pub use admin::{AdminError, AdminService, NewPartner};
pub use assessments::{
    AssessmentError, AssessmentService, BulkRunFailure, BulkRunResult, MAX_BULK_RUNS, RunQuery, TriggerRequest,
};
pub use auth::{AuthError, AuthService};
pub use bulk::BulkItem;
pub use customers::{
    BulkCustomerResult, CustomerDetail, CustomerError, CustomerService, MAX_BULK_CUSTOMERS, RECENT_RUNS,
};
pub use distributors::{
    Activation, BillingDraft, BulkPartnerResult, DistributorError, DistributorService, MAX_BULK_PARTNERS,
    ManagedPartner, PartnerDraft, PartnerPatch, Suspension, UsageReport,
};
pub use invoices::{InvoiceError, InvoiceList, InvoiceService, IssueReport};
pub use keys::{IssuedKey, KeyError, KeyService};
pub use plans::{
    MAX_PLAN_CHANGES_PER_HOUR, PLAN_CHANGE_WINDOW, PlanChangeError, PlanChangeOutcome, PlanChangeRequest, PlanService,
    billing_word,
};
pub use profile::{DistributorProfile, PartnerProfile, ProfileError, ProfileService, UsageSummary};
pub use reports::{
    Analytics, DistributorDashboard, DistributorUsageReport, GroupBy, NEAR_LIMIT_PERCENT, PartnerDashboard,
    PartnerUsageReport, ReportError, ReportService, TOP_N, UsageGroups,
};
pub use webhooks::{ConfiguredEndpoint, ReplayRequest, WebhookError, WebhookService};
pub use workers::{ClaimRequest, Completion, WorkerError, WorkerService};
