//! The OpenAPI document, served at `GET /openapi.json`. Paths are listed under `/v1`; every one
//! is also served under `/api/v1`.

use actix_web::HttpResponse;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::webhooks::{distributor as distributor_webhooks, partner as partner_webhooks};
use crate::routes::{distributor, invoices, partner, reports, worker};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "partnerd",
        description = "Channel-partner platform: distributors provision partners, partners manage customers \
                       and trigger assessment runs. Every path is also served under /api/v1.",
    ),
    paths(
        partner::me,
        partner::products,
        partner::list_customers,
        partner::create_customer,
        partner::bulk_create_customers,
        partner::get_customer,
        partner::update_customer,
        partner::delete_customer,
        partner::trigger,
        partner::bulk_trigger,
        partner::list_runs,
        partner::get_run,
        partner::create_key,
        partner::revoke_key,
        partner::change_plan,
        partner::preview_plan,
        distributor::me,
        distributor::list_partners,
        distributor::create_partner,
        distributor::bulk_create_partners,
        distributor::get_partner,
        distributor::update_partner,
        distributor::activate,
        distributor::reactivate,
        distributor::suspend,
        distributor::change_plan,
        distributor::preview_plan,
        distributor::list_customers,
        distributor::create_customer,
        distributor::list_runs,
        distributor::trigger,
        distributor::usage,
        reports::partner_usage,
        reports::partner_dashboard,
        reports::partner_analytics,
        reports::distributor_usage,
        reports::distributor_dashboard,
        reports::distributor_analytics,
        invoices::partner_list,
        invoices::partner_get,
        invoices::partner_pdf,
        invoices::distributor_list,
        invoices::distributor_get,
        invoices::distributor_pdf,
        worker::claim,
        worker::heartbeat,
        worker::complete,
        worker::fail,
        partner_webhooks::get,
        partner_webhooks::put,
        partner_webhooks::delete,
        partner_webhooks::rotate_secret,
        partner_webhooks::deliveries,
        partner_webhooks::retry,
        partner_webhooks::replay,
        distributor_webhooks::get,
        distributor_webhooks::put,
        distributor_webhooks::delete,
        distributor_webhooks::rotate_secret,
        distributor_webhooks::deliveries,
        distributor_webhooks::retry,
        distributor_webhooks::replay,
    ),
    components(schemas(
        crate::dto::WebhookEvent,
        crate::dto::WebhookEventType,
        crate::dto::WebhookEventData,
        crate::dto::CustomerEventData,
        crate::dto::CustomerDeletedData,
        crate::dto::PartnerStatusEventData,
        crate::dto::KeyEventData,
        crate::dto::UsageThresholdData,
        crate::dto::AssessmentEventData,
    )),
    modifiers(&KeyHeaders),
    tags(
        (name = "Partner", description = "The Partner API: X-Partner-Key (pk_live_…)"),
        (name = "Distributor", description = "The Distributor API: X-Distributor-Key (dk_live_…)"),
        (name = "Worker", description = "The worker protocol: X-Worker-Key (wk_live_…)"),
    )
)]
pub struct ApiDoc;

struct KeyHeaders;

impl Modify for KeyHeaders {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for (name, header) in
            [("partnerKey", "X-Partner-Key"), ("distributorKey", "X-Distributor-Key"), ("workerKey", "X-Worker-Key")]
        {
            components.add_security_scheme(name, SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new(header))));
        }
    }
}

/// The document is built and serialised once per process.
pub(crate) async fn serve() -> HttpResponse {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let body = DOCUMENT.get_or_init(|| ApiDoc::openapi().to_json().expect("the OpenAPI document serialises"));
    HttpResponse::Ok().content_type("application/json").body(body.as_str())
}
