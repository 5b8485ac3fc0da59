//! The webhook payload, described for the OpenAPI document (`components/schemas`). partnerd
//! builds the real body in the webhooks crate from the event's stored data; these types exist so
//! that receivers can see every event's `data` in the document, and the tests below keep their
//! names in step with the domain's event types.

use serde::Serialize;
use utoipa::ToSchema;

/// The body of every webhook `POST`: `{id, type, timestamp, data}`. The same bytes are sent on
/// every attempt and every retry of one event to one endpoint.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "evt_5f0c6d1e2a3b4c5d6e7f8091",
    "type": "customer.created",
    "timestamp": "2026-04-03T08:15:22Z",
    "data": {
        "customerId": "cust_892ba6a35a1d8e620bf80f70",
        "name": "Contoso Ltd",
        "tenantId": "d4f5a678-1234-5678-9abc-def012345678",
        "email": "it@contoso.com"
    }
}))]
pub struct WebhookEvent {
    /// The event id (`evt_` and 24 hex digits): also the `webhook-id` header, the same on every
    /// retry. De-duplicate on it: delivery is at least once.
    #[schema(example = "evt_5f0c6d1e2a3b4c5d6e7f8091")]
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: WebhookEventType,
    /// When the event happened (RFC 3339, UTC, to the second). Not the time of the attempt:
    /// that is the `webhook-timestamp` header.
    #[schema(format = DateTime, example = "2026-04-03T08:15:22Z")]
    pub timestamp: String,
    /// The event's fields; which schema depends on `type`.
    pub data: WebhookEventData,
}

/// Every event type partnerd sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub enum WebhookEventType {
    /// A worker started a run (its first claim). Data: `AssessmentEventData`.
    #[serde(rename = "assessment.started")]
    AssessmentStarted,
    /// A worker completed a run. Data: `AssessmentEventData` with `score`.
    #[serde(rename = "assessment.completed")]
    AssessmentCompleted,
    /// A run failed (a worker reported failure, or it ran out of attempts). Data:
    /// `AssessmentEventData` with `error`.
    #[serde(rename = "assessment.failed")]
    AssessmentFailed,
    /// Data: `CustomerEventData`.
    #[serde(rename = "customer.created")]
    CustomerCreated,
    /// Data: `CustomerEventData`.
    #[serde(rename = "customer.updated")]
    CustomerUpdated,
    /// Data: `CustomerDeletedData`.
    #[serde(rename = "customer.deleted")]
    CustomerDeleted,
    /// To the partner's distributor only. Data: `PartnerStatusEventData`.
    #[serde(rename = "partner.activated")]
    PartnerActivated,
    /// To the partner's distributor only. Data: `PartnerStatusEventData` with `reason`.
    #[serde(rename = "partner.suspended")]
    PartnerSuspended,
    /// Data: `KeyEventData`.
    #[serde(rename = "key.created")]
    KeyCreated,
    /// Data: `KeyEventData`.
    #[serde(rename = "key.revoked")]
    KeyRevoked,
    /// To the partner and to its distributor. Data: `UsageThresholdData`.
    #[serde(rename = "usage.threshold_reached")]
    UsageThresholdReached,
}

impl WebhookEventType {
    pub const ALL: [Self; 11] = [
        Self::AssessmentStarted,
        Self::AssessmentCompleted,
        Self::AssessmentFailed,
        Self::CustomerCreated,
        Self::CustomerUpdated,
        Self::CustomerDeleted,
        Self::PartnerActivated,
        Self::PartnerSuspended,
        Self::KeyCreated,
        Self::KeyRevoked,
        Self::UsageThresholdReached,
    ];
}

/// An event's `data`: one of these, as `type` says.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum WebhookEventData {
    Customer(CustomerEventData),
    CustomerDeleted(CustomerDeletedData),
    PartnerStatus(PartnerStatusEventData),
    Key(KeyEventData),
    UsageThreshold(UsageThresholdData),
    Assessment(AssessmentEventData),
}

