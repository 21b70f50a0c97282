//! Authentication and authorization as clients see them: the CONNACK codes of the built-in
//! user database (users added with `ferry users`, a Mosquitto password file imported), JWT
//! and an HTTP service (up, answering, down); ACL allow/deny for publish and subscribe with
//! `%u`/`%c` for MQTT 3.1.1 and 5.0; the rules changing under a connected client; real
//! mosquitto_pub/mosquitto_sub with -u/-P.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use ferry::{Config, Gateway};
use ferry_auth::testing::hs256;
use ferry_broker::metrics::BrokerMetric;
use ferry_mqtt::{Packet, QoS, Version};
use ferry_testkit::{RawClient, connect_packet, wait_until};

type TestResult = anyhow::Result<()>;

const V3: Version = Version::V311;
const V5: Version = Version::V5;

async fn start(text: &str, data: &Path) -> (Gateway, SocketAddr) {
    let mut cfg = Config::parse(text, "test").unwrap();
    cfg.api.enable = false;
    cfg.node.persistence = false;
    cfg.node.data_dir = data.to_path_buf();
    for l in cfg.listeners.tcp.values_mut() {
        l.bind = "127.0.0.1:0".parse().unwrap();
    }
    // Only the TCP listener (the default ws one would take port 8083 in every test).
    cfg.listeners.ws.clear();
    cfg.listeners.ssl.clear();
    cfg.listeners.wss.clear();
    let g = Gateway::start(&cfg).await.unwrap();
    let addr = g.listeners[0].1;
    (g, addr)
}

const T: [&str; 4] = ["-t", "t", "-m", "x"];

/// The CONNACK code for a CONNECT with these credentials (3.x: return code; 5: reason).
async fn connack(
    addr: SocketAddr,
    v: Version,
    id: &str,
    user: Option<&str>,
    pw: Option<&str>,
) -> u8 {
    let mut c = RawClient::open(addr, v).await.unwrap();
    let mut p = connect_packet(v, id, true);
    p.username = user.map(str::to_owned);
    p.password = pw.map(|s| Bytes::copy_from_slice(s.as_bytes()));
    c.handshake(p).await.unwrap().code
}

async fn client(addr: SocketAddr, v: Version, id: &str, user: &str, pw: &str) -> RawClient {
    let mut c = RawClient::open(addr, v).await.unwrap();
    let mut p = connect_packet(v, id, true);
    p.username = Some(user.into());
    p.password = Some(Bytes::copy_from_slice(pw.as_bytes()));
    assert_eq!(c.handshake(p).await.unwrap().code, 0, "{id} connects");
    c
}

/// Runs `ferry users` (async, like [`mosquitto_pub`]).
async fn ferry_users(data: &Path, args: &[&str]) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .arg("users")
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "ferry users {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs mosquitto_pub (async: a blocked runtime worker could stall the broker under test).
async fn mosquitto_pub(addr: SocketAddr, args: &[&str]) -> std::process::Output {
    tokio::process::Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &addr.port().to_string()])
        .args(args)
        .output()
        .await
        .expect("mosquitto_pub (Debian package mosquitto-clients)")
}

