use partnerd_domain::run::{Run, RunView};
use partnerd_domain::services::{BulkRunFailure, BulkRunResult, TriggerRequest};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ItemError, timestamp};
use crate::ApiError;

/// A JSON number that must be whole: `3` and `3.0` are 3; `3.5`, `"3"` and out-of-range values
/// are refused with a plain message (the reference calls `maturityTarget` a number).
fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    use serde::de::Error;
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else { return Ok(None) };
    if let Some(i) = n.as_i64() {
        return Ok(Some(i));
    }
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => Ok(Some(f as i64)),
        _ => Err(D::Error::custom("must be a whole number from 1 to 5")),
    }
}

/// `POST …/assessments`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TriggerIn {
    #[schema(example = "cust_3f9a0c1b2d4e5f6a7b8c9d0e")]
    pub customer_id: String,
    #[schema(example = "essential-eight")]
    pub product: String,
    /// Target maturity level, 1–5; defaults to the product's default.
    #[schema(example = 3)]
    #[serde(default, deserialize_with = "whole_number")]
    pub maturity_target: Option<i64>,
}

impl From<TriggerIn> for TriggerRequest {
    fn from(t: TriggerIn) -> Self {
        Self { customer_id: t.customer_id, product: t.product, maturity_target: t.maturity_target }
    }
}

/// A run just queued (`202`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunQueuedOut {
    #[schema(example = "run_3f9a0c1b2d4e5f6a7b8c9d0e")]
    pub id: String,
    pub customer_id: String,
    /// Present when a distributor triggered the run on the partner's behalf.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partner_id: Option<String>,
    pub product: String,
    pub maturity_target: u8,
    #[schema(example = "queued")]
    pub status: String,
    pub created_at: String,
}

impl From<&Run> for RunQueuedOut {
    fn from(r: &Run) -> Self {
        Self {
            id: r.id.to_string(),
            customer_id: r.customer_id.to_string(),
            partner_id: None,
            product: r.product.to_string(),
            maturity_target: r.maturity_target.get(),
            status: r.status.to_string(),
            created_at: timestamp(r.created_at),
        }
    }
}

/// A run with whatever results it has: `score`, `findings`, the four severities and
/// `reportUrl` appear once it has completed; `failureReason` once it has failed.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunOut {
    pub id: String,
    pub customer_id: String,
    pub customer_name: String,
    pub product: String,
    pub maturity_target: u8,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub findings: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub critical: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub high: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub medium: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub low: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
}

impl From<&RunView> for RunOut {
    fn from(v: &RunView) -> Self {
        let r = &v.run;
        let result = r.result.as_ref();
        Self {
            id: r.id.to_string(),
            customer_id: r.customer_id.to_string(),
            customer_name: v.customer_name.clone(),
            product: r.product.to_string(),
            maturity_target: r.maturity_target.get(),
            status: r.status.to_string(),
            score: result.map(|x| x.score),
            findings: result.map(|x| x.findings()),
            critical: result.map(|x| x.critical),
            high: result.map(|x| x.high),
            medium: result.map(|x| x.medium),
            low: result.map(|x| x.low),
            report_url: result.and_then(|x| x.report_url.clone()),
            failure_reason: r.failure_reason.clone(),
            created_at: timestamp(r.created_at),
            started_at: r.started_at.map(timestamp),
            completed_at: r.completed_at.map(timestamp),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunListOut {
    pub runs: Vec<RunOut>,
    /// `true` when `limit` cut the list short: ask again with `starting_after`.
    pub has_more: bool,
}

/// `GET …/assessments` filters (all optional) and pagination.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct RunListQuery {
    /// `YYYY-MM`: runs created in that month (UTC).
    pub month: Option<String>,
    pub product: Option<String>,
    pub customer_id: Option<String>,
    /// At most this many runs (1–1000), newest first; omit for all.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    #[serde(rename = "starting_after")]
    pub starting_after: Option<String>,
}

/// `POST …/assessments/bulk`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BulkTriggerIn {
    pub product: String,
    /// At most 50.
    pub customer_ids: Vec<String>,
    #[serde(default, deserialize_with = "whole_number")]
    pub maturity_target: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BulkRunItemOut {
    pub index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub customer_id: String,
    /// `queued` or `failed`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ItemError>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkRunsOut {
    pub queued: usize,
    pub failed: usize,
    pub runs: Vec<BulkRunItemOut>,
}

impl From<Vec<BulkRunResult>> for BulkRunsOut {
    fn from(results: Vec<BulkRunResult>) -> Self {
        let runs: Vec<BulkRunItemOut> = results
            .into_iter()
            .map(|r| match r.outcome {
                Ok(id) => BulkRunItemOut {
                    index: r.index,
                    id: Some(id.to_string()),
                    customer_id: r.customer_id,
                    status: "queued",
                    error: None,
                },
                Err(failure) => {
                    let error = match failure {
                        BulkRunFailure::CustomerNotFound => ApiError::not_found(),
                        BulkRunFailure::RunLimitReached { limit } => ApiError::run_limit_reached(limit),
                    };
                    BulkRunItemOut {
                        index: r.index,
                        id: None,
                        customer_id: r.customer_id,
                        status: "failed",
                        error: Some(error.into()),
                    }
                }
            })
            .collect();
        let queued = runs.iter().filter(|r| r.status == "queued").count();
        Self { queued, failed: runs.len() - queued, runs }
    }
}
