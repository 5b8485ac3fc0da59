use partnerd_domain::billing::{Proration, ProrationKind};
use partnerd_domain::catalog::{Catalog, Plan};
use partnerd_domain::services::{IssuedKey, PlanChangeOutcome, PlanChangeRequest, billing_word};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::timestamp;

/// `GET …/products`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProductsOut {
    pub products: Vec<ProductOut>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductOut {
    #[schema(example = "essential-eight")]
    pub id: String,
    pub name: String,
    pub category: String,
    /// Typical run time in seconds.
    pub estimated_duration: u32,
}

impl ProductsOut {
    pub fn of(catalog: &Catalog, plan: Option<&Plan>) -> Self {
        let products = plan
            .map(|p| {
                catalog
                    .products_of(p)
                    .map(|x| ProductOut {
                        id: x.id.to_string(),
                        name: x.name.clone(),
                        category: x.category.clone(),
                        estimated_duration: x.estimated_duration,
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self { products }
    }
}

/// A key just generated: shown this once.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyOut {
    pub slot: u8,
    #[schema(example = "pk_live_…")]
    pub key: String,
    pub created_at: String,
}

impl From<IssuedKey> for KeyOut {
    fn from(k: IssuedKey) -> Self {
        Self { slot: k.slot.get(), key: k.key.reveal().to_owned(), created_at: timestamp(k.created_at) }
    }
}

/// `POST …/plan`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanChangeIn {
    /// `starter`, `professional` or `enterprise`.
    #[schema(example = "professional")]
    pub plan: String,
    /// `monthly`, `quarterly` or `rolling` (annual); defaults to the current interval.
    #[schema(example = "monthly")]
    pub billing: Option<String>,
    /// `usd`, `aud`, `gbp`, `eur`, `nzd` or `sgd`, either case; defaults to the current currency.
    #[schema(example = "usd")]
    pub currency: Option<String>,
}

impl From<PlanChangeIn> for PlanChangeRequest {
    fn from(p: PlanChangeIn) -> Self {
        Self { plan: p.plan, billing: p.billing, currency: p.currency }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanChangeOut {
    pub partner_id: String,
    pub plan: String,
    /// `monthly`, `quarterly` or `rolling` (annual).
    pub billing: &'static str,
    /// Lower case, as in the reference.
    pub currency: String,
    /// Runs per month; `-1` is unlimited.
    pub run_limit: i64,
    pub subscription_status: &'static str,
    pub current_period_end: String,
}

impl From<&PlanChangeOutcome> for PlanChangeOut {
    fn from(o: &PlanChangeOutcome) -> Self {
        let s = &o.subscription;
        Self {
            partner_id: o.partner.to_string(),
            plan: s.plan.to_string(),
            billing: billing_word(s.interval),
            currency: s.currency.code().to_ascii_lowercase(),
            run_limit: o.run_limit.as_wire(),
            subscription_status: "active",
            current_period_end: timestamp(s.period_end),
        }
    }
}

/// A proration line a plan change creates (or would create).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProrationLineOut {
    /// `unused_time` (a credit) or `remaining_time` (a charge).
    pub kind: &'static str,
    pub description: String,
    /// Decimal string with two decimals; negative for a credit.
    #[schema(example = "-74.50")]
    pub amount: String,
    pub currency: String,
    pub period_start: String,
    pub period_end: String,
}

/// `POST …/plan/preview`: what a change would bill, changing nothing.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanPreviewOut {
    pub plan: String,
    pub billing: &'static str,
    pub currency: String,
    pub current_period_end: String,
    pub lines: Vec<ProrationLineOut>,
}

impl From<&Proration> for PlanPreviewOut {
    fn from(p: &Proration) -> Self {
        let s = &p.subscription;
        Self {
            plan: s.plan.to_string(),
            billing: billing_word(s.interval),
            currency: s.currency.code().to_ascii_lowercase(),
            current_period_end: timestamp(s.period_end),
            lines: p
                .lines
                .iter()
                .map(|l| ProrationLineOut {
                    kind: match l.kind {
                        ProrationKind::UnusedTime => "unused_time",
                        ProrationKind::RemainingTime => "remaining_time",
                    },
                    description: l.description.clone(),
                    amount: l.amount.to_decimal_string(),
                    currency: l.amount.currency().code().to_owned(),
                    period_start: timestamp(l.period_start),
                    period_end: timestamp(l.period_end),
                })
                .collect(),
        }
    }
}