const BUILT_IN: &str = r#"
[authentication]
allow_anonymous = false
[[authentication.methods]]
mechanism = "built_in_database"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn built_in_users_from_the_cli_and_a_mosquitto_file_get_the_documented_connacks() -> TestResult
{
    let dir = tempfile::tempdir()?;
    let data = dir.path();
    ferry_users(data, &["add", "alice", "--password", "alice-pw"]).await;
    // A real Mosquitto password file: $7$ (default) and $6$ (-H sha512) entries.
    let pwfile = data.join("mosquitto.pw");
    let st = Command::new("mosquitto_passwd")
        .args(["-c", "-b"])
        .arg(&pwfile)
        .args(["mq7", "seven"])
        .status()?;
    assert!(st.success());
    let st = Command::new("mosquitto_passwd")
        .args(["-H", "sha512", "-b"])
        .arg(&pwfile)
        .args(["mq6", "six"])
        .status()?;
    assert!(st.success());
    ferry_users(data, &["import", pwfile.to_str().unwrap()]).await;
    let (g, addr) = start(BUILT_IN, data).await;
    for (v, bad_pw, not_auth) in [(V3, 4, 5), (V5, 0x86, 0x87)] {
        assert_eq!(
            connack(addr, v, "a", Some("alice"), Some("alice-pw")).await,
            0
        );
        assert_eq!(connack(addr, v, "a", Some("mq7"), Some("seven")).await, 0);
        assert_eq!(connack(addr, v, "a", Some("mq6"), Some("six")).await, 0);
        assert_eq!(
            connack(addr, v, "a", Some("alice"), Some("wrong")).await,
            bad_pw,
            "{v:?} wrong password"
        );
        assert_eq!(
            connack(addr, v, "a", Some("nobody"), Some("x")).await,
            not_auth,
            "{v:?} unknown user"
        );
        assert_eq!(
            connack(addr, v, "a", None, None).await,
            not_auth,
            "{v:?} anonymous"
        );
    }
    let m = g.broker.metrics();
    assert_eq!(m.get(BrokerMetric::AuthnSuccess), 6);
    assert_eq!(m.get(BrokerMetric::AuthnBadCredentials), 2);
    assert_eq!(m.get(BrokerMetric::AuthnNotAuthorized), 4);
    // mosquitto_pub with -u/-P; a user added while Ferry runs works at once.
    assert!(
        mosquitto_pub(addr, &[&T[..], &["-u", "mq7", "-P", "seven"]].concat())
            .await
            .status
            .success()
    );
    let out = mosquitto_pub(addr, &[&T[..], &["-u", "mq7", "-P", "eight"]].concat()).await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("bad user name or password"),
        "{out:?}"
    );
    ferry_users(
        data,
        &["add", "late", "--password", "late-pw", "--superuser"],
    )
    .await;
    assert!(
        mosquitto_pub(
            addr,
            &[&T[..], &["-u", "late", "-P", "late-pw", "-V", "mqttv5"]].concat()
        )
        .await
        .status
        .success()
    );
    g.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_tokens_expired_forged_and_valid_with_acl_claims() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cfg = r#"
[authentication]
allow_anonymous = false
[[authentication.methods]]
mechanism = "jwt"
secret = "s3cret"
[authorization]
no_match = "deny"
"#;
    let (g, addr) = start(cfg, dir.path()).await;
    let now = ferry_broker::hook::now_ms() / 1000;
    let expired = hs256(b"s3cret", &serde_json::json!({"exp": now - 10}));
    let forged = hs256(b"guess", &serde_json::json!({"exp": now + 600}));
    let other_client = hs256(
        b"s3cret",
        &serde_json::json!({"exp": now + 600, "clientid": "someone-else"}),
    );
    let valid = hs256(
        b"s3cret",
        &serde_json::json!({
            "exp": now + 600, "clientid": "car1",
            "acl": [{"permission": "allow", "action": "all", "topic": "cars/%c/#"}]
        }),
    );
    for (v, bad_pw, not_auth) in [(V3, 4, 5), (V5, 0x86, 0x87)] {
        assert_eq!(
            connack(addr, v, "car1", Some("u"), Some(&expired)).await,
            bad_pw,
            "{v:?} expired"
        );
        assert_eq!(
            connack(addr, v, "car1", Some("u"), Some(&other_client)).await,
            bad_pw
        );
        // Not signed by our key: no method decides.
        assert_eq!(
            connack(addr, v, "car1", Some("u"), Some(&forged)).await,
            not_auth
        );
        // The token's acl claim is the only grant (no_match = "deny").
        let mut c = client(addr, v, "car1", "u", &valid).await;
        assert_eq!(c.subscribe("cars/car1/#", QoS::AtLeastOnce).await?, vec![1]);
        let denied = if v == V5 { 0x87 } else { 0x80 };
        assert_eq!(
            c.subscribe("cars/car2/#", QoS::AtLeastOnce).await?,
            vec![denied]
        );
        c.disconnect().await?;
    }
    g.stop().await;
    Ok(())
}

