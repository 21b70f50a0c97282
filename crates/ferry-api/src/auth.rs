//! Authentication of API callers: dashboard users, bearer tokens, API keys.
//! (Filled in by the auth work: see the plan.)

use std::path::PathBuf;
use std::time::Duration;

/// Settings from `[api]`.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub default_username: String,
    pub default_password: String,
    pub token_ttl: Duration,
    /// Failed logins in a row before the username is locked.
    pub max_login_failures: u32,
    pub lock_duration: Duration,
    /// `key:secret` lines read at start (API keys for scripts).
    pub bootstrap_file: Option<PathBuf>,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            default_username: "admin".into(),
            default_password: "public".into(),
            token_ttl: Duration::from_secs(3600),
            max_login_failures: 5,
            lock_duration: Duration::from_secs(300),
            bootstrap_file: None,
        }
    }
}

/// Users, tokens and API keys, stored in the data dir.
#[derive(Debug)]
pub struct Auth {}
