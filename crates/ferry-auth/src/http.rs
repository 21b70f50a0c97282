//! The HTTP authentication service: one POST per CONNECT with JSON `{clientid, username,
//! password, peerhost}`; the answer `{"result": "allow" | "deny" | "ignore",
//! "is_superuser": bool, "acl": [...]}` (a non-2xx status or a body that is not such JSON is
//! "unavailable"). A minimal HTTP/1.1 client (plain `http://`, `Connection: close`) over a
//! tokio socket, bounded by the configured timeout and a 64 KiB answer.

use std::time::Duration;

use ferry_broker::ClientInfo;
use ferry_broker::acl::AclRule;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const MAX_ANSWER: usize = 64 * 1024;

/// A parsed `http://` URL.
#[derive(Debug, Clone)]
pub struct HttpService {
    authority: String,
    path: String,
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
    pub fn new(url: &str, timeout: Duration) -> Result<HttpService, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("{url:?}: only http:// URLs are supported"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(format!("{url:?}: expected http://HOST:PORT/PATH"));
        }
        let authority = if authority.contains(':') && !authority.ends_with(']') {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        Ok(HttpService {
            authority,
            path: path.to_owned(),
            timeout,
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
        match tokio::time::timeout(self.timeout, self.post(&body)).await {
            Err(_) => HttpOutcome::Unavailable(format!("no answer within {:?}", self.timeout)),
            Ok(Err(e)) => HttpOutcome::Unavailable(e),
            Ok(Ok((status, answer))) => interpret(status, &answer),
        }
    }

    async fn post(&self, body: &str) -> Result<(u16, Vec<u8>), String> {
        let mut s = tokio::net::TcpStream::connect(&self.authority)
            .await
            .map_err(|e| format!("connect {}: {e}", self.authority))?;
        let req = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.path,
            self.authority,
            body.len()
        );
        s.write_all(req.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut buf = Vec::with_capacity(1024);
        loop {
            let n = (&mut s)
                .take((MAX_ANSWER + 1 - buf.len()) as u64)
                .read_buf(&mut buf)
                .await
                .map_err(|e| e.to_string())?;
            if n == 0 {
                break;
            }
            if buf.len() > MAX_ANSWER {
                return Err("answer larger than 64 KiB".into());
            }
        }
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut headers);
        let head = match resp.parse(&buf) {
            Ok(httparse::Status::Complete(n)) => n,
            _ => return Err("malformed HTTP answer".into()),
        };
        let status = resp.code.unwrap_or(0);
        let chunked = resp.headers.iter().any(|h| {
            h.name.eq_ignore_ascii_case("transfer-encoding")
                && String::from_utf8_lossy(h.value)
                    .to_ascii_lowercase()
                    .contains("chunked")
        });
        let body = &buf[head..];
        let body = if chunked {
            dechunk(body)?
        } else {
            body.to_vec()
        };
        Ok((status, body))
    }
}

fn dechunk(mut b: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = b
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("bad chunked body")?;
        let size_text = String::from_utf8_lossy(&b[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| "bad chunk size".to_string())?;
        b = &b[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(b.get(..size).ok_or("truncated chunk")?);
        b = b.get(size + 2..).ok_or("truncated chunk")?;
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
        assert_eq!(
            dechunk(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").unwrap(),
            b"abcde"
        );
        assert!(HttpService::new("https://x/", Duration::from_secs(1)).is_err());
        assert_eq!(
            HttpService::new("http://h/a", Duration::from_secs(1))
                .unwrap()
                .authority,
            "h:80"
        );
    }
}
