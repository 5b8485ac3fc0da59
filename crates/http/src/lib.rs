//! partnerd's HTTP adapter (actix-web): routes, key authentication, DTOs, the reference error
//! envelope and the OpenAPI document. Handlers parse, call one service method, and map.

mod auth;
pub mod dto;
mod error;
pub mod extract;
mod middleware;
pub mod openapi;
mod pdf;
pub mod rate_limit;
pub mod request_counts;
mod routes;

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use partnerd_domain::catalog::Catalog;
use partnerd_domain::ports::{
    BillingProvider, Clock, CustomerRepository, DistributorRepository, IdGenerator, InvoiceRepository, KeyGenerator,
    KeyRepository, ManagedPartnerRepository, PartnerRepository, PlanChangeRepository, ReportRepository,
    RequestCountRepository, RunQueue, RunRepository, WebhookRepository,
};
use partnerd_domain::services::{
    AssessmentService, AuthService, CustomerService, DistributorService, InvoiceService, KeyService, PlanService,
    ProfileService, ReportService, WebhookService, WorkerService,
};

pub use error::{ApiError, ErrorBody};
pub use rate_limit::RateLimits;
pub use request_counts::RequestCounter;

/// The services the handlers call.
pub struct AppState {
    pub auth: Arc<AuthService>,
    pub profiles: Arc<ProfileService>,
    pub customers: Arc<CustomerService>,
    pub assessments: Arc<AssessmentService>,
    pub keys: Arc<KeyService>,
    pub plans: Arc<PlanService>,
    pub distributors: Arc<DistributorService>,
    pub webhooks: Arc<WebhookService>,
    pub workers: Arc<WorkerService>,
    pub reports: Arc<ReportService>,
    pub invoices: Arc<InvoiceService>,
    pub catalog: Arc<Catalog>,
    /// Authenticated requests counted per account and day, waiting for the server's flusher.
    pub request_counts: Arc<RequestCounter>,
}

/// Every port the services need, as one store (the real one or an in-memory fake) plus the
/// billing provider, the catalog, the clock and randomness.
pub struct Ports<S> {
    pub store: Arc<S>,
    pub billing: Arc<dyn BillingProvider>,
    pub catalog: Arc<Catalog>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGenerator>,
    pub keys: Arc<dyn KeyGenerator>,
    /// Accept webhook URLs on loopback and private addresses, and plain `http` (tests and
    /// closed networks only).
    pub allow_private_webhooks: bool,
}

impl AppState {
    /// The services over one store that implements every repository port.
    pub fn over<S>(ports: Ports<S>) -> Self
    where
        S: KeyRepository
            + PartnerRepository
            + DistributorRepository
            + ManagedPartnerRepository
            + CustomerRepository
            + RunRepository
            + PlanChangeRepository
            + WebhookRepository
            + RunQueue
            + ReportRepository
            + InvoiceRepository
            + RequestCountRepository
            + 'static,
    {
        let Ports { store: s, billing, catalog, clock, ids, keys, allow_private_webhooks } = ports;
        Self {
            auth: Arc::new(AuthService::new(s.clone())),
            profiles: Arc::new(ProfileService::new(s.clone(), s.clone(), catalog.clone(), clock.clone())),
            customers: Arc::new(CustomerService::new(s.clone(), s.clone(), clock.clone(), ids.clone())),
            assessments: Arc::new(AssessmentService::new(
                s.clone(),
                s.clone(),
                catalog.clone(),
                clock.clone(),
                ids.clone(),
            )),
            keys: Arc::new(KeyService::new(s.clone(), clock.clone(), keys.clone(), ids.clone())),
            plans: Arc::new(PlanService::new(
                s.clone(),
                s.clone(),
                billing,
                catalog.clone(),
                clock.clone(),
                ids.clone(),
            )),
            workers: Arc::new(WorkerService::new(s.clone(), catalog.clone(), clock.clone())),
            webhooks: Arc::new(WebhookService::new(s.clone(), clock.clone(), keys.clone(), allow_private_webhooks)),
            reports: Arc::new(ReportService::new(
                s.clone(),
                s.clone(),
                s.clone(),
                s.clone(),
                catalog.clone(),
                clock.clone(),
            )),
            invoices: Arc::new(InvoiceService::new(s.clone(), catalog.clone(), ids.clone())),
            request_counts: Arc::new(RequestCounter::new(s.clone(), clock.clone())),
            distributors: Arc::new(DistributorService::new(s.clone(), s, catalog.clone(), clock, ids, keys)),
            catalog,
        }
    }
}

/// HTTP settings.
#[derive(Debug, Clone, Default)]
pub struct HttpConfig {
    /// Refuse requests whose `X-Forwarded-Proto` is not `https`.
    pub require_https: bool,
    /// Worker threads; `None` means one per core.
    pub workers: Option<usize>,
    /// Requests per minute per key.
    pub rate_limits: RateLimits,
}

/// Registers the whole API on an actix `App`.
fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::scope("/v1").configure(routes::v1))
        .service(web::scope("/api/v1").configure(routes::v1))
        .service(routes::resource("/openapi.json").route(web::get().to(openapi::serve)));
}

/// Builds the server on an already-bound listener (bind port 0 in tests), ready to `.await`.
pub fn build(listener: TcpListener, state: AppState, config: HttpConfig) -> std::io::Result<Server> {
    let state = web::Data::new(state);
    let http_config = web::Data::new(config.clone());
    let limiter = web::Data::new(rate_limit::KeyRateLimiter::new(config.rate_limits));
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(http_config.clone())
            .app_data(limiter.clone())
            .app_data(web::QueryConfig::default().error_handler(extract::query_error))
            .app_data(web::PathConfig::default().error_handler(extract::path_error))
            .wrap(from_fn(auth::authenticate_route))
            .wrap(from_fn(middleware::limit_body))
            .wrap(from_fn(middleware::require_https))
            .wrap(from_fn(middleware::request_context))
            .configure(configure)
            .default_service(web::to(routes::not_found))
    })
    .listen(listener)?;
    if let Some(workers) = config.workers {
        server = server.workers(workers);
    }
    Ok(server.run())
}
