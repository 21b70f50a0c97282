//! JWT authentication (as EMQX does it: the token in the password field). Verifies HS256/
//! 384/512 with a shared secret, RS256/384/512 and ES256/384 with a public key from a PEM
//! file or a JWKS file (read at load time), then the claims: `exp` and `nbf` against the
//! clock, and `clientid` / `username` when present must equal the client's. An `acl` claim
//! (EMQX's format) adds per-client rules.
//!
//! Outcomes (EMQX's): not a JWT, or a signature no key verifies: ignore (the next method
//! may know the password); expired, not yet valid, or a claim that does not match: deny
//! with "bad username or password".

pub mod jwks;

use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ferry_broker::acl::{AclRule, AclRuleConfig, ActionSel, Permission};
use ferry_broker::{ClientInfo, Registry};
use ring::signature::{self, UnparsedPublicKey};
use serde_json::Value;

use crate::client::Endpoint;
use crate::config::JwtConfig;
use crate::password::constant_eq;
use jwks::RemoteKeys;

/// One verification key.
#[derive(Debug, Clone)]
enum Key {
    Hmac(Vec<u8>),
    /// PKCS#1 RSAPublicKey DER.
    Rsa {
        kid: Option<String>,
        der: Vec<u8>,
    },
    /// Uncompressed point; `p384` selects the curve.
    Ec {
        kid: Option<String>,
        point: Vec<u8>,
        p384: bool,
    },
}

impl Key {
    fn kid(&self) -> Option<&str> {
        match self {
            Key::Hmac(_) => None,
            Key::Rsa { kid, .. } | Key::Ec { kid, .. } => kid.as_deref(),
        }
    }
}

/// Where the keys come from.
#[derive(Debug, Clone)]
enum Keys {
    /// `secret`, `public_key`, `jwks_file`: read at load.
    Fixed(Arc<Vec<Key>>),
    /// `use_jwks = true`: fetched from `endpoint`.
    Remote(Arc<RemoteKeys>),
}

/// A loaded JWT method.
#[derive(Debug, Clone)]
pub struct Jwt {
    keys: Keys,
    acl_claim: String,
}

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtOutcome {
    Valid {
        is_superuser: bool,
        rules: Vec<AclRule>,
    },
    /// Not a JWT or not signed by a known key.
    Ignore,
    /// Why the token is refused.
    Invalid(String),
}

impl Jwt {
    /// Loads the keys; the error names the key of the config and the reason.
    /// For `use_jwks`, the URL and TLS settings are checked; the keys are fetched by
    /// [`Jwt::start`].
    pub fn load(c: &JwtConfig, key: &str) -> Result<Jwt, String> {
        if c.use_jwks {
            let url = c
                .endpoint
                .as_deref()
                .ok_or_else(|| format!("{key}.endpoint: needed with use_jwks = true"))?;
            let endpoint = Endpoint::new(url, c.cacertfile.as_deref(), c.verify).map_err(|e| {
                let field = if e.field() == "url" {
                    "endpoint"
                } else {
                    e.field()
                };
                format!("{key}.{field}: {e}")
            })?;
            let remote = RemoteKeys::new(url, endpoint, c.refresh_interval.0);
            return Ok(Jwt {
                keys: Keys::Remote(Arc::new(remote)),
                acl_claim: c.acl_claim_name.clone(),
            });
        }
        if c.endpoint.is_some() {
            return Err(format!("{key}.endpoint: only used with use_jwks = true"));
        }
        let mut keys = Vec::new();
        if let Some(s) = &c.secret {
            let bytes = if c.secret_base64_encoded {
                STANDARD
                    .decode(s)
                    .map_err(|_| format!("{key}.secret: not base64"))?
            } else {
                s.as_bytes().to_vec()
            };
            keys.push(Key::Hmac(bytes));
        }
        if let Some(p) = &c.public_key {
            keys.push(pem_key(p).map_err(|e| format!("{key}.public_key: {}: {e}", p.display()))?);
        }
        if let Some(p) = &c.jwks_file {
            keys.extend(
                jwks::file(p).map_err(|e| format!("{key}.jwks_file: {}: {e}", p.display()))?,
            );
        }
        if keys.is_empty() {
            return Err(format!(
                "{key}: one of secret, public_key or jwks_file is needed"
            ));
        }
        Ok(Jwt {
            keys: Keys::Fixed(Arc::new(keys)),
            acl_claim: c.acl_claim_name.clone(),
        })
    }

    /// A JWKS URL method: fetches the keys (awaited) and starts their background refresh,
    /// which stops when the returned guard is dropped. `None` for the other key sources.
    pub(crate) async fn start(&self, registry: &Arc<Registry>) -> Option<jwks::Refresher> {
        match &self.keys {
            Keys::Fixed(_) => None,
            Keys::Remote(r) => Some(r.start(registry.clone()).await),
        }
    }

