//! A partner's customers: the organisations it runs assessments against.

use time::OffsetDateTime;

use crate::ids::{CustomerId, PartnerId};
use crate::values::{DisplayName, Email, FieldError, TenantId};

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

/// A customer as submitted, before validation. Absent required fields are reported as
/// [`FieldError::Missing`], so one bad item of a bulk request fails alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerDraft {
    pub name: Option<String>,
    pub tenant_id: Option<String>,
    pub email: Option<String>,
    pub receivers: Option<Vec<String>>,
    pub questionnaire_recipients: Option<Vec<String>>,
}

/// A partial update as submitted: `None` leaves a field as it is. For `email`, `Some(None)`
/// (an explicit `null`) clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerPatch {
    pub name: Option<String>,
    pub tenant_id: Option<String>,
    pub email: Option<Option<String>>,
    pub receivers: Option<Vec<String>>,
    pub questionnaire_recipients: Option<Vec<String>>,
}

fn recipients(field: &str, raw: Vec<String>) -> Result<Vec<Email>, FieldError> {
    if raw.len() > MAX_RECIPIENTS {
        return Err(FieldError::invalid(field, format!("must list at most {MAX_RECIPIENTS} addresses")));
    }
    raw.iter().enumerate().map(|(i, a)| FieldError::check(&format!("{field}[{i}]"), a, Email::parse)).collect()
}

impl CustomerDraft {
    /// Validates the draft into a new customer of `partner`.
    pub fn validate(self, id: CustomerId, partner: PartnerId, now: OffsetDateTime) -> Result<Customer, FieldError> {
        let name = self.name.ok_or_else(|| FieldError::Missing("name".into()))?;
        let tenant_id = self.tenant_id.ok_or_else(|| FieldError::Missing("tenantId".into()))?;
        Ok(Customer {
            id,
            partner_id: partner,
            name: FieldError::check("name", &name, DisplayName::parse)?,
            tenant_id: FieldError::check("tenantId", &tenant_id, TenantId::parse)?,
            email: self.email.map(|e| FieldError::check("email", &e, Email::parse)).transpose()?,
            receivers: recipients("receivers", self.receivers.unwrap_or_default())?,
            questionnaire_recipients: recipients(
                "questionnaireRecipients",
                self.questionnaire_recipients.unwrap_or_default(),
            )?,
            created_at: now,
            updated_at: now,
        })
    }
}

impl CustomerPatch {
    pub fn validate(self) -> Result<CustomerChanges, FieldError> {
        Ok(CustomerChanges {
            name: self.name.map(|n| FieldError::check("name", &n, DisplayName::parse)).transpose()?,
            tenant_id: self.tenant_id.map(|t| FieldError::check("tenantId", &t, TenantId::parse)).transpose()?,
            email: self
                .email
                .map(|e| e.map(|e| FieldError::check("email", &e, Email::parse)).transpose())
                .transpose()?,
            receivers: self.receivers.map(|r| recipients("receivers", r)).transpose()?,
            questionnaire_recipients: self
                .questionnaire_recipients
                .map(|r| recipients("questionnaireRecipients", r))
                .transpose()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::IdGenerator;
    use crate::testing::SequentialIds;
    use time::macros::datetime;

    fn draft() -> CustomerDraft {
        CustomerDraft {
            name: Some("Contoso Ltd".into()),
            tenant_id: Some("d4f5a678-1234-5678-9abc-def012345678".into()),
            email: Some("it@contoso.com".into()),
            receivers: Some(vec!["ciso@contoso.com".into(), "it@contoso.com".into()]),
            questionnaire_recipients: Some(vec!["ciso@contoso.com".into()]),
        }
    }

    fn validate(d: CustomerDraft) -> Result<Customer, FieldError> {
        let ids = SequentialIds::default();
        d.validate(
            CustomerId::generate(&ids as &dyn IdGenerator),
            PartnerId::generate(&ids),
            datetime!(2026-04-03 10:00 UTC),
        )
    }

    #[test]
    fn the_reference_example_is_valid() {
        let c = validate(draft()).unwrap();
        assert_eq!(c.name.as_str(), "Contoso Ltd");
        assert_eq!(c.receivers.len(), 2);
    }

    #[test]
    fn missing_and_invalid_fields_are_named() {
        assert_eq!(validate(CustomerDraft { name: None, ..draft() }), Err(FieldError::Missing("name".into())));
        assert_eq!(validate(CustomerDraft { tenant_id: None, ..draft() }), Err(FieldError::Missing("tenantId".into())));
        let bad_guid = validate(CustomerDraft { tenant_id: Some("nope".into()), ..draft() });
        assert!(matches!(bad_guid, Err(FieldError::Invalid { field, .. }) if field == "tenantId"));
        let bad_receiver = validate(CustomerDraft { receivers: Some(vec!["a@b.com".into(), "x".into()]), ..draft() });
        assert!(matches!(bad_receiver, Err(FieldError::Invalid { field, .. }) if field == "receivers[1]"));
        let too_many = validate(CustomerDraft { receivers: Some(vec!["a@b.com".into(); 51]), ..draft() });
        assert!(matches!(too_many, Err(FieldError::Invalid { field, .. }) if field == "receivers"));
    }

    #[test]
    fn a_patch_changes_only_what_it_names_and_null_clears_the_email() {
        let mut c = validate(draft()).unwrap();
        let before = c.clone();
        let later = datetime!(2026-04-03 10:05 UTC);
        let patch = CustomerPatch { name: Some("Contoso Corporation".into()), email: Some(None), ..Default::default() };
        patch.validate().unwrap().apply_to(&mut c, later);
        assert_eq!(c.name.as_str(), "Contoso Corporation");
        assert_eq!(c.email, None);
        assert_eq!((c.tenant_id.clone(), c.receivers.clone()), (before.tenant_id, before.receivers));
        assert_eq!(c.updated_at, later);
        assert!(CustomerPatch { name: Some(" ".into()), ..Default::default() }.validate().is_err());
    }
}
