//! The methods that ask a service, against real local servers: the HTTP authentication
//! service over https (allow, deny, SNI from the URL, a certificate from the wrong CA,
//! verify_none, a missing CA file), and JWT keys from a JWKS URL (fetched at start, a key
//! rotation picked up early for an unknown kid and rate-limited, refreshed periodically, the
//! last good set kept when the endpoint fails, the refresh stopped with the chain).
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ferry_auth::testing::{Handler, Request, TestServer, pki};
use ferry_auth::{AuthenticationConfig, Chain};
use ferry_broker::metrics::BrokerMetric;
use ferry_broker::{Authenticator, AuthnDecision, ClientInfo, Registry};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn client(user: &str) -> ClientInfo {
    ClientInfo {
        username: Some(Arc::from(user)),
        ..ClientInfo::internal("c1")
    }
}

/// The chain of a config (after `validate`, as Ferry does); errors joined with "; ".
async fn build(toml_text: &str, registry: &Arc<Registry>) -> Result<Chain, String> {
    let cfg: AuthenticationConfig = toml::from_str(toml_text).unwrap();
    let problems = ferry_auth::config::validate(&cfg);
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    Chain::build(&cfg, Path::new("/nonexistent"), registry.clone(), None)
        .await
        .map(|(c, _)| c)
        .map_err(|p| p.join("; "))
}

async fn decide(chain: &Chain, user: &str, pw: &str) -> AuthnDecision {
    chain
        .authenticate(&client(user), Some(pw.as_bytes()))
        .await
        .decision
}

fn http_method(url: &str, extra: &str) -> String {
    format!("[[methods]]\nmechanism = \"http\"\nurl = \"{url}\"\ntimeout = \"3s\"\n{extra}")
}

