//! `[authentication]`: `allow_anonymous` and the ordered `[[authentication.methods]]`.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::client::Verify;

/// `[authentication]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthenticationConfig {
    /// Accept clients that give no username and no password when no method decided about
    /// them, and every client when no method is configured (default true: Ferry's
    /// behaviour without authentication).
    pub allow_anonymous: bool,
    /// Tried in order: the first that allows or denies decides; one that ignores passes
    /// the client on. If every method ignores, the client is refused with "not
    /// authorized" unless it is anonymous and `allow_anonymous` is true.
    pub methods: Vec<MethodConfig>,
}

impl Default for AuthenticationConfig {
    fn default() -> Self {
        AuthenticationConfig {
            allow_anonymous: true,
            methods: Vec::new(),
        }
    }
}

/// One authentication method, by its `mechanism`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mechanism", rename_all = "snake_case", deny_unknown_fields)]
pub enum MethodConfig {
    /// The built-in user database in `[node] data_dir` (`ferry users`, the HTTP API).
    /// Unknown user: ignore; wrong password: deny (bad username or password).
    BuiltInDatabase {},
    /// A JWT in the password field.
    Jwt(JwtConfig),
    /// An HTTP service asked with a POST.
    Http(HttpConfig),
}

/// `mechanism = "jwt"`: exactly one of `secret`, `public_key`, `jwks_file` and
/// `use_jwks = true` (with `endpoint`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// HMAC secret (HS256, HS384, HS512).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(default)]
    pub secret_base64_encoded: bool,
    /// A PEM file with an RSA or EC (P-256, P-384) public key (RS*/ES* tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<PathBuf>,
    /// A JWKS file (`{"keys": [...]}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_file: Option<PathBuf>,
    /// Fetch the keys from `endpoint` (a JWKS over `http://` or `https://`): at start, then
    /// every `refresh_interval`, and early (at most once per 10 s) when a token names a `kid`
    /// the key set does not have. A failed fetch keeps the last good key set.
    #[serde(default)]
    pub use_jwks: bool,
    /// The JWKS URL (with `use_jwks = true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// How often the JWKS is fetched again (default "5m").
    #[serde(default = "jwks_refresh")]
    pub refresh_interval: Dur,
    /// `https://` endpoint: PEM CA bundle to trust (default: the system bundle).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cacertfile: Option<PathBuf>,
    /// `https://` endpoint: "verify_peer" (default) or "verify_none".
    #[serde(default)]
    pub verify: Verify,
    /// The claim with per-client ACL rules.
    #[serde(default = "acl_claim")]
    pub acl_claim_name: String,
}

impl Default for JwtConfig {
    fn default() -> Self {
        JwtConfig {
            secret: None,
            secret_base64_encoded: false,
            public_key: None,
            jwks_file: None,
            use_jwks: false,
            endpoint: None,
            refresh_interval: jwks_refresh(),
            cacertfile: None,
            verify: Verify::VerifyPeer,
            acl_claim_name: acl_claim(),
        }
    }
}

fn jwks_refresh() -> Dur {
    Dur(Duration::from_secs(300))
}

fn acl_claim() -> String {
    "acl".into()
}

/// `mechanism = "http"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// `http://HOST:PORT/PATH` or `https://…`; the POST body is JSON `{clientid, username,
    /// password, peerhost}`.
    pub url: String,
    /// `https://` URL: PEM CA bundle to trust (default: the system bundle
    /// /etc/ssl/certs/ca-certificates.crt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cacertfile: Option<PathBuf>,
    /// `https://` URL: "verify_peer" (default: the certificate must chain to the CA and name
    /// the URL's host) or "verify_none" (any certificate).
    #[serde(default)]
    pub verify: Verify,
    /// How long to wait for the whole answer; a timeout counts as "ignore".
    #[serde(default = "http_timeout")]
    pub timeout: Dur,
}

fn http_timeout() -> Dur {
    Dur(Duration::from_secs(5))
}

/// A duration written as "500ms", "5s", "2m" or "1h" (one type for every section).
pub use ferry_broker::config::Dur;

/// Problems with `[authentication]` that can be found without opening the user database:
/// key and CA files that cannot be read or parsed, URLs that are not `http://` or `https://`.
/// Each names its key. Nothing is fetched.
pub fn validate(c: &AuthenticationConfig) -> Vec<String> {
    let mut problems = Vec::new();
    for (i, m) in c.methods.iter().enumerate() {
        let key = format!("authentication.methods[{i}]");
        match m {
            MethodConfig::BuiltInDatabase {} => {}
            MethodConfig::Jwt(j) => {
                let given = [
                    j.secret.is_some(),
                    j.public_key.is_some(),
                    j.jwks_file.is_some(),
                    j.use_jwks,
                ];
                if given.iter().filter(|g| **g).count() > 1 {
                    problems.push(format!(
                        "{key}: give only one of secret, public_key, jwks_file and use_jwks"
                    ));
                } else if j.use_jwks && j.refresh_interval.0 < Duration::from_secs(1) {
                    problems.push(format!("{key}.refresh_interval: must be at least 1s"));
                } else if let Err(e) = crate::jwt::Jwt::load(j, &key) {
                    problems.push(e);
                }
            }
            MethodConfig::Http(h) => {
                if let Err(e) = crate::http::HttpService::new(h, &key) {
                    problems.push(e);
                }
                if h.timeout.0.is_zero() {
                    problems.push(format!("{key}.timeout: must be more than 0"));
                }
            }
        }
    }
    if c.methods
        .iter()
        .filter(|m| matches!(m, MethodConfig::BuiltInDatabase {}))
        .count()
        > 1
    {
        problems.push("authentication.methods: built_in_database is listed twice".into());
    }
    problems
}
