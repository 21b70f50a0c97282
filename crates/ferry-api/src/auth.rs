//! Authentication of API callers: dashboard users, bearer tokens, API keys.
//!
//! Owns: the users and API keys stored in `DATA/api/` (see `auth/store.rs` for the format and
//! how writes stay atomic), the argon2id hashes and password policy (`auth/password.rs`),
//! bearer tokens and failed-login locks held in memory (`auth/sessions.rs`), and the one
//! middleware that authenticates and authorizes every protected route (`auth/middleware.rs`).
//! Must not: log or return a password, a secret, a token or a hash (only the API key
//! secret is shown, once, when the key is created); do slow work on an async worker.
//!
//! Locking: `users` and `keys` are behind short `RwLock`s that the request path reads;
//! writers serialize on `write` (held across the file write, only on blocking threads),
//! build the next state on a copy, persist it, and then swap it in. Sessions have their
//! own short `Mutex`. No lock is held across an `.await`, or while hashing.
//!
//! Blocking: [`Auth::open`], the user and key changes, [`Auth::login`] and the API key
//! check hash or touch files; handlers run them with `tokio::task::spawn_blocking`.

mod keys;
pub(crate) mod middleware;
mod password;
mod sessions;
mod store;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::error::ApiError;
pub(crate) use middleware::require_auth;
use password::Cost;
use sessions::Sessions;
use store::{KeyRecord, KeysFile, UserRecord, UsersFile};

/// Settings from `[api]`. `Debug` leaves the default password out.
#[derive(Clone)]
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

impl std::fmt::Debug for AuthSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthSettings")
            .field("default_username", &self.default_username)
            .field("default_password", &"<redacted>")
            .field("token_ttl", &self.token_ttl)
            .field("max_login_failures", &self.max_login_failures)
            .field("lock_duration", &self.lock_duration)
            .field("bootstrap_file", &self.bootstrap_file)
            .finish()
    }
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

/// What a user or key may do: `administrator` everything, `viewer` reads and rule tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Administrator,
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Administrator => "administrator",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "administrator" => Some(Role::Administrator),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a caller proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    /// A dashboard user with a bearer token from `POST /api/v5/login`.
    Token,
    /// An API key with HTTP Basic.
    ApiKey,
}

/// The authenticated caller, in the request's extensions of every protected route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The username, or the API key's name.
    pub name: String,
    pub role: Role,
    pub kind: PrincipalKind,
}

/// A user as the API shows it (never its hash). EMQX's fields plus
/// `password_change_required`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UserView {
    pub username: String,
    pub role: Role,
    pub description: String,
    /// Always `local`.
    pub backend: String,
    pub password_change_required: bool,
}

/// A new user.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub username: String,
    pub password: String,
    #[serde(default = "default_role")]
    pub role: Role,
    #[serde(default)]
    pub description: String,
}

fn default_role() -> Role {
    Role::Administrator
}

/// An API key as the API shows it (never its secret or hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiKeyView {
    pub name: String,
    pub api_key: String,
    /// RFC 3339, or `infinity`.
    pub expired_at: String,
    /// RFC 3339.
    pub created_at: String,
    pub desc: String,
    pub enable: bool,
    /// Whether `expired_at` has passed.
    pub expired: bool,
    pub role: Role,
    /// `api` (created through the API, persisted) or `bootstrap_file` (read at start).
    pub source: String,
}

/// A new API key.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    pub name: String,
    /// RFC 3339, or `infinity` (the default).
    #[serde(default)]
    pub expired_at: Option<String>,
    #[serde(default)]
    pub desc: String,
    #[serde(default = "yes")]
    pub enable: bool,
    #[serde(default = "default_role")]
    pub role: Role,
}

fn yes() -> bool {
    true
}

/// Changes to an API key; absent fields stay.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyUpdate {
    pub enable: Option<bool>,
    /// RFC 3339, or `infinity`.
    pub expired_at: Option<String>,
    pub desc: Option<String>,
    pub role: Option<Role>,
}

/// A successful login.
#[derive(Debug, Clone)]
pub struct LoginOk {
    pub token: String,
    pub role: Role,
    pub password_change_required: bool,
}