    fn current_keys(&self) -> Arc<Vec<Key>> {
        match &self.keys {
            Keys::Fixed(k) => k.clone(),
            Keys::Remote(r) => r.keys(),
        }
    }

    /// Verifies `token` for `client` at `now` (seconds since the epoch) with the keys held
    /// now.
    pub fn check(&self, token: &[u8], client: &ClientInfo, now: i64) -> JwtOutcome {
        self.check_with(&self.current_keys(), token, client, now).0
    }

    /// [`Jwt::check`]; with a JWKS URL, a token whose `kid` the key set does not have (or
    /// any token while the set is empty) first fetches the set again (rate-limited, see
    /// [`jwks::EARLY_REFRESH_GAP`]), then is checked with the new set.
    pub async fn verify(
        &self,
        token: &[u8],
        client: &ClientInfo,
        now: i64,
        registry: &Registry,
    ) -> JwtOutcome {
        let (outcome, unknown_kid) = self.check_with(&self.current_keys(), token, client, now);
        match &self.keys {
            Keys::Remote(r) if unknown_kid => {
                r.refresh_early(registry).await;
                self.check_with(&r.keys(), token, client, now).0
            }
            _ => outcome,
        }
    }

    /// The outcome, and whether the token was ignored for want of its key (its `kid` is not
    /// in `keys`, or `keys` is empty).
    fn check_with(
        &self,
        keys: &[Key],
        token: &[u8],
        client: &ClientInfo,
        now: i64,
    ) -> (JwtOutcome, bool) {
        let Ok(token) = std::str::from_utf8(token) else {
            return (JwtOutcome::Ignore, false);
        };
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return (JwtOutcome::Ignore, false);
        };
        let (Ok(header), Ok(payload), Ok(sig)) = (
            URL_SAFE_NO_PAD.decode(h),
            URL_SAFE_NO_PAD.decode(p),
            URL_SAFE_NO_PAD.decode(s),
        ) else {
            return (JwtOutcome::Ignore, false);
        };
        let Ok(header) = serde_json::from_slice::<Value>(&header) else {
            return (JwtOutcome::Ignore, false);
        };
        let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
        let kid = header.get("kid").and_then(Value::as_str);
        let signed = &token.as_bytes()[..h.len() + 1 + p.len()];
        if !keys.iter().any(|k| verifies(k, alg, kid, signed, &sig)) {
            let unknown =
                keys.is_empty() || kid.is_some_and(|kid| keys.iter().all(|k| k.kid() != Some(kid)));
            return (JwtOutcome::Ignore, unknown);
        }
        (self.claims(&payload, client, now), false)
    }

    fn claims(&self, payload: &[u8], client: &ClientInfo, now: i64) -> JwtOutcome {
        let Ok(claims) = serde_json::from_slice::<Value>(payload) else {
            return JwtOutcome::Invalid("claims are not JSON".into());
        };
        if let Some(exp) = claims.get("exp") {
            match exp.as_i64() {
                Some(e) if e > now => {}
                Some(_) => return JwtOutcome::Invalid("token expired".into()),
                None => return JwtOutcome::Invalid("exp is not a number".into()),
            }
        }
        if let Some(nbf) = claims.get("nbf") {
            match nbf.as_i64() {
                Some(n) if n <= now => {}
                Some(_) => return JwtOutcome::Invalid("token not valid yet (nbf)".into()),
                None => return JwtOutcome::Invalid("nbf is not a number".into()),
            }
        }
        if let Some(c) = claims.get("clientid")
            && c.as_str() != Some(&*client.client_id)
        {
            return JwtOutcome::Invalid("clientid claim does not match".into());
        }
        if let Some(u) = claims.get("username")
            && u.as_str() != client.username.as_deref()
        {
            return JwtOutcome::Invalid("username claim does not match".into());
        }
        let rules = match claims.get(&self.acl_claim) {
            None => Vec::new(),
            Some(acl) => match acl_rules(acl) {
                Ok(r) => r,
                Err(e) => return JwtOutcome::Invalid(format!("{} claim: {e}", self.acl_claim)),
            },
        };
        let is_superuser = claims
            .get("is_superuser")
            .is_some_and(|v| v.as_bool() == Some(true));
        JwtOutcome::Valid {
            is_superuser,
            rules,
        }
    }
}

