//! Routes. Every route is mounted under `/v1` and, identically, `/api/v1`.

pub(crate) mod distributor;
pub(crate) mod invoices;
pub(crate) mod partner;
pub(crate) mod reports;
pub(crate) mod webhooks;
pub(crate) mod worker;

use actix_web::{HttpResponse, Resource, web};

use crate::error::ApiError;

/// Registers every versioned route (called once per prefix).
pub(crate) fn v1(cfg: &mut web::ServiceConfig) {
    use distributor as d;
    use partner as p;
    use webhooks::{distributor as dw, partner as pw};
    // Literal paths before `{id}` ones: `/customers/bulk` must not be taken for a customer id.
    cfg.service(resource("/partner/me").route(web::get().to(p::me)))
        .service(resource("/partner/usage").route(web::get().to(reports::partner_usage)))
        .service(resource("/partner/dashboard").route(web::get().to(reports::partner_dashboard)))
        .service(resource("/partner/analytics").route(web::get().to(reports::partner_analytics)))
        .service(resource("/distributor/reports/usage").route(web::get().to(reports::distributor_usage)))
        .service(resource("/distributor/dashboard").route(web::get().to(reports::distributor_dashboard)))
        .service(resource("/distributor/analytics").route(web::get().to(reports::distributor_analytics)))
        .service(resource("/partner/billing/invoices").route(web::get().to(invoices::partner_list)))
        .service(resource("/partner/billing/invoices/{id}").route(web::get().to(invoices::partner_get)))
        .service(resource("/partner/billing/invoices/{id}/pdf").route(web::get().to(invoices::partner_pdf)))
        .service(resource("/distributor/billing/invoices").route(web::get().to(invoices::distributor_list)))
        .service(resource("/distributor/billing/invoices/{id}").route(web::get().to(invoices::distributor_get)))
        .service(resource("/distributor/billing/invoices/{id}/pdf").route(web::get().to(invoices::distributor_pdf)))
        .service(resource("/partner/products").route(web::get().to(p::products)))
        .service(resource("/partner/customers/bulk").route(web::post().to(p::bulk_create_customers)))
        .service(
            resource("/partner/customers")
                .route(web::get().to(p::list_customers))
                .route(web::post().to(p::create_customer)),
        )
        .service(
            resource("/partner/customers/{id}")
                .route(web::get().to(p::get_customer))
                .route(web::put().to(p::update_customer))
                .route(web::delete().to(p::delete_customer)),
        )
        .service(resource("/partner/assessments/bulk").route(web::post().to(p::bulk_trigger)))
        .service(resource("/partner/assessments").route(web::get().to(p::list_runs)).route(web::post().to(p::trigger)))
        .service(resource("/partner/assessments/{id}").route(web::get().to(p::get_run)))
        .service(resource("/partner/keys").route(web::post().to(p::create_key)))
        .service(resource("/partner/keys/{slot}").route(web::delete().to(p::revoke_key)))
        .service(resource("/partner/plan/preview").route(web::post().to(p::preview_plan)))
        .service(resource("/partner/plan").route(web::post().to(p::change_plan)))
        .service(
            resource("/partner/webhook")
                .route(web::get().to(pw::get))
                .route(web::put().to(pw::put))
                .route(web::delete().to(pw::delete)),
        )
        .service(resource("/partner/webhook/rotate-secret").route(web::post().to(pw::rotate_secret)))
        .service(resource("/partner/webhook/deliveries").route(web::get().to(pw::deliveries)))
        .service(resource("/partner/webhook/deliveries/{eventId}/retry").route(web::post().to(pw::retry)))
        .service(resource("/partner/webhook/replay").route(web::post().to(pw::replay)))
        .service(
            resource("/distributor/webhook")
                .route(web::get().to(dw::get))
                .route(web::put().to(dw::put))
                .route(web::delete().to(dw::delete)),
        )
        .service(resource("/distributor/webhook/rotate-secret").route(web::post().to(dw::rotate_secret)))
        .service(resource("/distributor/webhook/deliveries").route(web::get().to(dw::deliveries)))
        .service(resource("/distributor/webhook/deliveries/{eventId}/retry").route(web::post().to(dw::retry)))
        .service(resource("/distributor/webhook/replay").route(web::post().to(dw::replay)))
        .service(resource("/worker/runs/claim").route(web::post().to(worker::claim)))
        .service(resource("/worker/runs/{id}/heartbeat").route(web::post().to(worker::heartbeat)))
        .service(resource("/worker/runs/{id}/complete").route(web::post().to(worker::complete)))
        .service(resource("/worker/runs/{id}/fail").route(web::post().to(worker::fail)))
        .service(resource("/distributor/me").route(web::get().to(d::me)))
        .service(resource("/distributor/usage").route(web::get().to(d::usage)))
        .service(resource("/distributor/partners/bulk").route(web::post().to(d::bulk_create_partners)))
        .service(
            resource("/distributor/partners")
                .route(web::get().to(d::list_partners))
                .route(web::post().to(d::create_partner)),
        )
        .service(
            resource("/distributor/partners/{id}")
                .route(web::get().to(d::get_partner))
                .route(web::put().to(d::update_partner)),
        )
        .service(resource("/distributor/partners/{id}/activate").route(web::post().to(d::activate)))
        .service(resource("/distributor/partners/{id}/reactivate").route(web::post().to(d::reactivate)))
        .service(resource("/distributor/partners/{id}/suspend").route(web::post().to(d::suspend)))
        .service(resource("/distributor/partners/{id}/plan/preview").route(web::post().to(d::preview_plan)))
        .service(resource("/distributor/partners/{id}/plan").route(web::post().to(d::change_plan)))
        .service(
            resource("/distributor/partners/{id}/customers")
                .route(web::get().to(d::list_customers))
                .route(web::post().to(d::create_customer)),
        )
        .service(
            resource("/distributor/partners/{id}/assessments")
                .route(web::get().to(d::list_runs))
                .route(web::post().to(d::trigger)),
        );
}

/// A resource whose unmatched methods answer `405 METHOD_NOT_ALLOWED` in the envelope.
pub(crate) fn resource(path: &str) -> Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::method_not_allowed())
}

pub(crate) async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found())
}
