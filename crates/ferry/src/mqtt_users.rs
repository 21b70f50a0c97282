//! The API's view of the built-in user database: blocking `UserDb` calls (hashing, file
//! writes) moved off the async workers, and its errors mapped to API errors.

use std::sync::Arc;

use ferry_api::ApiError;
use ferry_api::admin::{MqttUser, MqttUserNew, MqttUserUpdate};
use ferry_auth::users::{UserDb, UserDbError, UserRecord};

fn api_error(e: UserDbError) -> ApiError {
    match e {
        UserDbError::Exists(_) => ApiError::Conflict(e.to_string()),
        UserDbError::NotFound(_) => ApiError::not_found(e.to_string()),
        UserDbError::Invalid(_) | UserDbError::Import { .. } => {
            ApiError::bad_request(e.to_string())
        }
        UserDbError::Io { .. } | UserDbError::Corrupt { .. } => ApiError::Internal(e.to_string()),
    }
}

fn view(u: UserRecord) -> MqttUser {
    MqttUser {
        user_id: u.user_id,
        is_superuser: u.is_superuser,
    }
}

async fn blocking<T: Send + 'static>(
    db: Option<&Arc<UserDb>>,
    f: impl FnOnce(&UserDb) -> Result<T, UserDbError> + Send + 'static,
) -> Result<T, ApiError> {
    let db = db.cloned().ok_or_else(|| {
        ApiError::not_found("the built_in_database authentication method is not configured")
    })?;
    tokio::task::spawn_blocking(move || f(&db))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(api_error)
}

pub(crate) async fn list(db: Option<&Arc<UserDb>>) -> Result<Vec<MqttUser>, ApiError> {
    blocking(db, |d| Ok(d.list()?.into_iter().map(view).collect())).await
}

pub(crate) async fn add(db: Option<&Arc<UserDb>>, u: MqttUserNew) -> Result<MqttUser, ApiError> {
    blocking(db, move |d| {
        d.add(&u.user_id, &u.password, u.is_superuser)?;
        Ok(MqttUser {
            user_id: u.user_id,
            is_superuser: u.is_superuser,
        })
    })
    .await
}

pub(crate) async fn update(
    db: Option<&Arc<UserDb>>,
    id: &str,
    c: MqttUserUpdate,
) -> Result<MqttUser, ApiError> {
    let id = id.to_owned();
    blocking(db, move |d| {
        d.update(&id, c.password.as_deref(), c.is_superuser)
            .map(view)
    })
    .await
}

pub(crate) async fn delete(db: Option<&Arc<UserDb>>, id: &str) -> Result<(), ApiError> {
    let id = id.to_owned();
    blocking(db, move |d| d.delete(&id)).await
}
