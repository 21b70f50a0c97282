//! The one place every protected route is authenticated and authorized.
//!
//! Order: who is calling (Bearer token or Basic API key, else 401), then whether it must
//! change its password first (403 `PASSWORD_CHANGE_REQUIRED`), then whether its role
//! allows the call (403 `FORBIDDEN`). The [`Principal`] lands in the request extensions.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;

use super::{Auth, AuthError, Principal, PrincipalKind, Role};
use crate::AppState;
use crate::error::ApiError;

const HOW: &str = "authenticate with `Authorization: Bearer TOKEN` (TOKEN from POST /api/v5/login \
                   {username, password}) or with HTTP Basic `api_key:api_secret` of an API key";

/// Credentials found in the `Authorization` header.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Credentials {
    Bearer(String),
    Basic { user: String, secret: String },
}

/// Parses `Authorization`; `Err` says what is wrong with it.
pub(crate) fn credentials(headers: &HeaderMap) -> Result<Credentials, String> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| format!("missing credentials: {HOW}"))?;
    let value = value
        .to_str()
        .map_err(|_| format!("the Authorization header is not text: {HOW}"))?;
    let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty() {
        return Ok(Credentials::Bearer(rest.into()));
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| format!("HTTP Basic credentials are not base64 of key:secret: {HOW}"))?;
        let (user, secret) = decoded
            .split_once(':')
            .ok_or_else(|| format!("HTTP Basic credentials have no ':': {HOW}"))?;
        return Ok(Credentials::Basic {
            user: user.into(),
            secret: secret.into(),
        });
    }
    Err(format!("unsupported Authorization scheme: {HOW}"))
}

/// Runs blocking auth work off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    auth: &Arc<Auth>,
    f: impl FnOnce(&Auth) -> Result<T, AuthError> + Send + 'static,
) -> Result<T, ApiError> {
    let auth = auth.clone();
    tokio::task::spawn_blocking(move || f(&auth))
        .await
        .map_err(|e| ApiError::Internal(format!("authentication task failed: {e}")))?
        .map_err(ApiError::from)
}

/// [`blocking`] for work that hashes a password: at most a few at once.
pub(crate) async fn blocking_slow<T: Send + 'static>(
    auth: &Arc<Auth>,
    f: impl FnOnce(&Auth) -> Result<T, AuthError> + Send + 'static,
) -> Result<T, ApiError> {
    let _permit = auth
        .slow
        .acquire()
        .await
        .map_err(|e| ApiError::Internal(format!("authentication is shutting down: {e}")))?;
    blocking(auth, f).await
}

/// Who is calling, and whether it must change its password first.
async fn authenticate(
    auth: &Arc<Auth>,
    headers: &HeaderMap,
) -> Result<(Principal, bool), ApiError> {
    match credentials(headers).map_err(ApiError::Unauthorized)? {
        Credentials::Bearer(token) => auth.token_principal(&token).ok_or_else(|| {
            ApiError::Unauthorized(format!("the token is unknown, expired or revoked: {HOW}"))
        }),
        Credentials::Basic { user, secret } => {
            match blocking(auth, move |a| a.check_api_key(&user, &secret)).await {
                Ok(p) => Ok((p, false)),
                Err(ApiError::Unauthorized(m)) => {
                    Err(ApiError::Unauthorized(format!("{m}: {HOW}")))
                }
                Err(e) => Err(e),
            }
        }
    }
}

/// The request path without a trailing slash. Routes carry their full `/api/v5/...` paths
/// and are merged, not nested, so this is the path the client sent.
fn request_path(req: &Request) -> &str {
    let path = req.uri().path();
    path.strip_suffix('/').unwrap_or(path)
}

/// `%XX`-decodes a path segment (usernames may contain `@`).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Calls any logged-in user may make on itself, even with the default password.
fn is_own_account_call(p: &Principal, method: &Method, path: &str) -> bool {
    if *method != Method::POST {
        return false;
    }
    if path == "/api/v5/logout" {
        return true;
    }
    p.kind == PrincipalKind::Token
        && path
            .strip_prefix("/api/v5/users/")
            .and_then(|rest| rest.strip_suffix("/change_pwd"))
            .is_some_and(|name| percent_decode(name) == p.name)
}

