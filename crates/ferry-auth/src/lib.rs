//! ferry-auth: the authentication methods behind the broker's [`Authenticator`] seam.
//!
//! Owns: `[authentication]` (its config types, [`AuthenticationConfig`]), the chain that
//! tries the methods in order ([`Chain`]), the built-in user database in the data dir
//! ([`users::UserDb`]: argon2id hashes, Mosquitto password file import), password hash
//! verification ([`password`]), JWT verification ([`jwt`], with JWKS files and URLs), the
//! HTTP authentication service ([`http`]) and the small HTTP(S) client both use
//! ([`client`]). A chain holds the background tasks that refresh its JWKS URLs; they stop
//! when the chain is dropped (replaced by a reload of `[authentication]`).
//!
//! Must not: decide authorization (the broker's `acl` does; this crate only hands it
//! per-client rules from a JWT claim or an HTTP answer), know the MQTT wire format, or block
//! an async worker (hashing and file reads run on `spawn_blocking`; HTTP calls are async
//! and bounded by their timeout).

pub mod client;
pub mod config;
pub mod http;
pub mod jwt;
pub mod password;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod users;

use std::path::Path;
use std::sync::Arc;

use ferry_broker::metrics::BrokerMetric;
use ferry_broker::{Authenticator, AuthnDecision, AuthnFuture, AuthnOutcome, ClientInfo, Registry};
use ferry_mqtt::reason;

pub use config::{AuthenticationConfig, HttpConfig, JwtConfig, MethodConfig};
use http::{HttpOutcome, HttpService};
use jwt::{Jwt, JwtOutcome};
use users::{UserDb, Verified};

#[derive(Debug)]
enum Method {
    BuiltIn(Arc<UserDb>),
    Jwt(Jwt),
    Http(HttpService),
}

/// The configured methods, in order.
#[derive(Debug)]
pub struct Chain {
    methods: Vec<Method>,
    registry: Arc<Registry>,
    /// The JWKS URLs' refresh tasks, stopped when the chain is dropped.
    _refreshers: Vec<jwt::jwks::Refresher>,
}

