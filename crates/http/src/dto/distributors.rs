use partnerd_domain::account::Partner;
use partnerd_domain::ports::PartnerListing;
use partnerd_domain::services::{
    Activation, BillingDraft, ManagedPartner, PartnerDraft, PartnerPatch, Suspension, UsageReport,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::customers::{not_null, present};
use super::{BulkRow, ItemError, PartnerUsageOut, timestamp};
use crate::ApiError;

/// `billing` on the wire: currency upper case, interval `monthly | quarterly | annual`.
#[derive(Debug, Serialize, ToSchema)]
pub struct BillingOut {
    #[schema(example = "AUD")]
    pub currency: String,
    #[schema(example = "quarterly")]
    pub interval: String,
}

impl BillingOut {
    fn of(p: &Partner) -> Self {
        Self {
            currency: p.subscription.currency.code().to_owned(),
            interval: p.subscription.interval.as_str().to_owned(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BillingIn {
    /// ISO 4217: AUD, USD, GBP, EUR, NZD or SGD.
    pub currency: String,
    /// `quarterly` (default), `annual` or `monthly`.
    pub interval: Option<String>,
}

/// `POST /v1/distributor/partners` (also one item of `…/partners/bulk`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartnerIn {
    #[schema(example = "admin@newmsp.com")]
    pub email: String,
    #[schema(example = "New MSP Pty Ltd")]
    pub company: String,
    /// The partner admin's name.
    #[schema(example = "Jane Smith")]
    pub name: String,
    #[schema(example = "professional")]
    pub plan: String,
    pub billing: BillingIn,
}

impl From<PartnerIn> for PartnerDraft {
    fn from(p: PartnerIn) -> Self {
        Self {
            email: Some(p.email),
            company: Some(p.company),
            name: Some(p.name),
            plan: Some(p.plan),
            billing: Some(BillingDraft { currency: Some(p.billing.currency), interval: p.billing.interval }),
        }
    }
}

/// A partner just provisioned (status `pending`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PartnerCreatedOut {
    pub id: String,
    pub company: String,
    pub email: String,
    pub plan: String,
    pub status: String,
    pub billing: BillingOut,
    pub created_at: String,
}

impl From<&Partner> for PartnerCreatedOut {
    fn from(p: &Partner) -> Self {
        Self {
            id: p.id.to_string(),
            company: p.company.as_str().to_owned(),
            email: p.email.as_str().to_owned(),
            plan: p.plan().to_string(),
            status: p.status.to_string(),
            billing: BillingOut::of(p),
            created_at: timestamp(p.created_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PartnerSummaryOut {
    pub id: String,
    pub company: String,
    pub email: String,
    pub plan: String,
    pub status: String,
    pub customers_count: u64,
    pub created_at: String,
}

impl From<&PartnerListing> for PartnerSummaryOut {
    fn from(l: &PartnerListing) -> Self {
        let p = &l.partner;
        Self {
            id: p.id.to_string(),
            company: p.company.as_str().to_owned(),
            email: p.email.as_str().to_owned(),
            plan: p.plan().to_string(),
            status: p.status.to_string(),
            customers_count: l.customers_count,
            created_at: timestamp(p.created_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PartnerListOut {
    pub partners: Vec<PartnerSummaryOut>,
    pub has_more: bool,
}

/// `GET /v1/distributor/partners?status=` and pagination.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PartnerListQuery {
    /// `active`, `suspended` or `pending`.
    pub status: Option<String>,
    /// At most this many partners (1–1000); omit for all.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// The id of the last partner of the previous page.
    pub starting_after: Option<String>,
}

/// `GET /v1/distributor/partners/{id}`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PartnerDetailOut {
    pub id: String,
    pub company: String,
    pub email: String,
    pub name: String,
    pub plan: String,
    pub status: String,
    pub billing: BillingOut,
    pub usage: PartnerUsageOut,
    pub created_at: String,
}

impl From<&ManagedPartner> for PartnerDetailOut {
    fn from(m: &ManagedPartner) -> Self {
        let p = &m.partner;
        Self {
            id: p.id.to_string(),
            company: p.company.as_str().to_owned(),
            email: p.email.as_str().to_owned(),
            name: p.name.as_str().to_owned(),
            plan: p.plan().to_string(),
            status: p.status.to_string(),
            billing: BillingOut::of(p),
            usage: PartnerUsageOut {
                month: m.usage.month.to_string(),
                runs_used: m.usage.runs_used,
                runs_limit: m.usage.runs_limit.as_wire(),
                customers_count: m.usage.customers_count,
            },
            created_at: timestamp(p.created_at),
        }
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BillingPatchIn {
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub currency: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub interval: Option<Option<String>>,
}

/// `PUT /v1/distributor/partners/{id}`: only what is sent changes; `billing` is merged. A field
/// sent as `null` is refused (nothing here can be cleared).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartnerPatchIn {
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub company: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub plan: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<BillingPatchIn>)]
    pub billing: Option<Option<BillingPatchIn>>,
}

impl PartnerPatchIn {
    pub fn into_patch(self) -> Result<PartnerPatch, ApiError> {
        let billing = not_null("billing", self.billing)?
            .map(|b| {
                Ok::<_, ApiError>(BillingDraft {
                    currency: not_null("billing.currency", b.currency)?,
                    interval: not_null("billing.interval", b.interval)?,
                })
            })
            .transpose()?;
        Ok(PartnerPatch {
            company: not_null("company", self.company)?,
            email: not_null("email", self.email)?,
            name: not_null("name", self.name)?,
            plan: not_null("plan", self.plan)?,
            billing,
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PartnerUpdatedOut {
    pub id: String,
    pub company: String,
    pub email: String,
    pub name: String,
    pub plan: String,
    pub billing: BillingOut,
    pub updated_at: String,
}

impl From<&Partner> for PartnerUpdatedOut {
    fn from(p: &Partner) -> Self {
        Self {
            id: p.id.to_string(),
            company: p.company.as_str().to_owned(),
            email: p.email.as_str().to_owned(),
            name: p.name.as_str().to_owned(),
            plan: p.plan().to_string(),
            billing: BillingOut::of(p),
            updated_at: timestamp(p.updated_at),
        }
    }
}

/// `POST …/partners/{id}/activate` (and `/reactivate`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActivatedOut {
    pub id: String,
    #[schema(example = "active")]
    pub status: &'static str,
    pub activated_at: String,
    /// A fresh slot-1 key when the partner had no active key (first activation, or after a
    /// suspension revoked its keys): shown only in this response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl From<Activation> for ActivatedOut {
    fn from(a: Activation) -> Self {
        Self {
            id: a.partner.to_string(),
            status: "active",
            activated_at: timestamp(a.activated_at),
            key: a.key.map(|k| k.reveal().to_owned()),
        }
    }
}

/// `POST …/partners/{id}/suspend`: the body is optional.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SuspendIn {
    /// Why, kept with the partner and sent in the `partner.suspended` event.
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SuspendedOut {
    pub id: String,
    #[schema(example = "suspended")]
    pub status: &'static str,
    pub suspended_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl From<Suspension> for SuspendedOut {
    fn from(s: Suspension) -> Self {
        Self {
            id: s.partner.to_string(),
            status: "suspended",
            suspended_at: timestamp(s.suspended_at),
            reason: s.reason,
        }
    }
}

/// `GET /v1/distributor/usage?month=`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MonthQuery {
    /// `YYYY-MM`; defaults to the current month (UTC).
    pub month: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PartnerUsageLineOut {
    pub partner_id: String,
    pub company: String,
    /// Runs counted against the partner's limit in the month.
    pub runs: u64,
    pub customers: u64,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DistributorUsageReportOut {
    pub month: String,
    pub total_partners: usize,
    pub active_partners: usize,
    pub total_customers: u64,
    pub total_runs: u64,
    pub by_partner: Vec<PartnerUsageLineOut>,
}

impl From<&UsageReport> for DistributorUsageReportOut {
    fn from(r: &UsageReport) -> Self {
        Self {
            month: r.month.to_string(),
            total_partners: r.partners.len(),
            active_partners: r.partners.iter().filter(|p| p.status.is_active()).count(),
            total_customers: r.partners.iter().map(|p| p.customers).sum(),
            total_runs: r.partners.iter().map(|p| p.runs).sum(),
            by_partner: r
                .partners
                .iter()
                .map(|p| PartnerUsageLineOut {
                    partner_id: p.partner_id.to_string(),
                    company: p.company.clone(),
                    runs: p.runs,
                    customers: p.customers,
                })
                .collect(),
        }
    }
}

/// `POST /v1/distributor/partners/bulk`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkPartnersIn {
    /// At most 50; each item as for `POST …/partners`.
    #[schema(value_type = Vec<PartnerIn>)]
    pub partners: Vec<serde_json::Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkPartnerItemOut {
    pub index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    /// `pending` (provisioned, as in the reference) or `failed`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ItemError>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkPartnersOut {
    pub created: usize,
    pub failed: usize,
    pub partners: Vec<BulkPartnerItemOut>,
}

impl BulkPartnersOut {
    /// Provisioned items answer `pending`, the partner's status, as in the reference.
    pub fn new(rows: Vec<BulkRow>) -> Self {
        let partners: Vec<BulkPartnerItemOut> = rows
            .into_iter()
            .map(|r| {
                let (id, error) = match r.outcome {
                    Ok(id) => (Some(id), None),
                    Err(e) => (None, Some(e)),
                };
                let status = if id.is_some() { "pending" } else { "failed" };
                BulkPartnerItemOut { index: r.index, id, company: r.label, status, error }
            })
            .collect();
        let created = partners.iter().filter(|i| i.id.is_some()).count();
        Self { created, failed: partners.len() - created, partners }
    }
}