/// What can go wrong in authentication and its storage.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: cannot be read: {message}")]
    Corrupt { path: PathBuf, message: String },
    #[error("{path}:{line}: {message}")]
    Bootstrap {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("hashing failed: {0}")]
    Hash(String),
    #[error("the OS random number generator failed: {0}")]
    Random(String),
    #[error("wrong username or password")]
    BadCredentials,
    /// Right credentials, but refused (a disabled or expired API key): 401.
    #[error("{0}")]
    Refused(String),
    #[error(
        "too many failed logins for this username: locked for {} more seconds",
        .0.as_secs().max(1)
    )]
    Locked(Duration),
    #[error("password refused: {}", .0.join("; "))]
    Policy(Vec<String>),
    #[error("{}", .0.join("; "))]
    Invalid(Vec<String>),
    #[error("user {0:?} not found")]
    UserNotFound(String),
    #[error("user {0:?} already exists")]
    UserExists(String),
    #[error("API key {0:?} not found")]
    KeyNotFound(String),
    #[error("API key {0:?} already exists")]
    KeyExists(String),
    /// A change refused because of what it would leave behind (409).
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Forbidden(String),
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> ApiError {
        match e {
            AuthError::BadCredentials | AuthError::Refused(_) => {
                ApiError::Unauthorized(e.to_string())
            }
            AuthError::Locked(_) => ApiError::Locked(e.to_string()),
            AuthError::Policy(ref problems) | AuthError::Invalid(ref problems) => {
                ApiError::BadRequest {
                    message: e.to_string(),
                    problems: problems.clone(),
                }
            }
            AuthError::UserNotFound(_) | AuthError::KeyNotFound(_) => {
                ApiError::NotFound(e.to_string())
            }
            AuthError::UserExists(_) | AuthError::KeyExists(_) | AuthError::Conflict(_) => {
                ApiError::Conflict(e.to_string())
            }
            AuthError::Forbidden(m) => ApiError::forbidden(m),
            AuthError::Io { .. }
            | AuthError::Corrupt { .. }
            | AuthError::Bootstrap { .. }
            | AuthError::Hash(_)
            | AuthError::Random(_) => ApiError::Internal(e.to_string()),
        }
    }
}

/// Checks a username or key name: 1 to 64 of `A-Z a-z 0-9 _ - . @`.
pub(crate) fn valid_name(field: &str, name: &str) -> Result<(), String> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@'));
    if name.is_empty() || name.len() > 64 || !ok_chars {
        return Err(format!(
            "{field}: must be 1 to 64 characters of A-Z a-z 0-9 _ - . @ (got {name:?})"
        ));
    }
    Ok(())
}

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn rfc3339(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

fn lock<T>(l: &Mutex<T>) -> MutexGuard<'_, T> {
    l.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Users, tokens and API keys, stored in the data dir.
pub struct Auth {
    settings: AuthSettings,
    users_path: PathBuf,
    keys_path: PathBuf,
    users: RwLock<BTreeMap<String, UserRecord>>,
    /// By name; bootstrap keys included (flagged, never persisted).
    keys: RwLock<BTreeMap<String, KeyRecord>>,
    /// Serializes writers of both files.
    write: Mutex<()>,
    sessions: Mutex<Sessions>,
    /// Bounds concurrent password hashes (19 MiB and tens of ms each), so a flood of
    /// logins queues cheaply instead of filling the blocking pool and memory.
    pub(crate) slow: tokio::sync::Semaphore,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("users_path", &self.users_path)
            .field("users", &read(&self.users).len())
            .field("api_keys", &read(&self.keys).len())
            .finish_non_exhaustive()
    }
}

