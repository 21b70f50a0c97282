//! Every route, with authentication applied in one place.

use utoipa_axum::router::OpenApiRouter;

use crate::AppState;

fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
}

pub(crate) fn openapi() -> utoipa::openapi::OpenApi {
    api().into_openapi()
}

pub(crate) fn router(state: AppState) -> axum::Router {
    let (router, _) = api().split_for_parts();
    router.with_state(state)
}
