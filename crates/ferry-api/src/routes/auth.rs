//! Login, logout, users and API keys (EMQX v5 paths and field names). Slow work (argon2,
//! file writes) runs on blocking threads.

use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::middleware::{Credentials, blocking, blocking_slow, credentials};
use crate::auth::{
    ApiKeyUpdate, ApiKeyView, NewApiKey, NewUser, Principal, PrincipalKind, Role, UserView,
};
use crate::error::{ApiError, ApiResult, Body, ErrorBody};

const TAG: &str = "auth";

/// Routes that need no credentials: login.
pub(crate) fn public_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(login))
}

/// Routes behind `require_auth`: logout, users, API keys.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(logout))
        .routes(routes!(list_users, create_user))
        .routes(routes!(update_user, delete_user))
        .routes(routes!(change_pwd))
        .routes(routes!(list_api_keys, create_api_key))
        .routes(routes!(get_api_key, update_api_key, delete_api_key))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LoginRequest {
    username: String,
    password: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct License {
    edition: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct LoginResponse {
    /// Send as `Authorization: Bearer TOKEN`.
    token: String,
    role: Role,
    version: String,
    license: License,
    /// While true, the token may only change the password and log out.
    password_change_required: bool,
}

/// Logs in; the token expires after `[api] token_ttl`.
#[utoipa::path(post, path = "/api/v5/login", tag = TAG, request_body = LoginRequest,
    responses(
        (status = 200, body = LoginResponse),
        (status = 400, body = ErrorBody),
        (status = 401, description = "wrong username or password", body = ErrorBody),
        (status = 423, description = "locked after repeated failures", body = ErrorBody),
    ))]
async fn login(
    State(state): State<AppState>,
    Body(req): Body<LoginRequest>,
) -> ApiResult<Json<LoginResponse>> {
    let ok = blocking_slow(&state.auth, move |a| a.login(&req.username, &req.password)).await?;
    Ok(Json(LoginResponse {
        token: ok.token,
        role: ok.role,
        version: env!("CARGO_PKG_VERSION").into(),
        license: License {
            edition: "opensource".into(),
        },
        password_change_required: ok.password_change_required,
    }))
}

/// Revokes the bearer token of this request (a body such as EMQX's `{username}` is
/// ignored).
#[utoipa::path(post, path = "/api/v5/logout", tag = TAG,
    responses((status = 204, description = "logged out"), (status = 401, body = ErrorBody)))]
async fn logout(State(state): State<AppState>, headers: HeaderMap) -> StatusCode {
    if let Ok(Credentials::Bearer(token)) = credentials(&headers) {
        state.auth.logout(&token);
    }
    StatusCode::NO_CONTENT
}

/// Dashboard users (never their passwords).
#[utoipa::path(get, path = "/api/v5/users", tag = TAG,
    responses((status = 200, body = Vec<UserView>), (status = 401, body = ErrorBody)))]
async fn list_users(State(state): State<AppState>) -> Json<Vec<UserView>> {
    Json(state.auth.users())
}

/// Creates a user; the password policy applies.
#[utoipa::path(post, path = "/api/v5/users", tag = TAG, request_body = NewUser,
    responses(
        (status = 200, body = UserView),
        (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody),
    ))]
async fn create_user(
    State(state): State<AppState>,
    Body(new): Body<NewUser>,
) -> ApiResult<Json<UserView>> {
    Ok(Json(
        blocking_slow(&state.auth, move |a| a.add_user(new)).await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UserUpdate {
    role: Option<Role>,
    description: Option<String>,
}

/// Changes a user's role or description (the last administrator stays one).
#[utoipa::path(put, path = "/api/v5/users/{username}", tag = TAG, request_body = UserUpdate,
    params(("username" = String, Path)),
    responses(
        (status = 200, body = UserView),
        (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody),
    ))]
async fn update_user(
    State(state): State<AppState>,
    Path(username): Path<String>,
    Body(up): Body<UserUpdate>,
) -> ApiResult<Json<UserView>> {
    let view = blocking(&state.auth, move |a| {
        a.update_user(&username, up.role, up.description)
    })
    .await?;
    Ok(Json(view))
}

/// Deletes a user (not yourself, not the last administrator).
#[utoipa::path(delete, path = "/api/v5/users/{username}", tag = TAG,
    params(("username" = String, Path)),
    responses(
        (status = 204, description = "deleted"),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody),
    ))]