/// `customer.created` and `customer.updated`: the customer as it is after the change. Sent to
/// the customer's partner, whoever made the change (the partner or its distributor).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomerEventData {
    #[schema(example = "cust_892ba6a35a1d8e620bf80f70")]
    pub customer_id: String,
    #[schema(example = "Contoso Ltd")]
    pub name: String,
    /// The Microsoft 365 tenant id, lower case.
    #[schema(example = "d4f5a678-1234-5678-9abc-def012345678")]
    pub tenant_id: String,
    /// The primary contact; `null` when the customer has none (always present).
    #[schema(required = true, example = "it@contoso.com")]
    pub email: Option<String>,
}

/// `customer.deleted`: only the id (the customer and its runs are gone). Sent to the partner.
// Closed (`additionalProperties: false`) so that a `customer.created` payload does not match it
// too: `data` is exactly one of its schemas.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomerDeletedData {
    #[schema(example = "cust_892ba6a35a1d8e620bf80f70")]
    pub customer_id: String,
}

/// `partner.activated` and `partner.suspended`: a partner's new status. Sent to the partner's
/// distributor only (a direct partner's status changes are sent nowhere).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PartnerStatusEventData {
    #[schema(example = "prt_009cb6a5d1bc89d0a7895c55")]
    pub partner_id: String,
    #[schema(example = "New MSP Pty Ltd")]
    pub company: String,
    /// `active` for `partner.activated`, `suspended` for `partner.suspended`.
    #[schema(example = "suspended")]
    pub status: PartnerStatusValue,
    /// `partner.suspended` only: the reason given with the suspension, `null` when none was.
    /// Absent from `partner.activated`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "Unpaid invoice")]
    pub reason: Option<String>,
}

/// A partner's status as the `partner.*` events report it.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PartnerStatusValue {
    Active,
    Suspended,
}

/// `key.created` and `key.revoked`: which of the partner's two key slots changed. Never the key
/// itself. Sent to the partner.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyEventData {
    #[schema(example = "prt_2f5309b175532e3a1ab69b2e")]
    pub partner_id: String,
    /// The key slot: 1 or 2.
    #[schema(minimum = 1, maximum = 2, example = 2)]
    pub slot: u8,
}

/// `usage.threshold_reached`: the partner's runs this month reached 80 % or 100 % of its plan's
/// monthly limit. Sent once per threshold per month, to the partner and to its distributor;
/// never for an unlimited plan.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageThresholdData {
    #[schema(example = "prt_2f5309b175532e3a1ab69b2e")]
    pub partner_id: String,
    /// The usage month, `YYYY-MM` (UTC).
    #[schema(example = "2026-04")]
    pub month: String,
    /// The percentage reached: 80 or 100.
    #[schema(example = 80)]
    pub threshold: u8,
    /// The run count at which the threshold is reached: `ceil(runsLimit × threshold / 100)`,
    /// at least 1. Usage may already be past it when a bulk trigger crosses the threshold.
    #[schema(example = 160)]
    pub runs_used: u32,
    /// The plan's monthly run limit.
    #[schema(example = 200)]
    pub runs_limit: u32,
}

/// `assessment.started`, `assessment.completed` and `assessment.failed`: a run as a worker
/// moved it. Sent to the run's partner.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({
    "assessmentId": "run_x9y8z7w6",
    "customerId": "cust_abc123",
    "product": "essential-eight",
    "status": "completed",
    "score": 72,
    "findings": 14
}))]
pub struct AssessmentEventData {
    /// The run id.
    #[schema(example = "run_5c8056a91e251e4d95fcd661")]
    pub assessment_id: String,
    #[schema(example = "cust_892ba6a35a1d8e620bf80f70")]
    pub customer_id: String,
    #[schema(example = "essential-eight")]
    pub product: String,
    /// `running` (started), `completed` or `failed`.
    #[schema(example = "completed")]
    pub status: AssessmentStatusValue,
    /// `assessment.completed` only: the score, 0–100.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 100, example = 72)]
    pub score: Option<u8>,
    /// `assessment.completed` only: the findings the worker reported, all severities together.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = 14)]
    pub findings: Option<u32>,
    /// `assessment.failed` only: why the run failed (the worker's reason, or that its lease
    /// expired too many times).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "tenant consent was revoked")]
    pub error: Option<String>,
}

