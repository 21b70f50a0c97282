//! The web dashboard: static files embedded in the binary, served at `/` and `/assets/`.
//! The dashboard is a client of the public API only; these routes need no login (the page
//! logs in through `POST /api/v5/login` like any other client).

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::AppState;
use crate::error::ApiError;

/// (name under /assets/, content type, the file in src/dashboard/).
macro_rules! asset {
    ($name:literal, $ty:expr) => {
        ($name, $ty, include_str!(concat!("../dashboard/", $name)))
    };
}

/// Every file of the dashboard: (name under /assets/, content type, content).
const ASSETS: &[(&str, &str, &str)] = &[
    asset!("main.js", JS),
    asset!("app.js", JS),
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("pages/overview.js", JS),
    asset!("pages/clients.js", JS),
    asset!("pages/rules.js", JS),
    asset!("pages/integration.js", JS),
    asset!("pages/tools.js", JS),
    asset!("pages/admin.js", JS),
];

const JS: &str = "text/javascript; charset=utf-8";
const INDEX: &str = include_str!("../dashboard/index.html");

/// Only this origin's scripts and styles; no inline script, no framing.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'";

fn file(content_type: &'static str, body: &'static str) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

async fn index() -> Response {
    file("text/html; charset=utf-8", INDEX)
}

async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, ty, body)) => file(ty, body),
        None => ApiError::not_found(format!("no dashboard file {name:?}")).into_response(),
    }
}

pub(crate) fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/", get(index))
        .route("/assets/{*name}", get(asset))
}

#[cfg(test)]
mod tests {
    use super::ASSETS;

    #[test]
    fn every_module_the_dashboard_imports_is_served() {
        for (name, _, body) in ASSETS {
            for line in body.lines().filter(|l| l.starts_with("import")) {
                let Some(spec) = line.split(['"', '\'']).nth(1) else {
                    continue;
                };
                let dir = name.rsplit_once('/').map_or("", |(d, _)| d);
                let target = match spec.strip_prefix("./") {
                    Some(rest) if dir.is_empty() => rest.to_owned(),
                    Some(rest) => format!("{dir}/{rest}"),
                    None => match spec.strip_prefix("../") {
                        Some(rest) => rest.to_owned(),
                        None => spec.to_owned(),
                    },
                };
                assert!(
                    ASSETS.iter().any(|(n, _, _)| *n == target),
                    "{name} imports {spec} ({target}), which is not served"
                );
            }
        }
    }
}