fn allow() -> AuthnDecision {
    AuthnDecision::Allow {
        is_superuser: false,
        rules: vec![],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_service_allows_denies_and_a_wrong_ca_is_unavailable() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (ca, cert, key) = pki("Test CA");
    let (other_ca, _, _) = pki("Other CA");
    let (ca_file, other_file) = (dir.path().join("ca.pem"), dir.path().join("other.pem"));
    std::fs::write(&ca_file, &ca)?;
    std::fs::write(&other_file, &other_ca)?;
    let handler: Handler = Arc::new(|r: &Request| {
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
        let result = match body["username"].as_str() {
            Some("good") if body["password"] == "pw" && r.path == "/auth" => "allow",
            Some("bad") => "deny",
            _ => "ignore",
        };
        (200, serde_json::json!({ "result": result }).to_string())
    });
    let svc = TestServer::start(Some((cert.as_bytes(), key.as_bytes())), handler).await?;
    let registry = Registry::new();
    let url = format!("https://localhost:{}/auth", svc.addr.port());

    let trusted = build(
        &http_method(&url, &format!("cacertfile = {ca_file:?}\n")),
        &registry,
    )
    .await?;
    assert_eq!(decide(&trusted, "good", "pw").await, allow());
    assert_eq!(
        decide(&trusted, "bad", "pw").await,
        AuthnDecision::Deny(ferry_mqtt::reason::NOT_AUTHORIZED)
    );
    assert_eq!(decide(&trusted, "who", "pw").await, AuthnDecision::Ignore);
    assert_eq!(
        svc.last_sni().as_deref(),
        Some("localhost"),
        "SNI from the URL"
    );
    // By IP address: the certificate names 127.0.0.1 too.
    let by_ip = format!("https://127.0.0.1:{}/auth", svc.addr.port());
    let chain = build(
        &http_method(&by_ip, &format!("cacertfile = {ca_file:?}\n")),
        &registry,
    )
    .await?;
    assert_eq!(decide(&chain, "good", "pw").await, allow());
    let answered = svc.requests();
    assert_eq!(answered, 4);

    // A certificate from a CA we do not trust: the service counts as unavailable (ignore).
    let wrong = build(
        &http_method(&url, &format!("cacertfile = {other_file:?}\n")),
        &registry,
    )
    .await?;
    let unavailable = registry.broker().get(BrokerMetric::AuthnHttpUnavailable);
    assert_eq!(decide(&wrong, "good", "pw").await, AuthnDecision::Ignore);
    assert_eq!(
        registry.broker().get(BrokerMetric::AuthnHttpUnavailable),
        unavailable + 1
    );
    assert_eq!(svc.requests(), answered, "no request over an untrusted TLS");
    // The reason as logged.
    let service = ferry_auth::http::HttpService::new(
        &toml::from_str(&format!("url = \"{url}\"\ncacertfile = {other_file:?}\n"))?,
        "m",
    )?;
    match service.ask(&client("good"), Some(b"pw")).await {
        ferry_auth::http::HttpOutcome::Unavailable(why) => assert!(
            why.contains("TLS handshake with localhost") && why.contains("UnknownIssuer"),
            "{why}"
        ),
        other => panic!("expected unavailable, got {other:?}"),
    }

    // verify_none: any certificate.
    let blind = build(&http_method(&url, "verify = \"verify_none\"\n"), &registry).await?;
    assert_eq!(decide(&blind, "good", "pw").await, allow());

    // Config errors name the key.
    let missing = build(
        &http_method(&url, "cacertfile = \"/nonexistent/ca.pem\"\n"),
        &registry,
    )
    .await
    .unwrap_err();
    assert!(
        missing
            .starts_with("authentication.methods[0].cacertfile: cannot read /nonexistent/ca.pem"),
        "{missing}"
    );
    Ok(())
}

/// An EC P-256 key: its JWK (with `kid`) and a signer of ES256 tokens.
struct EcKey {
    kid: String,
    pair: EcdsaKeyPair,
}

impl EcKey {
    fn new(kid: &str) -> EcKey {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        EcKey {
            kid: kid.into(),
            pair,
        }
    }

    fn jwk(&self) -> serde_json::Value {
        let point = self.pair.public_key().as_ref();
        serde_json::json!({
            "kty": "EC", "crv": "P-256", "kid": self.kid, "use": "sig",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        })
    }

    /// A token for username "alice" valid for 10 minutes, naming `kid`.
    fn token_as(&self, kid: &str) -> String {
        let now = ferry_broker::hook::now_ms() / 1000;
        let header = serde_json::json!({"alg": "ES256", "typ": "JWT", "kid": kid});
        let claims = serde_json::json!({"exp": now + 600, "username": "alice"});
        let signed = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = self
            .pair
            .sign(&SystemRandom::new(), signed.as_bytes())
            .unwrap();
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }

    fn token(&self) -> String {
        self.token_as(&self.kid)
    }
}

/// A JWKS endpoint whose answer the test changes: Ok(keys) or Err(status).
type Served = Arc<Mutex<Result<Vec<serde_json::Value>, u16>>>;

fn jwks_handler(served: &Served) -> Handler {
    let served = served.clone();
    Arc::new(move |r: &Request| {
        assert_eq!((r.method.as_str(), r.path.as_str()), ("GET", "/jwks"));
        match &*served.lock().unwrap() {
            Ok(keys) => (200, serde_json::json!({ "keys": keys }).to_string()),
            Err(status) => (*status, "{}".into()),
        }
    })
}

fn jwt_method(url: &str, extra: &str) -> String {
    format!("[[methods]]\nmechanism = \"jwt\"\nuse_jwks = true\nendpoint = \"{url}\"\n{extra}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_url_over_https_picks_up_a_rotated_key_early_and_rate_limits() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (ca, cert, key) = pki("Test CA");
    std::fs::write(dir.path().join("ca.pem"), &ca)?;
    let (k1, k2) = (EcKey::new("k1"), EcKey::new("k2"));
    let served: Served = Arc::new(Mutex::new(Ok(vec![k1.jwk()])));
    let svc = TestServer::start(
        Some((cert.as_bytes(), key.as_bytes())),
        jwks_handler(&served),
    )
    .await?;
    let registry = Registry::new();
    let url = format!("https://localhost:{}/jwks", svc.addr.port());
    let chain = build(
        &jwt_method(
            &url,
            &format!(
                "refresh_interval = \"5m\"\ncacertfile = {:?}\n",
                dir.path().join("ca.pem")
            ),
        ),
        &registry,
    )
    .await?;
    // Fetched at start.
    assert_eq!(svc.requests(), 1);
    assert_eq!(registry.broker().get(BrokerMetric::AuthnJwksRefreshed), 1);
    assert_eq!(decide(&chain, "alice", &k1.token()).await, allow());
    assert_eq!(svc.requests(), 1, "a known kid fetches nothing");

    // The issuer rotates to k2: the first token naming k2 fetches the set early.
    *served.lock().unwrap() = Ok(vec![k2.jwk()]);
    assert_eq!(decide(&chain, "alice", &k2.token()).await, allow());
    assert_eq!(svc.requests(), 2);
    // k1 is gone; another unknown kid within the gap fetches nothing more.
    assert_eq!(
        decide(&chain, "alice", &k1.token()).await,
        AuthnDecision::Ignore
    );
    assert_eq!(
        decide(&chain, "alice", &k2.token_as("k3")).await,
        AuthnDecision::Ignore
    );
    assert_eq!(svc.requests(), 2, "early refreshes are rate-limited");
    assert_eq!(registry.broker().get(BrokerMetric::AuthnJwksRefreshed), 2);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_url_refreshes_periodically_keeps_the_last_good_set_and_stops_with_the_chain()
-> TestResult {
    let (k1, k2) = (EcKey::new("k1"), EcKey::new("k2"));
    let served: Served = Arc::new(Mutex::new(Ok(vec![k1.jwk()])));
    let svc = TestServer::start(None, jwks_handler(&served)).await?;
    let registry = Registry::new();
    let url = format!("http://127.0.0.1:{}/jwks", svc.addr.port());
    let chain = build(&jwt_method(&url, "refresh_interval = \"1s\"\n"), &registry).await?;
    assert_eq!(decide(&chain, "alice", &k1.token()).await, allow());

    // The endpoint fails: counted, and k1 still verifies.
    *served.lock().unwrap() = Err(500);
    let m = registry.broker();
    ferry_testkit::wait_until("a failed refresh", Duration::from_secs(10), || {
        m.get(BrokerMetric::AuthnJwksRefreshFailed) >= 1
    })
    .await;
    assert_eq!(decide(&chain, "alice", &k1.token()).await, allow());

    // Back with both keys: the next periodic refresh picks k2 up.
    *served.lock().unwrap() = Ok(vec![k1.jwk(), k2.jwk()]);
    let ok = m.get(BrokerMetric::AuthnJwksRefreshed);
    ferry_testkit::wait_until("a periodic refresh", Duration::from_secs(10), || {
        m.get(BrokerMetric::AuthnJwksRefreshed) > ok
    })
    .await;
    let fetched = svc.requests();
    assert_eq!(decide(&chain, "alice", &k2.token()).await, allow());
    assert_eq!(decide(&chain, "alice", &k1.token()).await, allow());

    // Dropped chain: its refresh task stops (no fetch over three intervals).
    drop(chain);
    let after_drop = svc.requests();
    assert!(after_drop <= fetched + 1);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(svc.requests(), after_drop, "the refresh outlived its chain");

    // An endpoint down at start: the chain starts with no keys (logged, counted) and the
    // first token fetches the set again.
    *served.lock().unwrap() = Err(503);
    let failed = m.get(BrokerMetric::AuthnJwksRefreshFailed);
    let chain = build(&jwt_method(&url, "refresh_interval = \"5m\"\n"), &registry).await?;
    assert_eq!(m.get(BrokerMetric::AuthnJwksRefreshFailed), failed + 1);
    *served.lock().unwrap() = Ok(vec![k1.jwk()]);
    assert_eq!(decide(&chain, "alice", &k1.token()).await, allow());

    // Config errors name the key.
    for (text, want) in [
        (
            "[[methods]]\nmechanism = \"jwt\"\nuse_jwks = true\n",
            "methods[0].endpoint: needed",
        ),
        (
            &jwt_method("ftp://x/", ""),
            "methods[0].endpoint: \"ftp://x/\": expected",
        ),
        (
            &jwt_method(&url, "secret = \"s\"\n"),
            "give only one of secret, public_key, jwks_file and use_jwks",
        ),
    ] {
        let e = build(text, &registry).await.unwrap_err();
        assert!(e.contains(want), "{e} does not say {want:?}");
    }
    Ok(())
}