fn verifies(key: &Key, alg: &str, kid: Option<&str>, signed: &[u8], sig: &[u8]) -> bool {
    let kid_ok = |k: &Option<String>| kid.is_none() || k.is_none() || k.as_deref() == kid;
    match key {
        Key::Hmac(secret) => {
            let algo = match alg {
                "HS256" => ring::hmac::HMAC_SHA256,
                "HS384" => ring::hmac::HMAC_SHA384,
                "HS512" => ring::hmac::HMAC_SHA512,
                _ => return false,
            };
            let k = ring::hmac::Key::new(algo, secret);
            constant_eq(ring::hmac::sign(&k, signed).as_ref(), sig)
        }
        Key::Rsa { kid: k, der } => {
            let algo: &dyn signature::VerificationAlgorithm = match alg {
                "RS256" => &signature::RSA_PKCS1_2048_8192_SHA256,
                "RS384" => &signature::RSA_PKCS1_2048_8192_SHA384,
                "RS512" => &signature::RSA_PKCS1_2048_8192_SHA512,
                _ => return false,
            };
            kid_ok(k)
                && UnparsedPublicKey::new(algo, der)
                    .verify(signed, sig)
                    .is_ok()
        }
        Key::Ec {
            kid: k,
            point,
            p384,
        } => {
            let algo: &dyn signature::VerificationAlgorithm = match (alg, p384) {
                ("ES256", false) => &signature::ECDSA_P256_SHA256_FIXED,
                ("ES384", true) => &signature::ECDSA_P384_SHA384_FIXED,
                _ => return false,
            };
            kid_ok(k)
                && UnparsedPublicKey::new(algo, point)
                    .verify(signed, sig)
                    .is_ok()
        }
    }
}

/// EMQX's `acl` claim: a list of rules (`permission`, `action`, `topic`/`topics`, `qos`,
/// `retain`), or the older `{"pub": [...], "sub": [...], "all": [...]}` of allowed topics.
pub(crate) fn acl_rules(acl: &Value) -> Result<Vec<AclRule>, String> {
    let configs: Vec<AclRuleConfig> = match acl {
        Value::Array(items) => items
            .iter()
            .map(|item| {
                let mut item = item.clone();
                if let Some(o) = item.as_object_mut()
                    && let Some(t) = o.remove("topic")
                {
                    o.insert("topics".into(), Value::Array(vec![t]));
                }
                serde_json::from_value(item).map_err(|e| e.to_string())
            })
            .collect::<Result<_, _>>()?,
        Value::Object(o) => {
            let mut out = Vec::new();
            for (k, action) in [
                ("pub", ActionSel::Publish),
                ("sub", ActionSel::Subscribe),
                ("all", ActionSel::All),
            ] {
                if let Some(list) = o.get(k) {
                    let topics: Vec<String> =
                        serde_json::from_value(list.clone()).map_err(|e| e.to_string())?;
                    out.push(AclRuleConfig {
                        permission: Permission::Allow,
                        username: None,
                        clientid: None,
                        ipaddr: None,
                        action,
                        qos: None,
                        retain: None,
                        topics,
                    });
                }
            }
            out
        }
        _ => return Err("expected a list of rules or {pub, sub, all}".into()),
    };
    configs.iter().map(AclRule::compile).collect()
}

/// The contents of a DER TLV at the start of `d` and what follows it.
fn der_tlv(d: &[u8], tag: u8) -> Result<(&[u8], &[u8]), String> {
    let bad = || "malformed DER".to_string();
    if d.first() != Some(&tag) {
        return Err(format!("expected DER tag {tag:#04x}"));
    }
    let first = *d.get(1).ok_or_else(bad)?;
    let (len, hdr) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return Err(bad());
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | usize::from(*d.get(2 + i).ok_or_else(bad)?);
        }
        (len, 2 + n)
    };
    let body = d.get(hdr..hdr + len).ok_or_else(bad)?;
    Ok((body, &d[hdr + len..]))
}

const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];

/// A `PUBLIC KEY` PEM (SubjectPublicKeyInfo) with an RSA or EC P-256/P-384 key.
fn pem_key(path: &Path) -> Result<Key, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let b64: String = text
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN PUBLIC KEY-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    if b64.is_empty() {
        return Err("no \"BEGIN PUBLIC KEY\" block".into());
    }
    let der = STANDARD
        .decode(b64.trim())
        .map_err(|_| "bad base64 in PEM".to_string())?;
    let (spki, _) = der_tlv(&der, 0x30)?;
    let (alg, rest) = der_tlv(spki, 0x30)?;
    let (bits, _) = der_tlv(rest, 0x03)?;
    let key = bits.get(1..).ok_or("empty key")?.to_vec();
    let (oid, params) = der_tlv(alg, 0x06)?;
    if oid == OID_RSA {
        return Ok(Key::Rsa {
            kid: None,
            der: key,
        });
    }
    if oid == OID_EC {
        let (curve, _) = der_tlv(params, 0x06)?;
        let p384 = match curve {
            OID_P256 => false,
            OID_P384 => true,
            _ => return Err("EC curve is not P-256 or P-384".into()),
        };
        return Ok(Key::Ec {
            kid: None,
            point: key,
            p384,
        });
    }
    Err("not an RSA or EC public key".into())
}

#[cfg(test)]
mod tests;
