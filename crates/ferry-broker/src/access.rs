//! Connection-level decisions and what hooks hear of them: authentication of a CONNECT
//! (through the installed [`Authenticator`] chain, then `allow_anonymous`), authorization of
//! a PUBLISH or SUBSCRIBE (superuser, the per-connection cache, per-client rules, the
//! configured [`Acl`], then `no_match`), the CONNACK, and a message dropped for one
//! subscriber. Each runs the hooks (the rule engine checks one atomic to know whether any
//! rule listens).
//!
//! The rules can change at run time ([`Broker::set_acl`]): a generation counter makes every
//! connection's cached results stale at once, so the next check uses the new rules.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use ferry_mqtt::{QoS, reason};
use tokio::time::Instant;

use crate::Broker;
use crate::acl::{Acl, AclRule, AuthzRequest, Permission, first_match};
use crate::hook::{Authn, Authz, AuthzAction, ClientAuth, ClientInfo, DeliveryDropReason};
use crate::message::{Delivery, Message};
use crate::metrics::BrokerMetric;
use crate::session::{Outgoing, Session};

/// At most this many results are cached per connection; a full cache starts over.
const CACHE_MAX: usize = 64;

/// What an authentication method (or a whole chain) decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthnDecision {
    /// Accepted: with these grants.
    Allow {
        is_superuser: bool,
        /// Per-client ACL rules (JWT `acl` claim, HTTP answer).
        rules: Vec<AclRule>,
    },
    /// Refused with this MQTT 5 CONNACK code (`BAD_USER_NAME_OR_PASSWORD`, `NOT_AUTHORIZED`).
    Deny(u8),
    /// No opinion: the next method decides.
    Ignore,
}

/// A decision and the method that made it (`built_in_database`, `jwt`, `http`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthnOutcome {
    pub decision: AuthnDecision,
    pub source: &'static str,
}

/// A boxed future of an [`Authenticator`].
pub type AuthnFuture<'a> = Pin<Box<dyn Future<Output = AuthnOutcome> + Send + 'a>>;

/// The authentication chain the broker asks for every CONNECT (it may do I/O; the CONNECT
/// handling awaits it, nothing else waits).
pub trait Authenticator: Send + Sync + std::fmt::Debug + 'static {
    /// Runs the methods in order until one allows or denies; `Ignore` if none did.
    fn authenticate<'a>(
        &'a self,
        client: &'a ClientInfo,
        password: Option<&'a [u8]>,
    ) -> AuthnFuture<'a>;
    /// No method configured: every client is left to `allow_anonymous`.
    fn is_empty(&self) -> bool;
}

/// How CONNECTs are authenticated (see [`Broker::set_authentication`]).
#[derive(Debug, Clone)]
pub struct Authentication {
    /// Accept a client no method decided about when it gave no username and no password,
    /// or when no method is configured at all.
    pub allow_anonymous: bool,
    pub chain: Option<Arc<dyn Authenticator>>,
}

impl Default for Authentication {
    fn default() -> Self {
        Authentication {
            allow_anonymous: true,
            chain: None,
        }
    }
}

impl Broker {
    /// Installs the authentication chain and `allow_anonymous` (new CONNECTs use it).
    pub fn set_authentication(&self, a: Authentication) {
        *self.authn.write().unwrap_or_else(|e| e.into_inner()) = a;
    }

