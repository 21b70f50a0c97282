//! Authentication that talks to services, and its reload, as MQTT clients see them: an
//! HTTP authentication service over https (allow, deny, a certificate from a CA Ferry does
//! not trust: unavailable, counted) answering real CONNECTs; and the real binary reloading
//! `[authentication]` on SIGHUP (a JWT method with keys from a JWKS URL added, a broken
//! config refused with its key logged, anonymous access back), new CONNECTs getting the new
//! answer while an established connection stays.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use ferry_auth::testing::{Handler, Request, TestServer, hs256, pki};
use ferry_broker::metrics::BrokerMetric;
use ferry_mqtt::{Packet, QoS, Version};
use ferry_testkit::{RawClient, connect_packet, wait_until};

type TestResult = anyhow::Result<()>;

/// The CONNACK code for a CONNECT with these credentials (3.x: return code; 5: reason).
async fn connack(addr: SocketAddr, v: Version, user: Option<&str>, pw: Option<&str>) -> u8 {
    let mut c = RawClient::open(addr, v).await.unwrap();
    let mut p = connect_packet(v, "c", true);
    p.username = user.map(str::to_owned);
    p.password = pw.map(|s| Bytes::copy_from_slice(s.as_bytes()));
    c.handshake(p).await.unwrap().code
}

const LISTENER: &str = "[listeners.tcp.default]\nbind = \"127.0.0.1:0\"\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_auth_service_answers_connects_and_an_untrusted_certificate_is_unavailable()
-> TestResult {
    let dir = tempfile::tempdir()?;
    let (ca, cert, key) = pki("Test CA");
    let (other, _, _) = pki("Other CA");
    std::fs::write(dir.path().join("ca.pem"), &ca)?;
    std::fs::write(dir.path().join("other.pem"), &other)?;
    let handler: Handler = Arc::new(|r: &Request| {
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
        let result = match body["username"].as_str() {
            Some("good") if body["password"] == "pw" => "allow",
            Some("bad") => "deny",
            _ => "ignore",
        };
        (200, serde_json::json!({ "result": result }).to_string())
    });
    let svc = TestServer::start(Some((cert.as_bytes(), key.as_bytes())), handler).await?;
    let config = |ca_file: &str| {
        format!(
            "{LISTENER}[authentication]\n[[authentication.methods]]\nmechanism = \"http\"\n\
             url = \"https://localhost:{}/auth\"\ncacertfile = {:?}\ntimeout = \"3s\"\n",
            svc.addr.port(),
            dir.path().join(ca_file)
        )
    };
    let (g, addr) = common::gateway(&config("ca.pem"), "127.0.0.1:9092").await;
    for (v, not_auth) in [(Version::V311, 5), (Version::V5, 0x87)] {
        assert_eq!(connack(addr, v, Some("good"), Some("pw")).await, 0);
        assert_eq!(connack(addr, v, Some("bad"), Some("pw")).await, not_auth);
        assert_eq!(connack(addr, v, None, None).await, 0, "anonymous");
    }
    assert_eq!(
        g.broker.metrics().get(BrokerMetric::AuthnHttpUnavailable),
        0
    );
    g.stop().await;

    // The service's certificate is not from the configured CA: the method cannot answer
    // (logged with the TLS reason, counted) and the client is refused as no method decided.
    let (g, addr) = common::gateway(&config("other.pem"), "127.0.0.1:9092").await;
    let answered = svc.requests();
    for (v, not_auth) in [(Version::V311, 5), (Version::V5, 0x87)] {
        assert_eq!(connack(addr, v, Some("good"), Some("pw")).await, not_auth);
    }
    assert_eq!(
        g.broker.metrics().get(BrokerMetric::AuthnHttpUnavailable),
        2
    );
    assert_eq!(svc.requests(), answered);
    g.stop().await;
    Ok(())
}

fn hup(child: &std::process::Child) -> TestResult {
    let st = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()?;
    anyhow::ensure!(st.success(), "kill -HUP failed");
    Ok(())
}