impl Chain {
    /// Loads every method of `cfg` (key and CA files, the user database of `data_dir`:
    /// `users` when given, so the API and every chain share one), then fetches the JWKS
    /// URLs and starts their refresh (a fetch that fails is logged, not an error). Returns
    /// the chain and the user database if a method uses it (the API manages it). Errors name
    /// their key (`authentication.methods[1].public_key: …`).
    pub async fn build(
        cfg: &AuthenticationConfig,
        data_dir: &Path,
        registry: Arc<Registry>,
        users: Option<Arc<UserDb>>,
    ) -> Result<(Chain, Option<Arc<UserDb>>), Vec<String>> {
        let mut methods = Vec::new();
        let mut problems = Vec::new();
        let mut db: Option<Arc<UserDb>> = users;
        for (i, m) in cfg.methods.iter().enumerate() {
            let key = format!("authentication.methods[{i}]");
            match m {
                MethodConfig::BuiltInDatabase {} => {
                    let d = match &db {
                        Some(d) => d.clone(),
                        None => match UserDb::open(data_dir) {
                            Ok(d) => Arc::new(d),
                            Err(e) => {
                                problems.push(format!("{key}: {e}"));
                                continue;
                            }
                        },
                    };
                    db = Some(d.clone());
                    methods.push(Method::BuiltIn(d));
                }
                MethodConfig::Jwt(j) => match Jwt::load(j, &key) {
                    Ok(j) => methods.push(Method::Jwt(j)),
                    Err(e) => problems.push(e),
                },
                MethodConfig::Http(h) => match HttpService::new(h, &key) {
                    Ok(s) => methods.push(Method::Http(s)),
                    Err(e) => problems.push(e),
                },
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let db = db.filter(|_| methods.iter().any(|m| matches!(m, Method::BuiltIn(_))));
        let mut refreshers = Vec::new();
        for m in &methods {
            if let Method::Jwt(j) = m {
                refreshers.extend(j.start(&registry).await);
            }
        }
        let chain = Chain {
            methods,
            registry,
            _refreshers: refreshers,
        };
        Ok((chain, db))
    }

    async fn run(&self, client: &ClientInfo, password: Option<&[u8]>) -> AuthnOutcome {
        for m in &self.methods {
            let (decision, source) = match m {
                Method::BuiltIn(db) => (builtin(db, client, password).await, "built_in_database"),
                Method::Jwt(j) => (jwt(j, client, password, &self.registry).await, "jwt"),
                Method::Http(h) => (self.http(h, client, password).await, "http"),
            };
            if decision != AuthnDecision::Ignore {
                return AuthnOutcome { decision, source };
            }
        }
        AuthnOutcome {
            decision: AuthnDecision::Ignore,
            source: "none",
        }
    }

    async fn http(
        &self,
        h: &HttpService,
        client: &ClientInfo,
        password: Option<&[u8]>,
    ) -> AuthnDecision {
        match h.ask(client, password).await {
            HttpOutcome::Allow {
                is_superuser,
                rules,
            } => AuthnDecision::Allow {
                is_superuser,
                rules,
            },
            HttpOutcome::Deny => AuthnDecision::Deny(reason::NOT_AUTHORIZED),
            HttpOutcome::Ignore => AuthnDecision::Ignore,
            HttpOutcome::Unavailable(why) => {
                self.registry
                    .broker()
                    .inc(BrokerMetric::AuthnHttpUnavailable);
                tracing::warn!(client_id = %client.client_id, "HTTP authentication service unavailable, ignoring: {why}");
                AuthnDecision::Ignore
            }
        }
    }
}

async fn builtin(db: &Arc<UserDb>, client: &ClientInfo, password: Option<&[u8]>) -> AuthnDecision {
    let (Some(user), Some(password)) = (client.username.clone(), password) else {
        return AuthnDecision::Ignore;
    };
    let (db, password) = (db.clone(), password.to_vec());
    let verified = tokio::task::spawn_blocking(move || db.verify(&user, &password)).await;
    match verified {
        Ok(Ok(Verified::Ok { is_superuser })) => AuthnDecision::Allow {
            is_superuser,
            rules: Vec::new(),
        },
        Ok(Ok(Verified::WrongPassword)) => AuthnDecision::Deny(reason::BAD_USER_NAME_OR_PASSWORD),
        Ok(Ok(Verified::UnknownUser)) => AuthnDecision::Ignore,
        Ok(Err(e)) => {
            tracing::error!("built-in user database: {e}");
            AuthnDecision::Ignore
        }
        Err(e) => {
            tracing::error!("built-in user database: {e}");
            AuthnDecision::Ignore
        }
    }
}

async fn jwt(
    j: &Jwt,
    client: &ClientInfo,
    password: Option<&[u8]>,
    registry: &Registry,
) -> AuthnDecision {
    let Some(token) = password else {
        return AuthnDecision::Ignore;
    };
    let now = ferry_broker::hook::now_ms() / 1000;
    match j.verify(token, client, now, registry).await {
        JwtOutcome::Valid {
            is_superuser,
            rules,
        } => AuthnDecision::Allow {
            is_superuser,
            rules,
        },
        JwtOutcome::Ignore => AuthnDecision::Ignore,
        JwtOutcome::Invalid(why) => {
            tracing::info!(client_id = %client.client_id, "JWT refused: {why}");
            AuthnDecision::Deny(reason::BAD_USER_NAME_OR_PASSWORD)
        }
    }
}

impl Authenticator for Chain {
    fn authenticate<'a>(
        &'a self,
        client: &'a ClientInfo,
        password: Option<&'a [u8]>,
    ) -> AuthnFuture<'a> {
        Box::pin(self.run(client, password))
    }

    fn is_empty(&self) -> bool {
        self.methods.is_empty()
    }
}