/// A run's status as the `assessment.*` events report it.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AssessmentStatusValue {
    Running,
    Completed,
    Failed,
}

#[cfg(test)]
mod tests {
    use partnerd_domain::event::EventType;
    use utoipa::OpenApi as _;

    use super::*;

    #[test]
    fn the_documented_event_types_are_exactly_the_domains() {
        let documented: Vec<String> = WebhookEventType::ALL
            .iter()
            .map(|t| serde_json::to_value(t).unwrap().as_str().unwrap().to_owned())
            .collect();
        let emitted: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
        assert_eq!(documented, emitted);
    }

    #[test]
    fn every_event_schema_is_in_the_openapi_document() {
        let doc = serde_json::to_value(crate::openapi::ApiDoc::openapi()).unwrap();
        let schemas = &doc["components"]["schemas"];
        for name in [
            "WebhookEvent",
            "WebhookEventType",
            "WebhookEventData",
            "CustomerEventData",
            "CustomerDeletedData",
            "PartnerStatusEventData",
            "KeyEventData",
            "UsageThresholdData",
            "AssessmentEventData",
        ] {
            assert!(schemas[name].is_object(), "{name} is missing from components/schemas");
        }
        let types: Vec<&str> =
            schemas["WebhookEventType"]["enum"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        assert_eq!(types.len(), EventType::ALL.len());
        assert_eq!(schemas["WebhookEventData"]["oneOf"].as_array().unwrap().len(), 6);
    }

    /// `data` is a `oneOf`: each event's data must match exactly one of the schemas.
    #[test]
    fn each_events_data_matches_exactly_one_schema() {
        use serde_json::{Value, json};
        let doc = serde_json::to_value(crate::openapi::ApiDoc::openapi()).unwrap();
        let schemas = &doc["components"]["schemas"];
        let matches = |schema: &Value, data: &Value| {
            let data = data.as_object().unwrap();
            let properties = schema["properties"].as_object().unwrap();
            let required = schema["required"].as_array().unwrap();
            required.iter().all(|r| data.contains_key(r.as_str().unwrap()))
                && (schema["additionalProperties"] != json!(false) || data.keys().all(|k| properties.contains_key(k)))
        };
        let customer = json!({"customerId": "cust_1", "name": "Contoso", "tenantId": "t", "email": null});
        let samples = [
            ("CustomerEventData", customer),
            ("CustomerDeletedData", json!({"customerId": "cust_1"})),
            ("PartnerStatusEventData", json!({"partnerId": "prt_1", "company": "C", "status": "active"})),
            (
                "PartnerStatusEventData",
                json!({"partnerId": "prt_1", "company": "C", "status": "suspended", "reason": null}),
            ),
            ("KeyEventData", json!({"partnerId": "prt_1", "slot": 2})),
            (
                "UsageThresholdData",
                json!({"partnerId": "prt_1", "month": "2026-04", "threshold": 80, "runsUsed": 40, "runsLimit": 50}),
            ),
            (
                "AssessmentEventData",
                json!({"assessmentId": "run_1", "customerId": "cust_1", "product": "nist-csf", "status": "running"}),
            ),
        ];
        for (expected, data) in samples {
            let matched: Vec<&str> = schemas["WebhookEventData"]["oneOf"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["$ref"].as_str().unwrap().trim_start_matches("#/components/schemas/"))
                .filter(|name| matches(&schemas[*name], &data))
                .collect();
            assert_eq!(matched, [expected], "{data}");
        }
    }
}
