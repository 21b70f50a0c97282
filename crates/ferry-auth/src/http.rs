//! The HTTP authentication service: one POST per CONNECT with JSON `{clientid, username,
//! password, peerhost}`; the answer `{"result": "allow" | "deny" | "ignore",
//! "is_superuser": bool, "acl": [...]}` (a non-2xx status or a body that is not such JSON is
//! "unavailable"). Sent with the [`crate::client`] (`http://` or `https://`), bounded by the
//! configured timeout and a 64 KiB answer.

use std::time::Duration;

use ferry_broker::ClientInfo;
use ferry_broker::acl::AclRule;
use serde_json::{Value, json};

use crate::client::Endpoint;
use crate::config::HttpConfig;

/// A configured service: its URL (and TLS client) and timeout.
#[derive(Debug, Clone)]
pub struct HttpService {
    endpoint: Endpoint,
    timeout: Duration,
}

/// What the service said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpOutcome {
    Allow {
        is_superuser: bool,
        rules: Vec<AclRule>,
    },
    Deny,
    Ignore,
    /// Timeout, unreachable, bad status or answer: treated as ignore, counted.
    Unavailable(String),
}

impl HttpService {
    /// Parses the URL and loads the TLS settings; the error names its key under `key`
    /// (`authentication.methods[1].url: …`, `….cacertfile: …`).
    pub fn new(c: &HttpConfig, key: &str) -> Result<HttpService, String> {
        let endpoint = Endpoint::new(&c.url, c.cacertfile.as_deref(), c.verify)
            .map_err(|e| format!("{key}.{}: {e}", e.field()))?;
        Ok(HttpService {
            endpoint,
            timeout: c.timeout.0,
        })
    }

    pub async fn ask(&self, client: &ClientInfo, password: Option<&[u8]>) -> HttpOutcome {
        let body = json!({
            "clientid": &*client.client_id,
            "username": client.username.as_deref(),
            "password": password.map(String::from_utf8_lossy),
            "peerhost": client.peerhost(),
        })
        .to_string();
        let post = self.endpoint.request("POST", Some(&body));
        match tokio::time::timeout(self.timeout, post).await {
            Err(_) => HttpOutcome::Unavailable(format!("no answer within {:?}", self.timeout)),
            Ok(Err(e)) => HttpOutcome::Unavailable(e),
            Ok(Ok((status, answer))) => interpret(status, &answer),
        }
    }
}

fn interpret(status: u16, body: &[u8]) -> HttpOutcome {
    if !(200..300).contains(&status) {
        return HttpOutcome::Unavailable(format!("HTTP status {status}"));
    }
    if status == 204 {
        return HttpOutcome::Ignore;
    }
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return HttpOutcome::Unavailable("answer is not JSON".into());
    };
    match v.get("result").and_then(Value::as_str) {
        Some("allow") => {
            let rules = match v.get("acl") {
                None => Vec::new(),
                Some(acl) => match crate::jwt::acl_rules(acl) {
                    Ok(r) => r,
                    Err(e) => return HttpOutcome::Unavailable(format!("acl: {e}")),
                },
            };
            HttpOutcome::Allow {
                is_superuser: v.get("is_superuser").and_then(Value::as_bool) == Some(true),
                rules,
            }
        }
        Some("deny") => HttpOutcome::Deny,
        Some("ignore") => HttpOutcome::Ignore,
        _ => HttpOutcome::Unavailable("answer has no result allow/deny/ignore".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_interpreted() {
        assert_eq!(
            interpret(200, br#"{"result":"allow","is_superuser":true}"#),
            HttpOutcome::Allow {
                is_superuser: true,
                rules: vec![]
            }
        );
        assert_eq!(interpret(200, br#"{"result":"deny"}"#), HttpOutcome::Deny);
        assert_eq!(
            interpret(200, br#"{"result":"ignore"}"#),
            HttpOutcome::Ignore
        );
        assert!(matches!(interpret(500, b""), HttpOutcome::Unavailable(_)));
        assert!(matches!(
            interpret(200, b"yes"),
            HttpOutcome::Unavailable(_)
        ));
    }
}
