//! The HTTP API tests' gateway: a `Gateway` on loopback port 0 with a temp data dir, its
//! admin logged in (password changed), and small request helpers.

use std::net::SocketAddr;
use std::time::Duration;

use ferry::{Config, Gateway};
use ferry_kafka::testing::{TestKafka, read_records};
use ferry_mqtt::{Packet, QoS, Version};
use ferry_testkit::RawClient;
use ferry_testkit::http::{Cred, Resp, call, login_changed};
use serde_json::Value;

pub(crate) const PWD: &str = "s3cret-Pass";

pub(crate) struct Api {
    pub(crate) g: Gateway,
    pub(crate) api: SocketAddr,
    pub(crate) mqtt: SocketAddr,
    pub(crate) token: String,
}

pub(crate) fn config(dir: &std::path::Path, extra: &str) -> Config {
    let text = format!(
        "[node]\ndata_dir = {:?}\n[api]\nbind = \"127.0.0.1:0\"\n[listeners.tcp.default]\nbind = \"127.0.0.1:0\"\n{extra}",
        dir.join("data").display().to_string()
    );
    Config::parse(&text, "test").unwrap()
}

pub(crate) async fn start(dir: &std::path::Path, extra: &str) -> Api {
    let g = Gateway::start(&config(dir, extra)).await.unwrap();
    let api = g.api.unwrap();
    let mqtt = g.listeners[0].1;
    let token = login_changed(api, "admin", "public", PWD).await.unwrap();
    Api {
        g,
        api,
        mqtt,
        token,
    }
}

impl Api {
    pub(crate) async fn req(&self, method: &str, path: &str, body: Option<Value>) -> Resp {
        let text = body.map(|b| b.to_string());
        call(
            self.api,
            method,
            path,
            Cred::Bearer(&self.token),
            text.as_deref(),
        )
        .await
        .unwrap()
    }

    pub(crate) async fn get(&self, path: &str) -> Resp {
        self.req("GET", path, None).await
    }

    pub(crate) async fn post(&self, path: &str, body: Value) -> Resp {
        self.req("POST", path, Some(body)).await
    }

    pub(crate) async fn put(&self, path: &str, body: Value) -> Resp {
        self.req("PUT", path, Some(body)).await
    }

    pub(crate) async fn delete(&self, path: &str) -> Resp {
        self.req("DELETE", path, None).await
    }
}

/// Publishes `n` QoS 1 messages from `client` and waits for each PUBACK.
pub(crate) async fn publish_qos1(addr: SocketAddr, client: &str, topic: &str, n: usize) {
    let (mut c, _) = RawClient::connect(addr, Version::V5, client, true)
        .await
        .unwrap();
    for i in 0..n {
        let payload = format!(r#"{{"vin":"{client}","seq":{i},"speed":{}}}"#, 40 + i % 50);
        let pid = (i % 60000 + 1) as u16;
        let p =
            ferry_testkit::publish_packet(topic, payload.as_bytes(), QoS::AtLeastOnce, false, pid);
        c.send(&Packet::Publish(p)).await.unwrap();
        match c.recv().await.unwrap() {
            Packet::PubAck(a) => assert!(a.code < 0x80, "PUBACK {:#x}", a.code),
            other => panic!("{other:?}"),
        }
    }
}

pub(crate) async fn kafka_count(k: &TestKafka, topic: &str, want: usize) -> usize {
    let (b, t) = (k.bootstrap.clone(), topic.to_owned());
    tokio::task::spawn_blocking(move || read_records(&b, &t, want, Duration::from_secs(30)))
        .await
        .unwrap()
        .len()
}

pub(crate) fn prom_value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
}

pub(crate) async fn wait_metric(a: &Api, path: &str, key: &str, want: u64) -> Value {
    for _ in 0..200 {
        let r = a.get(path).await;
        if r.body["metrics"][key].as_u64() == Some(want) {
            return r.body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "{path}: {key} never reached {want}: {:?}",
        a.get(path).await
    );
}

/// The admin password was changed before the restart: log in with the new one.
pub(crate) async fn start_again(dir: &std::path::Path) -> Api {
    let g = Gateway::start(&config(dir, "")).await.unwrap();
    let api = g.api.unwrap();
    let mqtt = g.listeners[0].1;
    let token = login_changed(api, "admin", PWD, PWD).await.unwrap();
    Api {
        g,
        api,
        mqtt,
        token,
    }
}
