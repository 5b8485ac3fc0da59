//! The worker protocol's wire types.

use partnerd_domain::run::{ClaimedRun, RunView};
use partnerd_domain::services::{ClaimRequest, Completion};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{RunOut, timestamp};

/// `POST /v1/worker/runs/claim` (the body may be omitted).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClaimIn {
    /// Products this worker executes; absent or empty means any product.
    #[schema(example = json!(["essential-eight", "nist-csf"]))]
    pub products: Option<Vec<String>>,
    /// How long the claim holds the run unless renewed: 10–3600, default 300.
    #[schema(example = 300)]
    pub lease_seconds: Option<i64>,
}

impl From<ClaimIn> for ClaimRequest {
    fn from(c: ClaimIn) -> Self {
        Self { products: c.products, lease_seconds: c.lease_seconds }
    }
}

/// `POST /v1/worker/runs/{id}/heartbeat` (the body may be omitted).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeartbeatIn {
    /// The lease from now: 10–3600, default 300.
    pub lease_seconds: Option<i64>,
}

/// `POST /v1/worker/runs/{id}/complete`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CompleteIn {
    /// 0–100.
    #[schema(example = 72)]
    pub score: Option<i64>,
    /// Findings by severity, each ≥ 0 (default 0); `findings` is their sum.
    #[schema(example = 2)]
    pub critical: Option<i64>,
    #[schema(example = 5)]
    pub high: Option<i64>,
    #[schema(example = 4)]
    pub medium: Option<i64>,
    #[schema(example = 3)]
    pub low: Option<i64>,
    /// Where the report is: an absolute http(s) URL.
    pub report_url: Option<String>,
}

impl From<CompleteIn> for Completion {
    fn from(c: CompleteIn) -> Self {
        Self {
            score: c.score,
            critical: c.critical,
            high: c.high,
            medium: c.medium,
            low: c.low,
            report_url: c.report_url,
        }
    }
}

/// `POST /v1/worker/runs/{id}/fail`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FailIn {
    /// Why the run failed (kept to 2,000 characters), shown to the partner.
    #[schema(example = "scanner exited with status 2: tenant consent missing")]
    pub reason: Option<String>,
}

/// What a worker needs to execute a run.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkRunOut {
    pub id: String,
    pub customer_id: String,
    pub customer_name: String,
    /// The customer's Microsoft 365 tenant.
    pub tenant_id: String,
    pub partner_id: String,
    #[schema(example = "essential-eight")]
    pub product: String,
    pub maturity_target: u8,
}

/// A claimed run and its lease.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClaimOut {
    pub run: WorkRunOut,
    pub lease_expires_at: String,
}

impl From<&ClaimedRun> for ClaimOut {
    fn from(c: &ClaimedRun) -> Self {
        let r = &c.run;
        Self {
            run: WorkRunOut {
                id: r.id.to_string(),
                customer_id: r.customer_id.to_string(),
                customer_name: c.customer_name.clone(),
                tenant_id: c.tenant_id.as_str().to_owned(),
                partner_id: r.partner_id.to_string(),
                product: r.product.to_string(),
                maturity_target: r.maturity_target.get(),
            },
            lease_expires_at: timestamp(c.lease_expires_at),
        }
    }
}

impl From<&ClaimedRun> for WorkerRunOut {
    fn from(held: &ClaimedRun) -> Self {
        let view = RunView { run: held.run.clone(), customer_name: held.customer_name.clone() };
        Self { run: RunOut::from(&view), lease_expires_at: Some(timestamp(held.lease_expires_at)) }
    }
}

/// A run as the partner sees it, after a worker acted on it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkerRunOut {
    pub run: RunOut,
    /// Present while the run is held (heartbeat).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_expires_at: Option<String>,
}
