//! API keys (EMQX's `/api/v5/api_key`): created through the API (persisted, the secret
//! shown once and stored hashed) or read from the bootstrap file at start (in memory only,
//! not changeable through the API).

use super::password::Cost;
use super::store::KeyRecord;
use super::{
    ApiKeyUpdate, ApiKeyView, Auth, AuthError, NewApiKey, Principal, PrincipalKind, password, read,
    rfc3339, unix_now, valid_name,
};

impl Auth {
    pub fn api_keys(&self) -> Vec<ApiKeyView> {
        let now = unix_now();
        read(&self.keys)
            .values()
            .map(|k| key_view(k, now))
            .collect()
    }

    pub fn api_key(&self, name: &str) -> Option<ApiKeyView> {
        read(&self.keys).get(name).map(|k| key_view(k, unix_now()))
    }

    /// Creates a key; returns it and its secret (the only time the secret is seen).
    /// Blocking.
    pub fn create_api_key(&self, new: NewApiKey) -> Result<(ApiKeyView, String), AuthError> {
        let mut problems = Vec::new();
        if let Err(m) = valid_name("name", &new.name) {
            problems.push(m);
        }
        if new.desc.chars().count() > 256 {
            problems.push("desc: at most 256 characters".into());
        }
        let expired_at = match parse_expiry(new.expired_at.as_deref()) {
            Ok(Some(t)) if t <= unix_now() => {
                problems.push("expired_at: is in the past".into());
                None
            }
            Ok(t) => t,
            Err(AuthError::Invalid(p)) => {
                problems.extend(p);
                None
            }
            Err(e) => return Err(e),
        };
        if !problems.is_empty() {
            return Err(AuthError::Invalid(problems));
        }
        let api_key = password::random_key_id()?;
        let secret = password::random_token()?;
        let secret_hash = password::hash(&secret, Cost::RandomSecret)?;
        let view = self.mutate_keys(|keys| {
            if keys.contains_key(&new.name) {
                return Err(AuthError::KeyExists(new.name.clone()));
            }
            let record = KeyRecord {
                name: new.name.clone(),
                api_key,
                secret_hash,
                role: new.role,
                desc: new.desc,
                enable: new.enable,
                expired_at,
                created_at: unix_now(),
                bootstrap: false,
            };
            let view = key_view(&record, unix_now());
            keys.insert(new.name, record);
            Ok(view)
        })?;
        Ok((view, secret))
    }

    /// Enables/disables a key, changes its expiry, description or role. Blocking.
    pub fn update_api_key(&self, name: &str, up: ApiKeyUpdate) -> Result<ApiKeyView, AuthError> {
        if up.desc.as_ref().is_some_and(|d| d.chars().count() > 256) {
            return Err(AuthError::Invalid(vec![
                "desc: at most 256 characters".into(),
            ]));
        }
        let expired_at = match &up.expired_at {
            Some(s) => Some(parse_expiry(Some(s))?),
            None => None,
        };
        self.mutate_keys(|keys| {
            let k = keys
                .get_mut(name)
                .ok_or_else(|| AuthError::KeyNotFound(name.into()))?;
            if k.bootstrap {
                return Err(AuthError::Conflict(format!(
                    "API key {name:?} comes from the bootstrap file; change it there"
                )));
            }
            if let Some(e) = up.enable {
                k.enable = e;
            }
            if let Some(t) = expired_at {
                k.expired_at = t;
            }
            if let Some(d) = up.desc {
                k.desc = d;
            }
            if let Some(r) = up.role {
                k.role = r;
            }
            Ok(key_view(k, unix_now()))
        })
    }

    /// Blocking.
    pub fn delete_api_key(&self, name: &str) -> Result<(), AuthError> {
        self.mutate_keys(|keys| {
            let k = keys
                .get(name)
                .ok_or_else(|| AuthError::KeyNotFound(name.into()))?;
            if k.bootstrap {
                return Err(AuthError::Conflict(format!(
                    "API key {name:?} comes from the bootstrap file; remove it there"
                )));
            }
            keys.remove(name);
            Ok(())
        })
    }

    /// Checks `api_key:secret`: the key exists, the secret matches, it is enabled and not
    /// expired. Blocking (one cheap hash).
    pub fn check_api_key(&self, api_key: &str, secret: &str) -> Result<Principal, AuthError> {
        let key = read(&self.keys)
            .values()
            .find(|k| k.api_key == api_key)
            .cloned();
        let Some(key) = key else {
            return Err(AuthError::BadCredentials);
        };
        if !password::verify(secret, &key.secret_hash) {
            return Err(AuthError::BadCredentials);
        }
        // Only a caller that knows the secret learns why the key is refused.
        if !key.enable {
            return Err(AuthError::Refused(format!(
                "API key {:?} is disabled",
                key.name
            )));
        }
        if key.expired_at.is_some_and(|t| t <= unix_now()) {
            return Err(AuthError::Refused(format!(
                "API key {:?} has expired",
                key.name
            )));
        }
        Ok(Principal {
            name: key.name,
            role: key.role,
            kind: PrincipalKind::ApiKey,
        })
    }
}

/// `infinity` (or absent) is `None`; otherwise RFC 3339.
fn parse_expiry(s: Option<&str>) -> Result<Option<i64>, AuthError> {
    match s {
        None | Some("infinity") => Ok(None),
        Some(s) => chrono::DateTime::parse_from_rfc3339(s)
            .map(|d| Some(d.timestamp()))
            .map_err(|e| {
                AuthError::Invalid(vec![format!(
                    "expired_at: {s:?} is neither RFC 3339 (2030-01-31T12:00:00Z) nor \"infinity\": {e}"
                )])
            }),
    }
}

fn key_view(k: &KeyRecord, now: i64) -> ApiKeyView {
    ApiKeyView {
        name: k.name.clone(),
        api_key: k.api_key.clone(),
        expired_at: k.expired_at.map_or_else(|| "infinity".into(), rfc3339),
        created_at: rfc3339(k.created_at),
        desc: k.desc.clone(),
        enable: k.enable,
        expired: k.expired_at.is_some_and(|t| t <= now),
        role: k.role,
        source: if k.bootstrap { "bootstrap_file" } else { "api" }.into(),
    }
}
