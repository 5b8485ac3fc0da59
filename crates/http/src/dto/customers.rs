use partnerd_domain::customer::{Customer, CustomerDraft, CustomerPatch};
use partnerd_domain::run::Run;
use partnerd_domain::services::CustomerDetail;
use partnerd_domain::values::Email;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use super::{BulkRow, ItemError, timestamp};
use crate::ApiError;

/// `POST …/customers` (also one item of `POST …/customers/bulk`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomerIn {
    /// Display name for the customer organisation.
    #[schema(example = "Contoso Ltd")]
    pub name: String,
    /// Microsoft 365 tenant ID (a GUID).
    #[schema(example = "d4f5a678-1234-5678-9abc-def012345678")]
    pub tenant_id: String,
    pub email: Option<String>,
    /// Addresses that receive assessment report notifications.
    pub receivers: Option<Vec<String>>,
    /// Addresses that receive questionnaire invitations.
    pub questionnaire_recipients: Option<Vec<String>>,
}

impl From<CustomerIn> for CustomerDraft {
    fn from(c: CustomerIn) -> Self {
        Self {
            name: Some(c.name),
            tenant_id: Some(c.tenant_id),
            email: c.email,
            receivers: c.receivers,
            questionnaire_recipients: c.questionnaire_recipients,
        }
    }
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
pub(super) fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// `PUT …/customers/{id}`: only the fields sent change; `"email": null` clears the e-mail.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomerPatchIn {
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub tenant_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<String>>)]
    pub receivers: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<String>>)]
    pub questionnaire_recipients: Option<Option<Vec<String>>>,
}

pub(super) fn not_null<T>(field: &str, value: Option<Option<T>>) -> Result<Option<T>, ApiError> {
    match value {
        Some(None) => Err(ApiError::invalid_field(field, "must not be null")),
        Some(Some(v)) => Ok(Some(v)),
        None => Ok(None),
    }
}

impl CustomerPatchIn {
    pub fn into_patch(self) -> Result<CustomerPatch, ApiError> {
        Ok(CustomerPatch {
            name: not_null("name", self.name)?,
            tenant_id: not_null("tenantId", self.tenant_id)?,
            email: self.email,
            receivers: not_null("receivers", self.receivers)?,
            questionnaire_recipients: not_null("questionnaireRecipients", self.questionnaire_recipients)?,
        })
    }
}

fn addresses(list: &[Email]) -> Vec<String> {
    list.iter().map(|e| e.as_str().to_owned()).collect()
}

/// A customer in a list.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomerSummaryOut {
    #[schema(example = "cust_3f9a0c1b2d4e5f6a7b8c9d0e")]
    pub id: String,
    pub name: String,
    pub tenant_id: String,
    pub email: Option<String>,
    pub created_at: String,
}

impl From<&Customer> for CustomerSummaryOut {
    fn from(c: &Customer) -> Self {
        Self {
            id: c.id.to_string(),
            name: c.name.as_str().to_owned(),
            tenant_id: c.tenant_id.as_str().to_owned(),
            email: c.email.as_ref().map(|e| e.as_str().to_owned()),
            created_at: timestamp(c.created_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerListOut {
    pub customers: Vec<CustomerSummaryOut>,
    /// `true` when `limit` cut the list short: ask again with `starting_after`.
    pub has_more: bool,
}

/// A customer with its receiver lists, as created or updated.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomerOut {
    pub id: String,
    pub name: String,
    pub tenant_id: String,
    pub email: Option<String>,
    pub receivers: Vec<String>,
    pub questionnaire_recipients: Vec<String>,
    /// Set when the customer was created on a partner's behalf by its distributor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partner_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl CustomerOut {
    pub fn new(c: &Customer) -> Self {
        Self {
            id: c.id.to_string(),
            name: c.name.as_str().to_owned(),
            tenant_id: c.tenant_id.as_str().to_owned(),
            email: c.email.as_ref().map(|e| e.as_str().to_owned()),
            receivers: addresses(&c.receivers),
            questionnaire_recipients: addresses(&c.questionnaire_recipients),
            partner_id: None,
            created_at: timestamp(c.created_at),
            updated_at: timestamp(c.updated_at),
        }
    }
}

/// A run in a customer's history.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecentRunOut {
    pub id: String,
    pub product: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<u8>,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
}

impl From<&Run> for RecentRunOut {
    fn from(r: &Run) -> Self {
        Self {
            id: r.id.to_string(),
            product: r.product.to_string(),
            status: r.status.to_string(),
            score: r.result.as_ref().map(|x| x.score),
            created_at: timestamp(r.created_at),
            completed_at: r.completed_at.map(timestamp),
        }
    }
}

/// `GET …/customers/{id}`: the customer with its five newest runs.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomerDetailOut {
    #[serde(flatten)]
    pub customer: CustomerOut,
    pub recent_runs: Vec<RecentRunOut>,
}

impl From<CustomerDetail> for CustomerDetailOut {
    fn from(d: CustomerDetail) -> Self {
        Self { customer: CustomerOut::new(&d.customer), recent_runs: d.recent_runs.iter().map(Into::into).collect() }
    }
}

/// `POST …/customers/bulk`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkCustomersIn {
    /// At most 100; each item is a customer as for `POST …/customers`.
    #[schema(value_type = Vec<CustomerIn>)]
    pub customers: Vec<serde_json::Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkCustomerItemOut {
    pub index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `created` or `failed`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ItemError>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkCustomersOut {
    pub created: usize,
    pub failed: usize,
    pub customers: Vec<BulkCustomerItemOut>,
}

impl BulkCustomersOut {
    pub fn new(rows: Vec<BulkRow>) -> Self {
        let customers: Vec<BulkCustomerItemOut> = rows
            .into_iter()
            .map(|r| {
                let (id, error) = match r.outcome {
                    Ok(id) => (Some(id), None),
                    Err(e) => (None, Some(e)),
                };
                let status = if id.is_some() { "created" } else { "failed" };
                BulkCustomerItemOut { index: r.index, id, name: r.label, status, error }
            })
            .collect();
        let created = customers.iter().filter(|i| i.id.is_some()).count();
        Self { created, failed: customers.len() - created, customers }
    }
}