impl Auth {
    /// Opens (creating if needed) `DATA_DIR/api/users.json` and `api_keys.json`, and reads
    /// the bootstrap file. With no users, creates the default administrator, whose password
    /// must be changed before anything else. Blocking.
    pub fn open(data_dir: &Path, settings: AuthSettings) -> Result<Auth, AuthError> {
        let dir = data_dir.join("api");
        let users_path = dir.join("users.json");
        let keys_path = dir.join("api_keys.json");
        let users = match store::load::<UsersFile>(&users_path)? {
            Some(f) => check_version(&users_path, f.version, f.users)?,
            None => Vec::new(),
        };
        let keys = match store::load::<KeysFile>(&keys_path)? {
            Some(f) => check_version(&keys_path, f.version, f.api_keys)?,
            None => Vec::new(),
        };
        let mut keys: BTreeMap<String, KeyRecord> =
            keys.into_iter().map(|k| (k.name.clone(), k)).collect();
        if let Some(path) = &settings.bootstrap_file {
            let text = std::fs::read_to_string(path).map_err(|source| AuthError::Io {
                path: path.clone(),
                source,
            })?;
            for b in store::parse_bootstrap(path, &text)? {
                if keys.contains_key(&b.key) {
                    return Err(AuthError::Corrupt {
                        path: path.clone(),
                        message: format!(
                            "bootstrap key {:?} is also an API key created through the API",
                            b.key
                        ),
                    });
                }
                let record = KeyRecord {
                    name: b.key.clone(),
                    api_key: b.key.clone(),
                    secret_hash: password::hash(&b.secret, Cost::RandomSecret)?,
                    role: b.role,
                    desc: "from the bootstrap file".into(),
                    enable: true,
                    expired_at: None,
                    created_at: unix_now(),
                    bootstrap: true,
                };
                keys.insert(b.key, record);
            }
        }
        let auth = Auth {
            users: RwLock::new(users.into_iter().map(|u| (u.username.clone(), u)).collect()),
            keys: RwLock::new(keys),
            users_path,
            keys_path,
            write: Mutex::new(()),
            sessions: Mutex::new(Sessions::default()),
            slow: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8)),
            ),
            settings,
        };
        if read(&auth.users).is_empty() {
            let name = auth.settings.default_username.clone();
            valid_name("default_username", &name).map_err(|m| AuthError::Invalid(vec![m]))?;
            let hash = password::hash(&auth.settings.default_password, Cost::Password)?;
            auth.mutate_users(|users| {
                users.insert(
                    name.clone(),
                    UserRecord {
                        username: name.clone(),
                        role: Role::Administrator,
                        description: "administrator".into(),
                        password_hash: hash,
                        password_change_required: true,
                    },
                );
                Ok(())
            })?;
            tracing::info!(user = %name, "created the default API user; its password must be changed at first login");
        }
        Ok(auth)
    }

    pub fn settings(&self) -> &AuthSettings {
        &self.settings
    }

    // ---- users -------------------------------------------------------------------------

    /// Serializes writers; applies `f` to a copy, persists it, then publishes it.
    fn mutate_users<T>(
        &self,
        f: impl FnOnce(&mut BTreeMap<String, UserRecord>) -> Result<T, AuthError>,
    ) -> Result<T, AuthError> {
        let _w = lock(&self.write);
        let mut next = read(&self.users).clone();
        let out = f(&mut next)?;
        store::save(
            &self.users_path,
            &UsersFile {
                version: store::FORMAT_VERSION,
                users: next.values().cloned().collect(),
            },
        )?;
        *write(&self.users) = next;
        Ok(out)
    }

    fn mutate_keys<T>(
        &self,
        f: impl FnOnce(&mut BTreeMap<String, KeyRecord>) -> Result<T, AuthError>,
    ) -> Result<T, AuthError> {
        let _w = lock(&self.write);
        let mut next = read(&self.keys).clone();
        let out = f(&mut next)?;
        store::save(
            &self.keys_path,
            &KeysFile {
                version: store::FORMAT_VERSION,
                api_keys: next.values().filter(|k| !k.bootstrap).cloned().collect(),
            },
        )?;
        *write(&self.keys) = next;
        Ok(out)
    }

    pub fn users(&self) -> Vec<UserView> {
        read(&self.users).values().map(user_view).collect()
    }

    pub fn user(&self, username: &str) -> Option<UserView> {
        read(&self.users).get(username).map(user_view)
    }

    /// Adds a user (password policy applies). Blocking.
    pub fn add_user(&self, new: NewUser) -> Result<UserView, AuthError> {
        let mut problems = Vec::new();
        if let Err(m) = valid_name("username", &new.username) {
            problems.push(m);
        }
        if new.description.chars().count() > 256 {
            problems.push("description: at most 256 characters".into());
        }
        problems.extend(password::policy_problems(
            "password",
            &new.username,
            &new.password,
            None,
            &self.settings.default_password,
        ));
        if !problems.is_empty() {
            return Err(AuthError::Invalid(problems));
        }
        if read(&self.users).contains_key(&new.username) {
            return Err(AuthError::UserExists(new.username));
        }
        let hash = password::hash(&new.password, Cost::Password)?;
        self.mutate_users(|users| {
            if users.contains_key(&new.username) {
                return Err(AuthError::UserExists(new.username.clone()));
            }
            let record = UserRecord {
                username: new.username.clone(),
                role: new.role,
                description: new.description,
                password_hash: hash,
                password_change_required: false,
            };
            let view = user_view(&record);
            users.insert(new.username, record);
            Ok(view)
        })
    }

    /// Changes a user's role or description. Demoting the last administrator is refused.
    /// Blocking.
    pub fn update_user(
        &self,
        username: &str,
        role: Option<Role>,
        description: Option<String>,
    ) -> Result<UserView, AuthError> {
        if description
            .as_ref()
            .is_some_and(|d| d.chars().count() > 256)
        {
            return Err(AuthError::Invalid(vec![
                "description: at most 256 characters".into(),
            ]));
        }
        self.mutate_users(|users| {
            let admins = count_admins(users);
            let u = users
                .get_mut(username)
                .ok_or_else(|| AuthError::UserNotFound(username.into()))?;
            if let Some(role) = role {
                if u.role == Role::Administrator && role != Role::Administrator && admins <= 1 {
                    return Err(AuthError::Conflict(format!(
                        "{username} is the last administrator; make another user administrator first"
                    )));
                }
                u.role = role;
            }
            if let Some(d) = description {
                u.description = d;
            }
            Ok(user_view(u))
        })
    }

    /// Deletes a user and its tokens. Refused for the last administrator and for `acting`
    /// (the caller's own username). Blocking.
    pub fn delete_user(&self, username: &str, acting: Option<&str>) -> Result<(), AuthError> {
        if acting == Some(username) {
            return Err(AuthError::Conflict(format!(
                "{username} cannot delete itself; log in as another administrator"
            )));
        }
        self.mutate_users(|users| {
            let u = users
                .get(username)
                .ok_or_else(|| AuthError::UserNotFound(username.into()))?;
            if u.role == Role::Administrator && count_admins(users) <= 1 {
                return Err(AuthError::Conflict(format!(
                    "{username} is the last administrator and cannot be deleted"
                )));
            }
            users.remove(username);
            Ok(())
        })?;
        lock(&self.sessions).revoke_user(username, None);
        Ok(())
    }

    /// `change_pwd`: checks `old`, applies the policy, clears `password_change_required`,
    /// and revokes the user's tokens except `keep`. Blocking.
    pub fn change_password(
        &self,
        username: &str,
        old: &str,
        new: &str,
        keep: Option<&str>,
    ) -> Result<(), AuthError> {
        let current = read(&self.users)
            .get(username)
            .map(|u| u.password_hash.clone())
            .ok_or_else(|| AuthError::UserNotFound(username.into()))?;
        if !password::verify(old, &current) {
            return Err(AuthError::Invalid(vec![
                "old_pwd: is not the current password".into(),
            ]));
        }
        let problems = password::policy_problems(
            "new_pwd",
            username,
            new,
            Some(old),
            &self.settings.default_password,
        );
        if !problems.is_empty() {
            return Err(AuthError::Policy(problems));
        }
        self.store_password(username, new, Some(&current), keep)
    }

    /// Sets a password without the old one (the `ferry admins passwd` CLI, while Ferry is
    /// stopped): the policy applies, `password_change_required` is cleared, every token
    /// of the user is revoked. Blocking.
    pub fn set_password(&self, username: &str, new: &str) -> Result<(), AuthError> {
        if !read(&self.users).contains_key(username) {
            return Err(AuthError::UserNotFound(username.into()));
        }
        let problems = password::policy_problems(
            "password",
            username,
            new,
            None,
            &self.settings.default_password,
        );
        if !problems.is_empty() {
            return Err(AuthError::Policy(problems));
        }
        self.store_password(username, new, None, None)
    }

    fn store_password(
        &self,
        username: &str,
        new: &str,
        expected_hash: Option<&str>,
        keep: Option<&str>,
    ) -> Result<(), AuthError> {
        let hash = password::hash(new, Cost::Password)?;
        self.mutate_users(|users| {
            let u = users
                .get_mut(username)
                .ok_or_else(|| AuthError::UserNotFound(username.into()))?;
            if expected_hash.is_some_and(|h| h != u.password_hash) {
                return Err(AuthError::Conflict(
                    "the password was changed concurrently; try again".into(),
                ));
            }
            u.password_hash = hash;
            u.password_change_required = false;
            Ok(())
        })?;
        lock(&self.sessions).revoke_user(username, keep);
        Ok(())
    }

    // ---- tokens ------------------------------------------------------------------------

    /// Checks a username and password and issues a bearer token. Unknown users and wrong
    /// passwords fail alike (same error, same time); `max_login_failures` in a row lock
    /// the username for `lock_duration`. Blocking.
    pub fn login(&self, username: &str, password: &str) -> Result<LoginOk, AuthError> {
        let user = self.check_user_password(username, password)?;
        let token = password::random_token()?;
        lock(&self.sessions).issue(
            token.clone(),
            username,
            Instant::now(),
            self.settings.token_ttl,
        );
        Ok(LoginOk {
            token,
            role: user.role,
            password_change_required: user.password_change_required,
        })
    }

    fn check_user_password(&self, username: &str, password: &str) -> Result<UserRecord, AuthError> {
        if let Some(left) = lock(&self.sessions).locked_for(username, Instant::now()) {
            return Err(AuthError::Locked(left));
        }
        let user = read(&self.users).get(username).cloned();
        let ok = match &user {
            Some(u) => password::verify(password, &u.password_hash),
            None => {
                password::verify_dummy(password);
                false
            }
        };
        let mut sessions = lock(&self.sessions);
        match user {
            Some(u) if ok => {
                sessions.succeeded(username);
                Ok(u)
            }
            _ => {
                sessions.failed(
                    username,
                    Instant::now(),
                    self.settings.max_login_failures,
                    self.settings.lock_duration,
                );
                Err(AuthError::BadCredentials)
            }
        }
    }

    /// Revokes a token; whether it was live.
    pub fn logout(&self, token: &str) -> bool {
        lock(&self.sessions).revoke(token)
    }

    /// The caller behind a live bearer token, and whether it must change its password
    /// first. Cheap: no hashing, short locks.
    pub fn token_principal(&self, token: &str) -> Option<(Principal, bool)> {
        let username = lock(&self.sessions).lookup(token, Instant::now())?;
        let users = read(&self.users);
        let u = users.get(&username)?;
        Some((
            Principal {
                name: u.username.clone(),
                role: u.role,
                kind: PrincipalKind::Token,
            },
            u.password_change_required,
        ))
    }

    /// HTTP Basic for `/metrics`: an API key, or a user whose password is not the default
    /// (failed attempts count towards the lock). Blocking.
    pub fn check_basic_credentials(&self, user: &str, secret: &str) -> bool {
        if self.check_api_key(user, secret).is_ok() {
            return true;
        }
        self.check_user_password(user, secret)
            .is_ok_and(|u| !u.password_change_required)
    }
}

fn check_version<T>(path: &Path, version: u32, items: Vec<T>) -> Result<Vec<T>, AuthError> {
    if version != store::FORMAT_VERSION {
        return Err(AuthError::Corrupt {
            path: path.to_path_buf(),
            message: format!(
                "format version {version}, this Ferry reads version {}",
                store::FORMAT_VERSION
            ),
        });
    }
    Ok(items)
}

fn count_admins(users: &BTreeMap<String, UserRecord>) -> usize {
    users
        .values()
        .filter(|u| u.role == Role::Administrator)
        .count()
}

fn user_view(u: &UserRecord) -> UserView {
    UserView {
        username: u.username.clone(),
        role: u.role,
        description: u.description.clone(),
        backend: "local".into(),
        password_change_required: u.password_change_required,
    }
}

#[cfg(test)]
mod tests;
