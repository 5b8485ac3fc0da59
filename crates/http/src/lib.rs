//! partnerd's HTTP adapter (actix-web): routes, key authentication, DTOs, the reference error
//! envelope and the OpenAPI document. Handlers parse, call one service method, and map.

mod auth;
pub mod dto;
mod error;
pub mod extract;
mod middleware;
pub mod openapi;
mod routes;

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use partnerd_domain::services::{AuthService, ProfileService};

pub use error::{ApiError, ErrorBody};

/// The services the handlers call.
pub struct AppState {
    pub auth: Arc<AuthService>,
    pub profiles: Arc<ProfileService>,
}

/// HTTP settings.
#[derive(Debug, Clone, Default)]
pub struct HttpConfig {
    /// Refuse requests whose `X-Forwarded-Proto` is not `https`.
    pub require_https: bool,
    /// Worker threads; `None` means one per core.
    pub workers: Option<usize>,
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
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(http_config.clone())
            .app_data(web::QueryConfig::default().error_handler(extract::query_error))
            .app_data(web::PathConfig::default().error_handler(extract::path_error))
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