async fn delete_user(
    State(state): State<AppState>,
    Extension(caller): Extension<Principal>,
    Path(username): Path<String>,
) -> ApiResult<StatusCode> {
    let acting = (caller.kind == PrincipalKind::Token).then_some(caller.name);
    blocking(&state.auth, move |a| {
        a.delete_user(&username, acting.as_deref())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChangePassword {
    old_pwd: String,
    new_pwd: String,
}

/// Changes a password: 8 to 64 characters mixing two of letters, digits and symbols, not
/// the username, the old password or the default. Revokes the user's other tokens.
#[utoipa::path(post, path = "/api/v5/users/{username}/change_pwd", tag = TAG,
    request_body = ChangePassword, params(("username" = String, Path)),
    responses(
        (status = 204, description = "changed"),
        (status = 400, description = "wrong old_pwd or a policy rule failed (named)", body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
async fn change_pwd(
    State(state): State<AppState>,
    Extension(caller): Extension<Principal>,
    headers: HeaderMap,
    Path(username): Path<String>,
    Body(req): Body<ChangePassword>,
) -> ApiResult<StatusCode> {
    let own = caller.kind == PrincipalKind::Token && caller.name == username;
    if !own && caller.role != Role::Administrator {
        return Err(ApiError::forbidden(format!(
            "{} may only change its own password",
            caller.name
        )));
    }
    let keep = match credentials(&headers) {
        Ok(Credentials::Bearer(t)) if own => Some(t),
        _ => None,
    };
    blocking_slow(&state.auth, move |a| {
        a.change_password(&username, &req.old_pwd, &req.new_pwd, keep.as_deref())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lists API keys (never their secrets).
#[utoipa::path(get, path = "/api/v5/api_key", tag = TAG,
    responses((status = 200, body = Vec<ApiKeyView>)))]
async fn list_api_keys(State(state): State<AppState>) -> Json<Vec<ApiKeyView>> {
    Json(state.auth.api_keys())
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct CreatedApiKey {
    #[serde(flatten)]
    key: ApiKeyView,
    /// Shown only in this answer; it is stored hashed.
    api_secret: String,
}

/// Creates an API key; the answer holds `api_secret`, shown only this once.
#[utoipa::path(post, path = "/api/v5/api_key", tag = TAG, request_body = NewApiKey,
    responses(
        (status = 200, body = CreatedApiKey),
        (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody),
    ))]
async fn create_api_key(
    State(state): State<AppState>,
    Body(new): Body<NewApiKey>,
) -> ApiResult<Json<CreatedApiKey>> {
    let (key, api_secret) = blocking(&state.auth, move |a| a.create_api_key(new)).await?;
    Ok(Json(CreatedApiKey { key, api_secret }))
}

/// One API key (never its secret).
#[utoipa::path(get, path = "/api/v5/api_key/{name}", tag = TAG,
    params(("name" = String, Path)),
    responses((status = 200, body = ApiKeyView), (status = 404, body = ErrorBody)))]
async fn get_api_key(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<ApiKeyView>> {
    state
        .auth
        .api_key(&name)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("API key {name:?} not found")))
}

/// Enables or disables a key, or changes its expiry, description or role.
#[utoipa::path(put, path = "/api/v5/api_key/{name}", tag = TAG, request_body = ApiKeyUpdate,
    params(("name" = String, Path)),
    responses(
        (status = 200, body = ApiKeyView),
        (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody),
    ))]
async fn update_api_key(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Body(up): Body<ApiKeyUpdate>,
) -> ApiResult<Json<ApiKeyView>> {
    Ok(Json(
        blocking(&state.auth, move |a| a.update_api_key(&name, up)).await?,
    ))
}

/// Deletes an API key.
#[utoipa::path(delete, path = "/api/v5/api_key/{name}", tag = TAG,
    params(("name" = String, Path)),
    responses(
        (status = 204, description = "deleted"),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody),
    ))]
async fn delete_api_key(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    blocking(&state.auth, move |a| a.delete_api_key(&name)).await?;
    Ok(StatusCode::NO_CONTENT)
}
