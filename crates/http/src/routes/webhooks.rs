//! Webhook settings and delivery log, the same for partners (`/partner/webhook…`) and
//! distributors (`/distributor/webhook…`): each account configures its own endpoint. The shared
//! `*_for` functions do the work; the two modules below are the documented handlers.

use actix_web::HttpResponse;
use actix_web::web::Json;
use partnerd_domain::ports::Page;
use partnerd_domain::webhook::Recipient;

use crate::AppState;
use crate::dto::{
    DEFAULT_DELIVERY_PAGE, DeliveryListOut, DeliveryOut, DeliveryQuery, MAX_DELIVERY_PAGE, ReplayIn, ReplayOut,
    RotatedSecretOut, WebhookIn, WebhookOut, timestamp,
};
use crate::error::ApiError;

type Reply<T> = Result<T, ApiError>;

async fn get_for(state: &AppState, me: Recipient) -> Reply<Json<WebhookOut>> {
    Ok(Json(WebhookOut::new(&state.webhooks.get(&me).await?, None)))
}

async fn put_for(state: &AppState, me: Recipient, body: WebhookIn) -> Reply<Json<WebhookOut>> {
    Ok(Json(state.webhooks.put(&me, Some(&body.url)).await?.into()))
}

async fn delete_for(state: &AppState, me: Recipient) -> Reply<HttpResponse> {
    state.webhooks.delete(&me).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn rotate_for(state: &AppState, me: Recipient) -> Reply<Json<RotatedSecretOut>> {
    let (endpoint, secret) = state.webhooks.rotate_secret(&me).await?;
    let until = endpoint.previous_secret.as_ref().map(|(_, until)| *until).unwrap_or(endpoint.updated_at);
    Ok(Json(RotatedSecretOut { secret: secret.reveal().to_owned(), previous_secret_expires_at: timestamp(until) }))
}

async fn deliveries_for(state: &AppState, me: Recipient, query: DeliveryQuery) -> Reply<Json<DeliveryListOut>> {
    let limit = query.limit.unwrap_or(DEFAULT_DELIVERY_PAGE);
    if !(1..=MAX_DELIVERY_PAGE).contains(&limit) {
        return Err(ApiError::invalid_field("limit", "must be from 1 to 100"));
    }
    let page = Page { limit: Some(limit), starting_after: query.starting_after };
    let found = state.webhooks.deliveries(&me, query.status.as_deref(), query.event_type.as_deref(), &page).await?;
    Ok(Json(DeliveryListOut { deliveries: found.items.iter().map(Into::into).collect(), has_more: found.has_more }))
}

async fn retry_for(state: &AppState, me: Recipient, event: &str) -> Reply<HttpResponse> {
    let delivery = state.webhooks.retry(&me, event).await?;
    Ok(HttpResponse::Accepted().json(DeliveryOut::from(&delivery)))
}

async fn replay_for(state: &AppState, me: Recipient, body: ReplayIn) -> Reply<HttpResponse> {
    let replayed = state.webhooks.replay(&me, body.into()).await?;
    Ok(HttpResponse::Accepted().json(ReplayOut { replayed }))
}

/// The seven handlers of one account kind, documented under its paths.
macro_rules! webhook_handlers {
    (
        $module:ident, $auth:ident, $variant:ident, $tag:literal, $security:literal, $prefix:literal,
        paths: [$get:literal, $rotate:literal, $deliveries:literal, $retry:literal, $replay:literal]
    ) => {
        pub(crate) mod $module {
            use actix_web::HttpResponse;
            use actix_web::web::{Data, Json, Path};
            use partnerd_domain::webhook::Recipient;

            use super::Reply;
            use crate::AppState;
            use crate::auth::$auth;
            use crate::dto::{
                DeliveryListOut, DeliveryOut, DeliveryQuery, ReplayIn, ReplayOut, RotatedSecretOut, WebhookIn,
                WebhookOut,
            };
            use crate::error::ErrorBody;
            use crate::extract::{ApiJson, ApiQuery};

            /// Your webhook endpoint (never its secret). `404` until one is configured.
            #[utoipa::path(
                get, path = $get, tag = $tag, operation_id = concat!("get", $prefix, "Webhook"),
                security(($security = [])),
                responses(
                    (status = 200, body = WebhookOut),
                    (status = 401, body = ErrorBody),
                    (status = 404, description = "NOT_FOUND: no endpoint configured", body = ErrorBody),
                )
            )]
            pub(crate) async fn get(state: Data<AppState>, $auth(me): $auth) -> Reply<Json<WebhookOut>> {
                super::get_for(&state, Recipient::$variant(me)).await
            }

            /// Sets the endpoint URL. The first `PUT` creates the endpoint and its secret, which
            /// this answer shows once; later `PUT`s change the URL, keep the secret, and enable an
            /// endpoint that a `410 Gone` disabled.
            #[utoipa::path(
                put, path = $get, tag = $tag, operation_id = concat!("put", $prefix, "Webhook"),
                security(($security = [])), request_body = WebhookIn,
                responses(
                    (status = 200, body = WebhookOut),
                    (status = 400, description = "INVALID_JSON, MISSING_FIELD or INVALID_FIELD (url)", body = ErrorBody),
                    (status = 401, body = ErrorBody),
                )
            )]
            pub(crate) async fn put(
                state: Data<AppState>,
                $auth(me): $auth,
                ApiJson(body): ApiJson<WebhookIn>,
            ) -> Reply<Json<WebhookOut>> {
                super::put_for(&state, Recipient::$variant(me), body).await
            }

            /// Removes the endpoint and its delivery log; events stop being queued for it.
            #[utoipa::path(
                delete, path = $get, tag = $tag, operation_id = concat!("delete", $prefix, "Webhook"),
                security(($security = [])),
                responses(
                    (status = 204, description = "Deleted"),
                    (status = 401, body = ErrorBody),
                    (status = 404, body = ErrorBody),
                )
            )]
            pub(crate) async fn delete(state: Data<AppState>, $auth(me): $auth) -> Reply<HttpResponse> {
                super::delete_for(&state, Recipient::$variant(me)).await
            }

            /// Replaces the signing secret, shown once. The old secret keeps signing beside the
            /// new one for 24 hours, so receivers can switch without losing events.
            #[utoipa::path(
                post, path = $rotate, tag = $tag, operation_id = concat!("rotate", $prefix, "WebhookSecret"),
                security(($security = [])),
                responses(
                    (status = 200, body = RotatedSecretOut),
                    (status = 401, body = ErrorBody),
                    (status = 404, body = ErrorBody),
                )
            )]
            pub(crate) async fn rotate_secret(state: Data<AppState>, $auth(me): $auth) -> Reply<Json<RotatedSecretOut>> {
                super::rotate_for(&state, Recipient::$variant(me)).await
            }

            /// The delivery log, newest event first, each delivery with its attempts. Filter by
            /// `status` and `type`; page with `limit` and `starting_after`.
            #[utoipa::path(
                get, path = $deliveries, tag = $tag, operation_id = concat!("list", $prefix, "WebhookDeliveries"),
                security(($security = [])), params(DeliveryQuery),
                responses(
                    (status = 200, body = DeliveryListOut),
                    (status = 400, description = "INVALID_FIELD (status, type, limit)", body = ErrorBody),
                    (status = 401, body = ErrorBody),
                    (status = 404, description = "NOT_FOUND: no endpoint configured", body = ErrorBody),
                )
            )]
            pub(crate) async fn deliveries(
                state: Data<AppState>,
                $auth(me): $auth,
                ApiQuery(query): ApiQuery<DeliveryQuery>,
            ) -> Reply<Json<DeliveryListOut>> {
                super::deliveries_for(&state, Recipient::$variant(me), query).await
            }

            /// Sends one event again now, with a fresh retry schedule (the same `webhook-id`).
            #[utoipa::path(
                post, path = $retry, tag = $tag, operation_id = concat!("retry", $prefix, "WebhookDelivery"),
                security(($security = [])), params(("eventId" = String, Path, description = "The event id")),
                responses(
                    (status = 202, body = DeliveryOut),
                    (status = 401, body = ErrorBody),
                    (status = 404, description = "NOT_FOUND: no endpoint, or not an event of yours", body = ErrorBody),
                )
            )]
            pub(crate) async fn retry(
                state: Data<AppState>,
                $auth(me): $auth,
                event: Path<String>,
            ) -> Reply<HttpResponse> {
                super::retry_for(&state, Recipient::$variant(me), &event).await
            }

            /// Sends again every event of `[since, until)` addressed to you (only deliveries in
            /// `status`, if given), each with a fresh retry schedule.
            #[utoipa::path(
                post, path = $replay, tag = $tag, operation_id = concat!("replay", $prefix, "Webhooks"),
                security(($security = [])), request_body = ReplayIn,
                responses(
                    (status = 202, body = ReplayOut),
                    (status = 400, description = "INVALID_JSON, MISSING_FIELD or INVALID_FIELD", body = ErrorBody),
                    (status = 401, body = ErrorBody),
                    (status = 404, description = "NOT_FOUND: no endpoint configured", body = ErrorBody),
                )
            )]
            pub(crate) async fn replay(
                state: Data<AppState>,
                $auth(me): $auth,
                ApiJson(body): ApiJson<ReplayIn>,
            ) -> Reply<HttpResponse> {
                super::replay_for(&state, Recipient::$variant(me), body).await
            }
        }
    };
}

webhook_handlers!(
    partner, PartnerAuth, Partner, "Partner", "partnerKey", "Partner",
    paths: [
        "/v1/partner/webhook",
        "/v1/partner/webhook/rotate-secret",
        "/v1/partner/webhook/deliveries",
        "/v1/partner/webhook/deliveries/{eventId}/retry",
        "/v1/partner/webhook/replay"
    ]
);

webhook_handlers!(
    distributor, DistributorAuth, Distributor, "Distributor", "distributorKey", "Distributor",
    paths: [
        "/v1/distributor/webhook",
        "/v1/distributor/webhook/rotate-secret",
        "/v1/distributor/webhook/deliveries",
        "/v1/distributor/webhook/deliveries/{eventId}/retry",
        "/v1/distributor/webhook/replay"
    ]
);