/// A tiny HTTP authentication service: username "good" is allowed (superuser "root"),
/// "bad" denied, anything else ignored.
async fn auth_service() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    use axum::Json;
    use axum::routing::post;
    let app = axum::Router::new().route(
        "/auth",
        post(|Json(body): Json<serde_json::Value>| async move {
            let result = match body["username"].as_str() {
                Some("good") if body["password"] == "pw" && body["peerhost"] == "127.0.0.1" => {
                    "allow"
                }
                Some("root") => "allow",
                Some("bad") => "deny",
                _ => "ignore",
            };
            Json(serde_json::json!({"result": result, "is_superuser": body["username"] == "root"}))
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    (
        addr,
        tokio::spawn(async move {
            let _ = axum::serve(l, app).await;
        }),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_service_allow_deny_ignore_and_down() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (svc, task) = auth_service().await;
    let cfg = format!(
        "[authentication]\nallow_anonymous = true\n[[authentication.methods]]\nmechanism = \"http\"\nurl = \"http://{svc}/auth\"\ntimeout = \"2s\"\n[authorization]\nno_match = \"deny\"\n"
    );
    let (g, addr) = start(&cfg, dir.path()).await;
    for (v, not_auth) in [(V3, 5), (V5, 0x87)] {
        assert_eq!(connack(addr, v, "c", Some("good"), Some("pw")).await, 0);
        assert_eq!(
            connack(addr, v, "c", Some("bad"), Some("pw")).await,
            not_auth
        );
        assert_eq!(
            connack(addr, v, "c", Some("who"), Some("pw")).await,
            not_auth,
            "ignored by all"
        );
        // Anonymous (no username, no password) and allow_anonymous.
        assert_eq!(connack(addr, v, "c", None, None).await, 0);
    }
    // The superuser skips no_match = "deny".
    let mut root = client(addr, V5, "r", "root", "x").await;
    assert_eq!(
        root.subscribe("anything/#", QoS::AtMostOnce).await?,
        vec![0]
    );
    root.disconnect().await?;
    task.abort();
    let _ = task.await;
    // Down: the method ignores (counted); the client is refused as no method decided.
    wait_until("service gone", Duration::from_secs(10), || {
        std::net::TcpStream::connect(svc).is_err()
    })
    .await;
    let before = g.broker.metrics().get(BrokerMetric::AuthnHttpUnavailable);
    for (v, not_auth) in [(V3, 5), (V5, 0x87)] {
        assert_eq!(
            connack(addr, v, "c", Some("good"), Some("pw")).await,
            not_auth,
            "{v:?} service down"
        );
    }
    assert_eq!(
        g.broker.metrics().get(BrokerMetric::AuthnHttpUnavailable),
        before + 2
    );
    g.stop().await;

    // A service that accepts and never answers: the timeout is the same "ignore".
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let cfg = format!(
        "[authentication]\n[[authentication.methods]]\nmechanism = \"http\"\nurl = \"http://{}/auth\"\ntimeout = \"300ms\"\n",
        silent.local_addr()?
    );
    let (g, addr) = start(&cfg, dir.path()).await;
    assert_eq!(connack(addr, V5, "c", Some("good"), Some("pw")).await, 0x87);
    assert_eq!(
        g.broker.metrics().get(BrokerMetric::AuthnHttpUnavailable),
        1
    );
    g.stop().await;
    Ok(())
}

const ACL: &str = r#"
[authentication]
[[authentication.methods]]
mechanism = "built_in_database"
[authorization]
no_match = "deny"
[[authorization.rules]]
permission = "allow"
topics = ["users/%u/#"]
[[authorization.rules]]
permission = "allow"
action = "subscribe"
topics = ["clients/%c/in", "broadcast/#"]
[[authorization.rules]]
permission = "allow"
action = "publish"
topics = ["clients/+/in"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_allows_and_denies_publish_and_subscribe_with_placeholders() -> TestResult {
    let dir = tempfile::tempdir()?;
    ferry_users(dir.path(), &["add", "alice", "--password", "a"]).await;
    ferry_users(dir.path(), &["add", "bob", "--password", "b"]).await;
    let (g, addr) = start(ACL, dir.path()).await;
    for (v, sub_denied) in [(V3, 0x80u8), (V5, 0x87)] {
        let mut alice = client(addr, v, "alice-1", "alice", "a").await;
        let mut bob = client(addr, v, "bob-1", "bob", "b").await;
        assert_eq!(
            alice.subscribe("users/alice/#", QoS::AtLeastOnce).await?,
            vec![1]
        );
        assert_eq!(
            alice
                .subscribe("clients/alice-1/in", QoS::AtLeastOnce)
                .await?,
            vec![1]
        );
        assert_eq!(
            alice.subscribe("users/bob/#", QoS::AtLeastOnce).await?,
            vec![sub_denied]
        );
        assert_eq!(
            alice
                .subscribe("clients/bob-1/in", QoS::AtLeastOnce)
                .await?,
            vec![sub_denied]
        );
        assert_eq!(
            alice.subscribe("#", QoS::AtLeastOnce).await?,
            vec![sub_denied]
        );
        // Bob may write to alice's inbox, not to her user tree.
        bob.publish("clients/alice-1/in", b"hi", QoS::AtLeastOnce, false, 1)
            .await?;
        match bob.recv().await? {
            Packet::PubAck(a) => assert_eq!(a.code, 0, "{a:?}"),
            other => anyhow::bail!("expected PUBACK, got {other:?}"),
        }
        bob.publish("users/alice/x", b"sneaky", QoS::AtLeastOnce, false, 2)
            .await?;
        match bob.recv().await? {
            // MQTT 5: 0x87; 3.1.1 cannot be told: a plain PUBACK, the message is dropped.
            Packet::PubAck(a) => assert_eq!(a.code, if v == V5 { 0x87 } else { 0 }),
            other => anyhow::bail!("expected PUBACK, got {other:?}"),
        }
        alice
            .publish("users/alice/self", b"mine", QoS::AtLeastOnce, false, 3)
            .await?;
        let mut got = Vec::new();
        while got.len() < 2 {
            match alice.recv().await? {
                Packet::Publish(p) => {
                    alice
                        .send(&Packet::PubAck(ferry_mqtt::Ack::new(p.packet_id, 0)))
                        .await?;
                    got.push((p.topic, p.payload));
                }
                Packet::PubAck(_) => {}
                other => anyhow::bail!("unexpected {other:?}"),
            }
        }
        got.sort();
        assert_eq!(
            got,
            vec![
                ("clients/alice-1/in".to_string(), Bytes::from_static(b"hi")),
                ("users/alice/self".to_string(), Bytes::from_static(b"mine")),
            ]
        );
        alice.expect_silence(Duration::from_millis(200)).await?;
        alice.disconnect().await?;
        bob.disconnect().await?;
    }
    assert!(g.broker.metrics().get(BrokerMetric::AuthzDeny) >= 8);
    g.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rules_reload_applies_to_connected_clients_and_deny_action_disconnects() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (g, addr) = start("", dir.path()).await;
    let (mut c, _) = RawClient::connect(addr, V5, "c5", true).await?;
    c.publish("x/1", b"a", QoS::AtLeastOnce, false, 1).await?;
    assert!(matches!(c.recv().await?, Packet::PubAck(a) if a.code == 0x10));
    c.publish("x/1", b"a", QoS::AtLeastOnce, false, 2).await?;
    assert!(
        matches!(c.recv().await?, Packet::PubAck(a) if a.code == 0x10),
        "cached allow"
    );
    let strict = Config::parse(
        "[authorization]\ndeny_action = \"disconnect\"\n[[authorization.rules]]\npermission = \"deny\"\naction = \"publish\"\ntopics = [\"x/#\"]\n",
        "reload",
    )?;
    ferry::reload_authorization(&g.broker, &strict)?;
    c.publish("x/1", b"a", QoS::AtLeastOnce, false, 3).await?;
    assert_eq!(c.expect_close().await?, Some(0x87));
    g.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paho_interop_config_refuses_test_nosubscribe_with_unspecified() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cfg = "[authorization]\nno_match = \"allow\"\nsubscribe_deny_code = \"unspecified\"\n[[authorization.rules]]\npermission = \"deny\"\naction = \"subscribe\"\ntopics = [\"test/nosubscribe\"]\n";
    let (g, addr) = start(cfg, dir.path()).await;
    for v in [V3, V5] {
        let (mut c, _) = RawClient::connect(addr, v, "paho", true).await?;
        assert_eq!(
            c.subscribe("test/nosubscribe", QoS::ExactlyOnce).await?,
            vec![0x80]
        );
        assert_eq!(c.subscribe("test/other", QoS::ExactlyOnce).await?, vec![2]);
        c.disconnect().await?;
    }
    g.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn built_in_users_are_managed_through_the_http_api() -> TestResult {
    let dir = tempfile::tempdir()?;
    let a = common::api::start(dir.path(), BUILT_IN).await;
    let users = "/api/v5/authentication/password_based:built_in_database/users";
    let r = a
        .post(
            users,
            serde_json::json!({"user_id": "dev1", "password": "pw1"}),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(
        r.body,
        serde_json::json!({"user_id": "dev1", "is_superuser": false})
    );
    let r = a
        .post(
            users,
            serde_json::json!({"user_id": "dev1", "password": "x"}),
        )
        .await;
    assert_eq!(r.status, 409, "{r:?}");
    let r = a
        .post(users, serde_json::json!({"user_id": "", "password": "x"}))
        .await;
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(connack(a.mqtt, V5, "d", Some("dev1"), Some("pw1")).await, 0);
    let r = a
        .put(
            &format!("{users}/dev1"),
            serde_json::json!({"password": "pw2", "is_superuser": true}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["is_superuser"], true);
    assert_eq!(
        connack(a.mqtt, V5, "d", Some("dev1"), Some("pw1")).await,
        0x86
    );
    assert_eq!(connack(a.mqtt, V3, "d", Some("dev1"), Some("pw2")).await, 0);
    let r = a.get(&format!("{users}?like_user_id=dev")).await;
    assert_eq!(r.body["meta"]["count"], 1, "{r:?}");
    assert_eq!(r.body["data"][0]["user_id"], "dev1");
    assert!(
        r.body.to_string().find("argon2").is_none(),
        "no hash is shown: {r:?}"
    );
    assert_eq!(a.get(&format!("{users}/dev1")).await.status, 200);
    assert_eq!(a.delete(&format!("{users}/dev1")).await.status, 204);
    assert_eq!(a.get(&format!("{users}/dev1")).await.status, 404);
    assert_eq!(
        connack(a.mqtt, V5, "d", Some("dev1"), Some("pw2")).await,
        0x87
    );
    a.g.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_clients_with_credentials_see_only_what_the_acl_allows() -> TestResult {
    let dir = tempfile::tempdir()?;
    ferry_users(dir.path(), &["add", "alice", "--password", "a"]).await;
    ferry_users(dir.path(), &["add", "bob", "--password", "b"]).await;
    let (g, addr) = start(ACL, dir.path()).await;
    let port = addr.port().to_string();
    let sub = tokio::process::Command::new("mosquitto_sub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-u",
            "alice",
            "-P",
            "a",
            "-V",
            "mqttv5",
        ])
        .args([
            "-t",
            "users/alice/#",
            "-q",
            "1",
            "-C",
            "1",
            "-W",
            "15",
            "-v",
        ])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let broker = g.broker.clone();
    wait_until("mosquitto_sub subscribed", Duration::from_secs(10), || {
        broker.subscription_count() == 1
    })
    .await;
    // Bob's publish into alice's tree is dropped; alice's own arrives.
    let out = mosquitto_pub(
        addr,
        &[
            "-u",
            "bob",
            "-P",
            "b",
            "-t",
            "users/alice/x",
            "-m",
            "from-bob",
            "-q",
            "1",
        ],
    )
    .await;
    assert!(out.status.success(), "{out:?}");
    let out = mosquitto_pub(
        addr,
        &[
            "-u",
            "alice",
            "-P",
            "a",
            "-t",
            "users/alice/x",
            "-m",
            "from-alice",
            "-q",
            "1",
        ],
    )
    .await;
    assert!(out.status.success(), "{out:?}");
    let out = tokio::time::timeout(Duration::from_secs(20), sub.wait_with_output()).await??;
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "users/alice/x from-alice"
    );
    g.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_may_override_allow_anonymous() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (g, _) = start(
        "[authentication]\nallow_anonymous = false\n\
         [listeners.tcp.closed]\nbind = \"127.0.0.1:0\"\n\
         [listeners.tcp.open]\nbind = \"127.0.0.1:0\"\nallow_anonymous = true\n",
        dir.path(),
    )
    .await;
    let addr = |name: &str| {
        g.listeners
            .iter()
            .find(|(n, _)| n.ends_with(name))
            .map(|(_, a)| *a)
            .unwrap()
    };
    for (v, refused) in [(V3, 5), (V5, 0x87)] {
        assert_eq!(connack(addr("open"), v, "anon", None, None).await, 0);
        assert_eq!(
            connack(addr("closed"), v, "anon", None, None).await,
            refused
        );
    }
    g.stop().await;
    Ok(())
}