    /// Replaces the authorization rules; every cached result becomes stale at once.
    pub fn set_acl(&self, acl: Acl) {
        let trivial = match (acl.rules.is_empty(), acl.no_match) {
            (false, _) => 0,
            (true, Permission::Allow) => 1,
            (true, Permission::Deny) => 2,
        };
        *self.acl.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(acl);
        self.acl_trivial.store(trivial, Ordering::Release);
        self.acl_generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The authorization rules in force.
    pub fn acl(&self) -> Arc<Acl> {
        self.acl.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Authenticates a CONNECT (before its session is attached): the chain, then
    /// `allow_anonymous` (the listener's, when it overrides `[authentication]`'s). Returns the decision (reported to hooks and counted) and what the
    /// connection is granted.
    pub async fn authenticate(
        &self,
        client: &ClientInfo,
        password: Option<&[u8]>,
        allow_anonymous: Option<bool>,
    ) -> (Authn, Arc<ClientAuth>) {
        let a = self.authn.read().unwrap_or_else(|e| e.into_inner()).clone();
        let anonymous_ok = allow_anonymous.unwrap_or(a.allow_anonymous);
        let outcome = match &a.chain {
            Some(chain) if !chain.is_empty() => chain.authenticate(client, password).await,
            _ => AuthnOutcome {
                decision: AuthnDecision::Ignore,
                source: "none",
            },
        };
        let chain_empty = a.chain.as_ref().is_none_or(|c| c.is_empty());
        let credentials = client.username.is_some() || password.is_some();
        let (authn, auth) = match outcome.decision {
            AuthnDecision::Allow {
                is_superuser,
                rules,
            } => (
                Authn {
                    reason_code: reason::SUCCESS,
                    is_superuser,
                    is_anonymous: false,
                    source: outcome.source,
                },
                ClientAuth::new(is_superuser, rules, outcome.source),
            ),
            AuthnDecision::Deny(code) => (refused(code, outcome.source), ClientAuth::default()),
            AuthnDecision::Ignore if anonymous_ok && (chain_empty || !credentials) => (
                Authn {
                    reason_code: reason::SUCCESS,
                    is_superuser: false,
                    is_anonymous: true,
                    source: "anonymous",
                },
                ClientAuth::default(),
            ),
            // EMQX: a chain that ends without a decision refuses with not_authorized.
            AuthnDecision::Ignore => (
                refused(reason::NOT_AUTHORIZED, outcome.source),
                ClientAuth::default(),
            ),
        };
        self.metrics().inc(match authn.reason_code {
            reason::SUCCESS if authn.is_anonymous => BrokerMetric::AuthnAnonymous,
            reason::SUCCESS => BrokerMetric::AuthnSuccess,
            reason::BAD_USER_NAME_OR_PASSWORD => BrokerMetric::AuthnBadCredentials,
            _ => BrokerMetric::AuthnNotAuthorized,
        });
        for h in self.hooks() {
            h.client_check_authn_complete(client, &authn);
        }
        (authn, Arc::new(auth))
    }

    /// Decides whether `client` may publish to or subscribe to `topic` (with `qos`, and for a
    /// publish `retain`). Internal clients are not checked by the callers.
    pub fn authorize(
        &self,
        client: &ClientInfo,
        action: AuthzAction,
        topic: &str,
        qos: QoS,
        retain: bool,
    ) -> Authz {
        let req = AuthzRequest {
            action,
            topic,
            qos,
            retain,
        };
        let authz = self.decide(client, &req);
        self.metrics().inc(if authz.allow {
            BrokerMetric::AuthzAllow
        } else {
            BrokerMetric::AuthzDeny
        });
        for h in self.hooks() {
            h.client_check_authz_complete(client, action, topic, &authz);
        }
        authz
    }

    fn decide(&self, client: &ClientInfo, req: &AuthzRequest<'_>) -> Authz {
        let auth = &client.auth;
        if auth.is_superuser {
            self.metrics().inc(BrokerMetric::AuthzSuperuser);
            return Authz {
                allow: true,
                source: "superuser",
            };
        }
        // No rules anywhere (the default): `no_match` decides, no cache needed.
        if auth.rules.is_empty() {
            match self.acl_trivial.load(Ordering::Acquire) {
                1 => {
                    return Authz {
                        allow: true,
                        source: "default",
                    };
                }
                2 => {
                    return Authz {
                        allow: false,
                        source: "default",
                    };
                }
                _ => {}
            }
        }
        let generation = self.acl_generation.load(Ordering::Acquire);
        let key = (
            req.action,
            req.qos as u8,
            req.retain,
            Box::<str>::from(req.topic),
        );
        {
            let mut cache = auth.cache.lock().unwrap_or_else(|e| e.into_inner());
            if cache.generation != generation {
                cache.entries = None;
                cache.generation = generation;
            } else if let Some(&allow) = cache.entries.as_ref().and_then(|e| e.get(&key)) {
                self.metrics().inc(BrokerMetric::AuthzCacheHit);
                return Authz {
                    allow,
                    source: "cache",
                };
            }
        }
        let acl = self.acl();
        let (permission, source) = if let Some(p) = first_match(&auth.rules, client, req) {
            (p, auth.rules_source)
        } else if let Some(p) = acl.check(client, req) {
            (p, "file")
        } else {
            (acl.no_match, "default")
        };
        let allow = permission == Permission::Allow;
        let mut cache = auth.cache.lock().unwrap_or_else(|e| e.into_inner());
        // Rules changed while deciding: do not cache a result of the old ones.
        if cache.generation == generation {
            let entries = cache.entries.get_or_insert_default();
            if entries.len() >= CACHE_MAX {
                entries.clear();
            }
            entries.insert(key, allow);
        }
        Authz { allow, source }
    }

    /// Tells hooks a CONNACK with `reason_code` (MQTT 5) is being sent to `client`.
    pub fn connack(&self, client: &ClientInfo, reason_code: u8) {
        for h in self.hooks() {
            h.client_connack(client, reason_code);
        }
    }

    /// Tells hooks a message for `to` was dropped before it reached it.
    pub fn delivery_dropped(&self, to: &ClientInfo, msg: &Arc<Message>, why: DeliveryDropReason) {
        for h in self.hooks() {
            h.delivery_dropped(to, msg, why);
        }
    }

    /// [`crate::SessionState::next_batch`] on `session`, telling hooks about the messages
    /// that expired in the queue (after the session lock is released).
    pub fn next_batch(
        &self,
        session: &Session,
        conn_id: u64,
        window: usize,
        limit: usize,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) {
        self.next_batch_within(session, conn_id, window, (limit, usize::MAX), now, out);
    }

    /// [`Broker::next_batch`] taking at most `limit.0` deliveries and stopping once `limit.1`
    /// bytes of topic and payload were taken (a connection bounds its write buffer so).
    pub fn next_batch_within(
        &self,
        session: &Session,
        conn_id: u64,
        window: usize,
        limit: (usize, usize),
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) {
        let mut expired: Vec<Delivery> = Vec::new();
        let client = {
            let mut st = session.lock();
            st.next_batch_reporting(
                conn_id,
                window,
                limit,
                now,
                self.metrics(),
                out,
                &mut expired,
            );
            if expired.is_empty() {
                return;
            }
            st.client().clone()
        };
        for d in &expired {
            self.delivery_dropped(&client, &d.msg, DeliveryDropReason::Expired);
        }
    }
}

fn refused(code: u8, source: &'static str) -> Authn {
    Authn {
        reason_code: code,
        is_superuser: false,
        is_anonymous: false,
        source,
    }
}
