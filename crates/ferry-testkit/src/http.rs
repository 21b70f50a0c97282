//! A small HTTP/1.1 client for API tests: one request per connection, JSON in and out, no
//! HTTP crate, so tests speak to the API as any outside client would.

use std::net::SocketAddr;

use base64::Engine as _;
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// An answer: status, body as JSON (Null if it is not JSON) and as text.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub text: String,
    pub content_type: String,
}

impl Resp {
    /// The error code of a `{code, message}` body.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or_default()
    }

    pub fn message(&self) -> &str {
        self.body["message"].as_str().unwrap_or_default()
    }
}

/// How a request authenticates.
#[derive(Debug, Clone, Copy)]
pub enum Cred<'a> {
    None,
    Bearer(&'a str),
    Basic(&'a str, &'a str),
}

/// Sends one request (`body` as JSON text, as is) and reads the whole answer.
pub async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    cred: Cred<'_>,
    body: Option<&str>,
) -> anyhow::Result<Resp> {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    match cred {
        Cred::None => {}
        Cred::Bearer(t) => req.push_str(&format!("Authorization: Bearer {t}\r\n")),
        Cred::Basic(k, s) => {
            let b = base64::engine::general_purpose::STANDARD.encode(format!("{k}:{s}"));
            req.push_str(&format!("Authorization: Basic {b}\r\n"));
        }
    }
    let body = body.unwrap_or("");
    if !body.is_empty() {
        req.push_str("Content-Type: application/json\r\n");
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream.write_all(req.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let raw = String::from_utf8(raw)?;
    let (head, rest) = raw
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow::anyhow!("no end of headers in {raw:?}"))?;
    let status: u16 = head
        .split(' ')
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("no status in {head:?}"))?
        .parse()?;
    let lower = head.to_ascii_lowercase();
    let content_type = lower
        .lines()
        .find_map(|l| l.strip_prefix("content-type:"))
        .unwrap_or_default()
        .trim()
        .to_owned();
    let text = if lower.contains("transfer-encoding: chunked") {
        dechunk(rest)?
    } else {
        rest.to_owned()
    };
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Ok(Resp {
        status,
        body,
        text,
        content_type,
    })
}

fn dechunk(mut s: &str) -> anyhow::Result<String> {
    let mut out = String::new();
    loop {
        let (size, rest) = s
            .split_once("\r\n")
            .ok_or_else(|| anyhow::anyhow!("bad chunk"))?;
        let n = usize::from_str_radix(size.trim(), 16)?;
        if n == 0 {
            return Ok(out);
        }
        out.push_str(
            rest.get(..n)
                .ok_or_else(|| anyhow::anyhow!("short chunk"))?,
        );
        s = rest
            .get(n + 2..)
            .ok_or_else(|| anyhow::anyhow!("short chunk"))?;
    }
}

/// Logs in with `user`/`old` and, if the server demands it, changes the password to `new`;
/// returns a token that may do everything the user's role allows.
pub async fn login_changed(
    addr: SocketAddr,
    user: &str,
    old: &str,
    new: &str,
) -> anyhow::Result<String> {
    let body = serde_json::json!({"username": user, "password": old}).to_string();
    let r = call(addr, "POST", "/api/v5/login", Cred::None, Some(&body)).await?;
    anyhow::ensure!(r.status == 200, "login: {r:?}");
    let token = r.body["token"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no token in {r:?}"))?
        .to_owned();
    if r.body["password_change_required"] == Value::Bool(true) {
        let body = serde_json::json!({"old_pwd": old, "new_pwd": new}).to_string();
        let path = format!("/api/v5/users/{user}/change_pwd");
        let r = call(addr, "POST", &path, Cred::Bearer(&token), Some(&body)).await?;
        anyhow::ensure!(r.status == 204 || r.status == 200, "change_pwd: {r:?}");
    }
    Ok(token)
}
