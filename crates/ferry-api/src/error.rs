//! One error type for every handler, mapped to an HTTP status in one place. The body is
//! always EMQX's `{code, message}`; validation errors add `problems` (one per key path).

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The body of every error answer.
#[derive(Debug, Clone, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// EMQX-style code, e.g. `BAD_REQUEST`, `NOT_FOUND`, `PASSWORD_CHANGE_REQUIRED`.
    pub code: String,
    pub message: String,
    /// Validation problems, each naming its key path (400 only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// An error a handler returns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed or fails validation.
    #[error("{message}")]
    BadRequest {
        message: String,
        problems: Vec<String>,
    },
    /// 401: no or bad credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// 403 with a specific code (`FORBIDDEN`, `PASSWORD_CHANGE_REQUIRED`).
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 409: the object exists, or is in use.
    #[error("{0}")]
    Conflict(String),
    /// 412: a rule test whose FROM or WHERE did not match.
    #[error("{0}")]
    PreconditionFailed(String),
    /// 413.
    #[error("{0}")]
    TooLarge(String),
    /// 423: the user is locked after repeated failed logins.
    #[error("{0}")]
    Locked(String),
    /// 503: the operation needs something that is not available (e.g. Kafka unreachable).
    #[error("{0}")]
    Unavailable(String),
    /// 500: a bug or an I/O failure; the message says what failed.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::BadRequest {
            message: message.into(),
            problems: Vec::new(),
        }
    }

    /// 400 listing every problem (each "key.path: reason").
    pub fn invalid(problems: Vec<String>) -> ApiError {
        ApiError::BadRequest {
            message: format!("invalid configuration: {}", problems.join("; ")),
            problems,
        }
    }

    pub fn not_found(what: impl Into<String>) -> ApiError {
        ApiError::NotFound(what.into())
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::Forbidden {
            code: "FORBIDDEN",
            message: message.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Locked(_) => StatusCode::LOCKED,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { .. } => "BAD_REQUEST",
            ApiError::Unauthorized(_) => "UNAUTHORIZED",
            ApiError::Forbidden { code, .. } => code,
            ApiError::NotFound(_) => "NOT_FOUND",
            ApiError::Conflict(_) => "CONFLICT",
            ApiError::PreconditionFailed(_) => "NOT_MATCH",
            ApiError::TooLarge(_) => "PAYLOAD_TOO_LARGE",
            ApiError::Locked(_) => "USER_LOCKED",
            ApiError::Unavailable(_) => "SERVICE_UNAVAILABLE",
            ApiError::Internal(_) => "INTERNAL_ERROR",
        }
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            code: self.code().into(),
            message: self.to_string(),
            problems: match self {
                ApiError::BadRequest { problems, .. } => problems.clone(),
                _ => Vec::new(),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(m) = &self {
            tracing::warn!("API internal error: {m}");
        }
        (self.status(), Json(self.body())).into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> ApiError {
        match r {
            JsonRejection::BytesRejection(b) if b.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::TooLarge(format!("request body too large: {}", b.body_text()))
            }
            JsonRejection::MissingJsonContentType(_) => {
                ApiError::bad_request("expected a JSON body with Content-Type: application/json")
            }
            other => ApiError::bad_request(format!("invalid JSON body: {}", other.body_text())),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> ApiError {
        ApiError::bad_request(format!("invalid query string: {}", r.body_text()))
    }
}

/// A JSON body whose rejections are `ApiError`s (400/413 with `{code, message}`).
#[derive(Debug, Clone, Copy, Default, axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Body<T>(pub T);

/// Query parameters whose rejections are `ApiError`s.
#[derive(Debug, Clone, Copy, Default, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

pub type ApiResult<T> = Result<T, ApiError>;
