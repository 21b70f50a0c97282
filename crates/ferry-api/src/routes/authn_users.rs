//! The MQTT clients' built-in user database, at EMQX's paths
//! (`/api/v5/authentication/password_based:built_in_database/users`).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::page::{Paged, paginate};
use crate::AppState;
use crate::admin::{MqttUser, MqttUserNew, MqttUserUpdate};
use crate::error::{ApiError, ApiResult, Body, ErrorBody, Query};

pub(crate) fn protected() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, add_user))
        .routes(routes!(get_user, update_user, delete_user))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct UserQuery {
    page: Option<usize>,
    limit: Option<usize>,
    /// Substring of the user id.
    like_user_id: Option<String>,
    is_superuser: Option<bool>,
}

/// Users of the built-in database (MQTT clients, not API users).
#[utoipa::path(get, path = "/api/v5/authentication/password_based:built_in_database/users",
    tag = "authentication", params(UserQuery),
    responses((status = 200, body = Paged<MqttUser>), (status = 404, body = ErrorBody)))]
async fn list_users(
    State(s): State<AppState>,
    Query(q): Query<UserQuery>,
) -> ApiResult<Json<Paged<MqttUser>>> {
    let all: Vec<MqttUser> = s
        .admin
        .mqtt_users()
        .await?
        .into_iter()
        .filter(|u| {
            q.like_user_id
                .as_ref()
                .is_none_or(|x| u.user_id.contains(x.as_str()))
                && q.is_superuser.is_none_or(|x| x == u.is_superuser)
        })
        .collect();
    Ok(Json(paginate(all, q.page, q.limit)?))
}

/// Adds a user; the password is stored as a salted argon2id hash.
#[utoipa::path(post, path = "/api/v5/authentication/password_based:built_in_database/users",
    tag = "authentication", request_body = MqttUserNew,
    responses((status = 201, body = MqttUser), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn add_user(
    State(s): State<AppState>,
    Body(u): Body<MqttUserNew>,
) -> ApiResult<(StatusCode, Json<MqttUser>)> {
    Ok((StatusCode::CREATED, Json(s.admin.mqtt_user_add(u).await?)))
}

/// One user.
#[utoipa::path(get, path = "/api/v5/authentication/password_based:built_in_database/users/{user_id}",
    tag = "authentication", params(("user_id" = String, Path)),
    responses((status = 200, body = MqttUser), (status = 404, body = ErrorBody)))]
async fn get_user(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<MqttUser>> {
    s.admin
        .mqtt_users()
        .await?
        .into_iter()
        .find(|u| u.user_id == id)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no user {id:?}")))
}

/// Changes a user's password and/or superuser flag.
#[utoipa::path(put, path = "/api/v5/authentication/password_based:built_in_database/users/{user_id}",
    tag = "authentication", params(("user_id" = String, Path)), request_body = MqttUserUpdate,
    responses((status = 200, body = MqttUser), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn update_user(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Body(change): Body<MqttUserUpdate>,
) -> ApiResult<Json<MqttUser>> {
    s.admin.mqtt_user_update(&id, change).await.map(Json)
}

/// Deletes a user (its connected clients stay connected until they reconnect).
#[utoipa::path(delete, path = "/api/v5/authentication/password_based:built_in_database/users/{user_id}",
    tag = "authentication", params(("user_id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_user(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    s.admin.mqtt_user_delete(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
