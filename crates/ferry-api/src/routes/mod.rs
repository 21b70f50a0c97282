//! Every route, with authentication applied in one place: `public` routes need no
//! credentials, everything else goes through [`crate::auth::require_auth`].

mod auth;
mod authn_users;
mod clients;
mod dashboard;
mod node;
mod objects;
mod page;

use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, Uri, header};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;

use crate::AppState;
use crate::error::ApiError;

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Ferry API", description = "Ferry's HTTP API: EMQX v5-shaped resources for the MQTT broker, rules and Kafka integration."),
    components(schemas(crate::error::ErrorBody)),
    modifiers(&Security)
)]
struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        let c = api.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        c.add_security_scheme(
            "api_key",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)),
        );
    }
}

fn public() -> OpenApiRouter<AppState> {
    node::public().merge(auth::public_routes())
}

fn protected() -> OpenApiRouter<AppState> {
    node::protected()
        .merge(clients::protected())
        .merge(objects::protected())
        .merge(auth::routes())
        .merge(authn_users::protected())
}

pub(crate) fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(public().into_openapi());
    let mut prot = protected().into_openapi();
    for item in prot.paths.paths.values_mut() {
        for op in [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.delete,
        ]
        .into_iter()
        .flatten()
        {
            op.security = Some(vec![
                utoipa::openapi::security::SecurityRequirement::new("bearer", Vec::<String>::new()),
                utoipa::openapi::security::SecurityRequirement::new(
                    "api_key",
                    Vec::<String>::new(),
                ),
            ]);
        }
    }
    doc.merge(prot);
    doc
}

async fn swagger() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi::document_json(),
    )
        .into_response()
}

async fn no_route(uri: Uri) -> ApiError {
    ApiError::not_found(format!("no such path: {}", uri.path()))
}

async fn no_method() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        axum::Json(ApiError::bad_request("method not allowed on this path").body()),
    )
        .into_response()
}

pub(crate) fn router(state: AppState) -> axum::Router {
    let (public, _) = public().split_for_parts();
    let (protected, _) = protected().split_for_parts();
    let protected =
        protected.route_layer(from_fn_with_state(state.clone(), crate::auth::require_auth));
    axum::Router::new()
        .merge(public)
        .merge(protected)
        .route("/api-docs/swagger.json", get(swagger))
        .merge(dashboard::routes())
        .fallback(no_route)
        .method_not_allowed_fallback(no_method)
        .layer(DefaultBodyLimit::max(state.settings.max_body_bytes))
        .with_state(state)
}
