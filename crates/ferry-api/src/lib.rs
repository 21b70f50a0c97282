//! ferry-api: the HTTP control plane.
//!
//! Owns: the API listener ([`serve`]), authentication of API callers (dashboard users with
//! argon2id hashes, bearer tokens, API keys, the forced change of the default password),
//! the EMQX v5-shaped resources under `/api/v5`, `{code, message}` errors mapped to statuses
//! in one place ([`error`]), the generated OpenAPI document, and the Prometheus endpoints.
//!
//! Must not: know the broker, rules or Kafka. Everything it reads or changes goes through
//! the [`Admin`] trait, which the `ferry` crate implements; only this crate names the HTTP
//! framework. A failing handler answers an error and never harms the broker.

pub mod admin;
pub mod auth;
pub mod error;
mod openapi;
mod routes;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use admin::Admin;
pub use error::{ApiError, ApiResult, ErrorBody};
use tokio_util::sync::CancellationToken;

/// What the API needs besides the admin handle.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Require HTTP Basic credentials (a user or an API key) for `GET /metrics`.
    pub metrics_auth: bool,
    pub auth: auth::AuthSettings,
}

impl Default for ApiSettings {
    fn default() -> Self {
        ApiSettings {
            max_body_bytes: 1 << 20,
            metrics_auth: false,
            auth: auth::AuthSettings::default(),
        }
    }
}

/// Shared by every handler.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) admin: Arc<dyn Admin>,
    pub(crate) auth: Arc<auth::Auth>,
    pub(crate) settings: Arc<ApiSettings>,
}

/// The whole application: every route, authentication, body limits.
pub fn router(admin: Arc<dyn Admin>, auth: Arc<auth::Auth>, settings: ApiSettings) -> axum::Router {
    routes::router(AppState {
        admin,
        auth,
        settings: Arc::new(settings),
    })
}

/// The OpenAPI 3 document of every route (served at `/api-docs/swagger.json`).
pub fn openapi_json() -> String {
    openapi::document_json()
}

/// Serves the API on `listener` until `shutdown` fires, then finishes open requests (up to
/// `drain`).
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    shutdown: CancellationToken,
    drain: Duration,
) -> std::io::Result<()> {
    let local: SocketAddr = listener.local_addr()?;
    tracing::info!(%local, "API listening");
    let stop = shutdown.clone();
    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { stop.cancelled().await });
    tokio::select! {
        r = server => r,
        _ = async { shutdown.cancelled().await; tokio::time::sleep(drain).await } => Ok(()),
    }
}
