//! JWKS key sets: parsed from a file (at load) or fetched from a URL ([`RemoteKeys`]): at
//! start, every `refresh_interval` by a background task (stopped when its [`Refresher`] is
//! dropped, that is when the chain is replaced or dropped), and early, at most once per
//! [`EARLY_REFRESH_GAP`], when a token names a `kid` the set does not have (key rotation).
//! A failed fetch keeps the last good set; fetches are logged and counted
//! (`authentication_jwks_refreshes_total{result}`).
//!
//! The current set is an `Arc` behind a `std::sync::RwLock`, held only to clone or swap the
//! `Arc` (never across `.await`); a tokio mutex lets one early refresh run at a time, the
//! others wait for its result.

use std::path::Path;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ferry_broker::Registry;
use ferry_broker::metrics::BrokerMetric;
use serde_json::Value;
use tokio::time::Instant;

use super::Key;
use crate::client::Endpoint;

/// A token with an unknown `kid` fetches the set again at most this often.
pub const EARLY_REFRESH_GAP: Duration = Duration::from_secs(10);
/// One fetch gives up after this long (the last good set stays).
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// A JWKS fetched from a URL.
#[derive(Debug)]
pub(crate) struct RemoteKeys {
    url: String,
    endpoint: Endpoint,
    refresh_interval: Duration,
    keys: RwLock<Arc<Vec<Key>>>,
    /// When the last early refresh started; held while one runs.
    early: tokio::sync::Mutex<Option<Instant>>,
}

/// Stops the background refresh of a [`RemoteKeys`] when dropped.
#[derive(Debug)]
pub(crate) struct Refresher(tokio::task::JoinHandle<()>);

impl Drop for Refresher {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl RemoteKeys {
    pub(super) fn new(url: &str, endpoint: Endpoint, refresh_interval: Duration) -> RemoteKeys {
        RemoteKeys {
            url: url.to_owned(),
            endpoint,
            refresh_interval,
            keys: RwLock::new(Arc::new(Vec::new())),
            early: tokio::sync::Mutex::new(None),
        }
    }

    /// The current key set.
    pub(super) fn keys(&self) -> Arc<Vec<Key>> {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Fetches the set once (awaited: the chain has its keys before the first CONNECT), then
    /// refreshes it in the background until the returned [`Refresher`] is dropped. A failed
    /// first fetch is logged and counted; the set stays empty until a fetch succeeds.
    pub(crate) async fn start(self: &Arc<Self>, registry: Arc<Registry>) -> Refresher {
        self.refresh(&registry).await;
        let weak: Weak<RemoteKeys> = Arc::downgrade(self);
        let every = self.refresh_interval;
        Refresher(tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(keys) = weak.upgrade() else { return };
                keys.refresh(&registry).await;
            }
        }))
    }

    /// Fetches the set now, unless an early refresh started less than
    /// [`EARLY_REFRESH_GAP`] ago. Concurrent callers wait for the one running.
    pub(super) async fn refresh_early(&self, registry: &Registry) {
        let mut last = self.early.lock().await;
        if last.is_some_and(|t| t.elapsed() < EARLY_REFRESH_GAP) {
            return;
        }
        *last = Some(Instant::now());
        tracing::info!(url = %self.url, "JWT with an unknown kid: fetching the JWKS early");
        self.refresh(registry).await;
    }

    async fn refresh(&self, registry: &Registry) {
        match self.fetch().await {
            Ok(keys) => {
                tracing::debug!(url = %self.url, keys = keys.len(), "JWKS fetched");
                *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
                registry.broker().inc(BrokerMetric::AuthnJwksRefreshed);
            }
            Err(e) => {
                let kept = self.keys().len();
                tracing::warn!(
                    url = %self.url,
                    "JWKS fetch failed, keeping the last good key set ({kept} keys): {e}"
                );
                registry.broker().inc(BrokerMetric::AuthnJwksRefreshFailed);
            }
        }
    }

    async fn fetch(&self) -> Result<Vec<Key>, String> {
        let (status, body) =
            tokio::time::timeout(FETCH_TIMEOUT, self.endpoint.request("GET", None))
                .await
                .map_err(|_| format!("no answer within {FETCH_TIMEOUT:?}"))??;
        if !(200..300).contains(&status) {
            return Err(format!("HTTP status {status}"));
        }
        let text = std::str::from_utf8(&body).map_err(|_| "answer is not UTF-8".to_string())?;
        parse(text)
    }
}

/// A JWKS file.
pub(super) fn file(path: &Path) -> Result<Vec<Key>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    parse(&text)
}

/// A JWKS: `{"keys": [...]}` with RSA (`n`, `e`), EC (`crv`, `x`, `y`) and `oct` (`k`)
/// keys.
pub(super) fn parse(text: &str) -> Result<Vec<Key>, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let keys = v
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("no \"keys\" list")?;
    let field = |k: &Value, f: &str, i: usize| -> Result<Vec<u8>, String> {
        let s = k
            .get(f)
            .and_then(Value::as_str)
            .ok_or(format!("keys[{i}]: no {f:?}"))?;
        URL_SAFE_NO_PAD
            .decode(s.trim_end_matches('='))
            .map_err(|_| format!("keys[{i}].{f}: not base64url"))
    };
    let mut out = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        let kid = k.get("kid").and_then(Value::as_str).map(str::to_owned);
        match k.get("kty").and_then(Value::as_str) {
            Some("RSA") => out.push(Key::Rsa {
                kid,
                der: rsa_der(&field(k, "n", i)?, &field(k, "e", i)?),
            }),
            Some("EC") => {
                let p384 = match k.get("crv").and_then(Value::as_str) {
                    Some("P-256") => false,
                    Some("P-384") => true,
                    other => return Err(format!("keys[{i}]: unsupported curve {other:?}")),
                };
                let mut point = vec![4u8];
                point.extend(field(k, "x", i)?);
                point.extend(field(k, "y", i)?);
                out.push(Key::Ec { kid, point, p384 });
            }
            Some("oct") => out.push(Key::Hmac(field(k, "k", i)?)),
            other => return Err(format!("keys[{i}]: unsupported kty {other:?}")),
        }
    }
    if out.is_empty() {
        return Err("no keys".into());
    }
    Ok(out)
}

/// PKCS#1 RSAPublicKey DER from its modulus and exponent.
pub(super) fn rsa_der(n: &[u8], e: &[u8]) -> Vec<u8> {
    fn int(v: &[u8]) -> Vec<u8> {
        let v: &[u8] = match v.iter().position(|&b| b != 0) {
            Some(i) => &v[i..],
            None => &[0],
        };
        let mut body = Vec::with_capacity(v.len() + 1);
        if v[0] & 0x80 != 0 {
            body.push(0);
        }
        body.extend_from_slice(v);
        tlv(0x02, &body)
    }
    fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let n = body.len();
        if n < 0x80 {
            out.push(n as u8);
        } else {
            let bytes = n.to_be_bytes();
            let skip = bytes
                .iter()
                .position(|&b| b != 0)
                .unwrap_or(bytes.len() - 1);
            out.push(0x80 | (bytes.len() - skip) as u8);
            out.extend_from_slice(&bytes[skip..]);
        }
        out.extend_from_slice(body);
        out
    }
    let mut seq = int(n);
    seq.extend(int(e));
    tlv(0x30, &seq)
}