/// The authorization decision (pure, so it is unit-tested on its own).
pub(crate) fn authorize(
    p: &Principal,
    password_change_required: bool,
    method: &Method,
    path: &str,
) -> Result<(), ApiError> {
    if is_own_account_call(p, method, path) {
        return Ok(());
    }
    if password_change_required {
        return Err(ApiError::Forbidden {
            code: "PASSWORD_CHANGE_REQUIRED",
            message: format!(
                "the password of {0} is still the default and must be changed first: \
                 POST /api/v5/users/{0}/change_pwd {{old_pwd, new_pwd}}",
                p.name
            ),
        });
    }
    let read_only = *method == Method::GET || *method == Method::HEAD;
    let rule_test = *method == Method::POST && path == "/api/v5/rule_test";
    if p.role == Role::Viewer && !read_only && !rule_test {
        return Err(ApiError::forbidden(format!(
            "{} has role viewer, which may only read (GET) and test rules (POST /api/v5/rule_test)",
            p.name
        )));
    }
    Ok(())
}

/// The middleware for every protected route: apply with
/// `route_layer(axum::middleware::from_fn_with_state(state, require_auth))`.
pub(crate) async fn require_auth(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let (principal, change_required) = match authenticate(&state.auth, req.headers()).await {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    if let Err(e) = authorize(
        &principal,
        change_required,
        req.method(),
        request_path(&req),
    ) {
        return e.into_response();
    }
    req.extensions_mut().insert(principal);
    next.run(req).await
}

impl Auth {
    /// HTTP Basic check for an optionally protected endpoint (`/metrics`): an API key, or
    /// a user whose password is not the default.
    #[allow(dead_code, reason = "for the optionally protected GET /metrics")]
    pub(crate) async fn check_basic(self: &Arc<Self>, headers: &HeaderMap) -> bool {
        let Ok(Credentials::Basic { user, secret }) = credentials(headers) else {
            return false;
        };
        blocking_slow(self, move |a| Ok(a.check_basic_credentials(&user, &secret)))
            .await
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn p(name: &str, role: Role, kind: PrincipalKind) -> Principal {
        Principal {
            name: name.into(),
            role,
            kind,
        }
    }

    #[test]
    fn parses_bearer_and_basic() {
        let mut h = HeaderMap::new();
        assert!(credentials(&h).is_err_and(|m| m.contains("Bearer") && m.contains("Basic")));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(credentials(&h), Ok(Credentials::Bearer("abc".into())));
        // "key:sec:ret" -> the secret may contain ':'.
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("basic a2V5OnNlYzpyZXQ="),
        );
        assert_eq!(
            credentials(&h),
            Ok(Credentials::Basic {
                user: "key".into(),
                secret: "sec:ret".into()
            })
        );
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Digest x"));
        assert!(credentials(&h).is_err());
    }

    #[test]
    fn default_password_only_allows_changing_it_and_logging_out() {
        let admin = p("admin", Role::Administrator, PrincipalKind::Token);
        let post = Method::POST;
        assert!(authorize(&admin, true, &post, "/api/v5/users/admin/change_pwd").is_ok());
        assert!(authorize(&admin, true, &post, "/api/v5/logout").is_ok());
        let e = authorize(&admin, true, &Method::GET, "/api/v5/stats");
        assert!(
            matches!(&e, Err(ApiError::Forbidden { code: "PASSWORD_CHANGE_REQUIRED", message })
                if message.contains("POST /api/v5/users/admin/change_pwd {old_pwd, new_pwd}")),
            "{e:?}"
        );
        assert!(authorize(&admin, true, &post, "/api/v5/users/other/change_pwd").is_err());
        assert!(authorize(&admin, false, &Method::DELETE, "/api/v5/users/x").is_ok());
    }

    #[test]
    fn viewer_reads_and_tests_rules_only() {
        let v = p("v@x", Role::Viewer, PrincipalKind::Token);
        assert!(authorize(&v, false, &Method::GET, "/api/v5/rules").is_ok());
        assert!(authorize(&v, false, &Method::HEAD, "/api/v5/rules").is_ok());
        assert!(authorize(&v, false, &Method::POST, "/api/v5/rule_test").is_ok());
        assert!(authorize(&v, false, &Method::POST, "/api/v5/users/v%40x/change_pwd").is_ok());
        for m in [Method::POST, Method::PUT, Method::DELETE] {
            let e = authorize(&v, false, &m, "/api/v5/rules");
            assert!(
                matches!(
                    e,
                    Err(ApiError::Forbidden {
                        code: "FORBIDDEN",
                        ..
                    })
                ),
                "{m}"
            );
        }
        let key = p("v@x", Role::Viewer, PrincipalKind::ApiKey);
        assert!(
            authorize(&key, false, &Method::POST, "/api/v5/users/v%40x/change_pwd").is_err(),
            "an API key has no password of its own"
        );
    }
}