/// Polls until a CONNECT with these credentials gets `code`.
async fn until_connack(addr: SocketAddr, user: Option<&str>, pw: Option<&str>, code: u8) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let got = connack(addr, Version::V5, user, pw).await;
        if got == code {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "CONNACK still {got:#04x}, expected {code:#04x}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn write_config(path: &Path, data: &Path, authentication: &str) -> TestResult {
    std::fs::write(
        path,
        format!(
            "[node]\ndata_dir = {data:?}\npersistence = false\n[api]\nenable = false\n\
             {LISTENER}{authentication}"
        ),
    )?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_authentication_for_new_connects_and_keeps_connected_clients() -> TestResult
{
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    // A JWKS endpoint with one HMAC ("oct") key.
    let secret = b"reloaded-secret";
    let jwks = serde_json::json!({"keys": [{"kty": "oct", "kid": "k1", "k": URL_SAFE_NO_PAD.encode(secret)}]});
    let handler: Handler = Arc::new(move |_: &Request| (200, jwks.to_string()));
    let svc = TestServer::start(None, handler).await?;
    let now = ferry_broker::hook::now_ms() / 1000;
    let token = hs256(secret, &serde_json::json!({"exp": now + 600}));

    let cfg = d.join("ferry.toml");
    write_config(
        &cfg,
        &d.join("data"),
        "[authentication]\nallow_anonymous = true\n",
    )?;
    let log = d.join("stderr.log");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferry"));
    cmd.arg("serve").arg("--config").arg(&cfg);
    cmd.stderr(Stdio::from(std::fs::File::create(&log)?));
    let (child, addr, _) = common::serve_command(cmd, false);
    let child = common::Killed(child);

    // A client connected before the reload (anonymous, accepted).
    let (mut before, _) = RawClient::connect(addr, Version::V5, "before", true).await?;
    assert_eq!(connack(addr, Version::V5, Some("u"), Some(&token)).await, 0);

    // No anonymous access any more; a JWT method whose keys come from the JWKS URL.
    write_config(
        &cfg,
        &d.join("data"),
        &format!(
            "[authentication]\nallow_anonymous = false\n[[authentication.methods]]\n\
             mechanism = \"jwt\"\nuse_jwks = true\nendpoint = \"http://{}/jwks\"\n",
            svc.addr
        ),
    )?;
    hup(&child.0)?;
    until_connack(addr, None, None, 0x87).await;
    assert!(svc.requests() >= 1, "the JWKS was fetched at the reload");
    assert_eq!(connack(addr, Version::V5, Some("u"), Some(&token)).await, 0);
    assert_eq!(
        connack(
            addr,
            Version::V5,
            Some("u"),
            Some(&hs256(b"guess", &serde_json::json!({})))
        )
        .await,
        0x87
    );

    // A config whose chain cannot be built: the chain in force stays, the key is logged.
    write_config(
        &cfg,
        &d.join("data"),
        "[authentication]\nallow_anonymous = true\n[[authentication.methods]]\n\
         mechanism = \"jwt\"\npublic_key = \"/nonexistent/key.pem\"\n",
    )?;
    hup(&child.0)?;
    wait_until(
        "the refused reload is logged",
        Duration::from_secs(15),
        || {
            std::fs::read_to_string(&log).is_ok_and(|l| {
                l.contains("config not reloaded")
                    && l.contains("authentication.methods[0].public_key: /nonexistent/key.pem")
            })
        },
    )
    .await;
    assert_eq!(connack(addr, Version::V5, None, None).await, 0x87);
    assert_eq!(connack(addr, Version::V5, Some("u"), Some(&token)).await, 0);

    // Anonymous access back.
    write_config(
        &cfg,
        &d.join("data"),
        "[authentication]\nallow_anonymous = true\n",
    )?;
    hup(&child.0)?;
    until_connack(addr, None, None, 0).await;

    // The client connected before every reload is still served.
    before
        .publish("t", b"still here", QoS::AtLeastOnce, false, 1)
        .await?;
    match before.recv().await? {
        // 0x10: accepted, no subscriber.
        Packet::PubAck(a) => assert_eq!(a.code, 0x10, "{a:?}"),
        other => anyhow::bail!("expected PUBACK, got {other:?}"),
    }
    let log_text = std::fs::read_to_string(&log)?;
    assert!(
        log_text.contains("SIGHUP: [authentication] reloaded"),
        "{log_text}"
    );
    child.kill()?;
    Ok(())
}
