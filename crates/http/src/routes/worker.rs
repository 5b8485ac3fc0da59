//! The worker protocol (`X-Worker-Key`): claim a queued run under a lease, keep the lease with
//! heartbeats, then complete or fail the run.

use actix_web::HttpResponse;
use actix_web::web::{Data, Json, Path};

use crate::AppState;
use crate::auth::WorkerAuth;
use crate::dto::{ClaimIn, ClaimOut, CompleteIn, FailIn, HeartbeatIn, RunOut, WorkerRunOut};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, OptionalJson};

type Reply<T> = Result<T, ApiError>;

/// Claims the oldest queued run of the given products: it becomes `running` under this
/// worker's lease. `204` when nothing is queued.
#[utoipa::path(
    post, path = "/v1/worker/runs/claim", tag = "Worker", operation_id = "claimRun",
    security(("workerKey" = [])), request_body(content = Option<ClaimIn>),
    responses(
        (status = 200, description = "A run to execute", body = ClaimOut),
        (status = 204, description = "Nothing is queued"),
        (status = 400, description = "INVALID_FIELD (products, leaseSeconds)", body = ErrorBody),
        (status = 401, description = "MISSING_KEY or INVALID_KEY", body = ErrorBody),
    )
)]
pub(crate) async fn claim(
    state: Data<AppState>,
    WorkerAuth(worker): WorkerAuth,
    OptionalJson(body): OptionalJson<ClaimIn>,
) -> Reply<HttpResponse> {
    Ok(match state.workers.claim(&worker, body.into()).await? {
        Some(claimed) => HttpResponse::Ok().json(ClaimOut::from(&claimed)),
        None => HttpResponse::NoContent().finish(),
    })
}

/// Extends the lease of a run this worker holds.
#[utoipa::path(
    post, path = "/v1/worker/runs/{id}/heartbeat", tag = "Worker", operation_id = "heartbeatRun",
    security(("workerKey" = [])), params(("id" = String, Path)), request_body(content = Option<HeartbeatIn>),
    responses(
        (status = 200, body = WorkerRunOut),
        (status = 400, description = "INVALID_FIELD (leaseSeconds)", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "RUN_STATE_CONFLICT", body = ErrorBody),
    )
)]
pub(crate) async fn heartbeat(
    state: Data<AppState>,
    WorkerAuth(worker): WorkerAuth,
    id: Path<String>,
    OptionalJson(body): OptionalJson<HeartbeatIn>,
) -> Reply<Json<WorkerRunOut>> {
    let lease = body.lease_seconds;
    let held = state.workers.heartbeat(&worker, &id, lease).await?;
    Ok(Json(WorkerRunOut::from(&held)))
}

/// Completes a run this worker holds with its results; the partner sees `completed`.
#[utoipa::path(
    post, path = "/v1/worker/runs/{id}/complete", tag = "Worker", operation_id = "completeRun",
    security(("workerKey" = [])), params(("id" = String, Path)), request_body = CompleteIn,
    responses(
        (status = 200, body = WorkerRunOut),
        (status = 400, description = "MISSING_FIELD or INVALID_FIELD", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "RUN_STATE_CONFLICT", body = ErrorBody),
    )
)]
pub(crate) async fn complete(
    state: Data<AppState>,
    WorkerAuth(worker): WorkerAuth,
    id: Path<String>,
    ApiJson(body): ApiJson<CompleteIn>,
) -> Reply<Json<WorkerRunOut>> {
    let view = state.workers.complete(&worker, &id, body.into()).await?;
    Ok(Json(WorkerRunOut { run: RunOut::from(&view), lease_expires_at: None }))
}

/// Fails a run this worker holds; its unit of the partner's monthly limit is given back.
#[utoipa::path(
    post, path = "/v1/worker/runs/{id}/fail", tag = "Worker", operation_id = "failRun",
    security(("workerKey" = [])), params(("id" = String, Path)), request_body = FailIn,
    responses(
        (status = 200, body = WorkerRunOut),
        (status = 400, description = "MISSING_FIELD reason", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "RUN_STATE_CONFLICT", body = ErrorBody),
    )
)]
pub(crate) async fn fail(
    state: Data<AppState>,
    WorkerAuth(worker): WorkerAuth,
    id: Path<String>,
    ApiJson(body): ApiJson<FailIn>,
) -> Reply<Json<WorkerRunOut>> {
    let view = state.workers.fail(&worker, &id, body.reason).await?;
    Ok(Json(WorkerRunOut { run: RunOut::from(&view), lease_expires_at: None }))
}
