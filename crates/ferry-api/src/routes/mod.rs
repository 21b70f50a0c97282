//! Every route, with authentication applied in one place: routes in [`public`] need no
//! credentials; routes in [`protected`] sit behind [`crate::auth::require_auth`], which
//! authenticates (Bearer token or Basic API key), enforces the forced password change and
//! the viewer role, and puts the `Principal` in the request extensions.

use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use utoipa_axum::router::OpenApiRouter;

use crate::AppState;

mod auth;

/// Routes anyone may call (login; `/status` belongs here too).
fn public() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().merge(auth::public_routes())
}

/// Routes that need credentials.
fn protected() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().merge(auth::routes())
}

pub(crate) fn openapi() -> utoipa::openapi::OpenApi {
    public().merge(protected()).into_openapi()
}

pub(crate) fn router(state: AppState) -> axum::Router {
    let protected =
        protected().route_layer(from_fn_with_state(state.clone(), crate::auth::require_auth));
    let (router, _) = public().merge(protected).split_for_parts();
    router
        .layer(DefaultBodyLimit::max(state.settings.max_body_bytes))
        .with_state(state)
}
