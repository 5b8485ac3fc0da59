//! A partner's customers: the organisations it runs assessments against.

use time::OffsetDateTime;

use crate::ids::{CustomerId, PartnerId};
use crate::values::{DisplayName, Email, TenantId};

/// Most addresses a customer's receiver lists may hold.
pub const MAX_RECIPIENTS: usize = 50;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    pub id: CustomerId,
    pub partner_id: PartnerId,
    pub name: DisplayName,
    pub tenant_id: TenantId,
    pub email: Option<Email>,
    /// Addresses that receive assessment report notifications.
    pub receivers: Vec<Email>,
    /// Addresses that receive questionnaire invitations.
    pub questionnaire_recipients: Vec<Email>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// A partial update: `None` leaves a field unchanged; `Some(None)` clears the optional e-mail.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerChanges {
    pub name: Option<DisplayName>,
    pub tenant_id: Option<TenantId>,
    pub email: Option<Option<Email>>,
    pub receivers: Option<Vec<Email>>,
    pub questionnaire_recipients: Option<Vec<Email>>,
}

impl CustomerChanges {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Applies the changes, stamping `updated_at`.
    pub fn apply_to(self, customer: &mut Customer, now: OffsetDateTime) {
        if let Some(name) = self.name {
            customer.name = name;
        }
        if let Some(tenant_id) = self.tenant_id {
            customer.tenant_id = tenant_id;
        }
        if let Some(email) = self.email {
            customer.email = email;
        }
        if let Some(receivers) = self.receivers {
            customer.receivers = receivers;
        }
        if let Some(recipients) = self.questionnaire_recipients {
            customer.questionnaire_recipients = recipients;
        }
        customer.updated_at = now;
    }
}
