//! The load generator's modes against a real broker: over TLS (trusting a CA file, or not
//! checking at all), a shared subscription group, a fan-out to many subscribers, and many
//! idle connections held while a harness looks at the broker.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ferry_broker::{Broker, MqttConfig};
use ferry_mqtt::{QoS, Version};
use ferry_server::Endpoint;
use ferry_server::config::SslListenerConfig;
use ferry_sim::tls::{TlsClient, TlsSettings};
use ferry_sim::{ConnOptions, PubOptions, Stats, SubOptions};
use ferry_testkit::TestBroker;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A broker with one TLS listener on 127.0.0.1:0, its certificate signed by a fresh CA.
struct TlsBroker {
    addr: SocketAddr,
    ca: PathBuf,
    _dir: tempfile::TempDir,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl TlsBroker {
    async fn start() -> anyhow::Result<TlsBroker> {
        let dir = tempfile::tempdir()?;
        let mut p = CertificateParams::new(Vec::<String>::new())?;
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, "bench CA");
        let ca = CertifiedIssuer::self_signed(p, KeyPair::generate()?)?;
        let leaf_key = KeyPair::generate()?;
        let leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?
            .signed_by(&leaf_key, &ca)?;
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca.pem())?;
        std::fs::write(dir.path().join("server.pem"), leaf.pem())?;
        std::fs::write(dir.path().join("server.key"), leaf_key.serialize_pem())?;
        let l = TcpListener::bind("127.0.0.1:0").await?;
        let addr = l.local_addr()?;
        let ep = Endpoint::ssl(
            "bench",
            &SslListenerConfig {
                bind: addr,
                certfile: dir.path().join("server.pem"),
                keyfile: dir.path().join("server.key"),
                ..Default::default()
            },
        )?;
        let stop = CancellationToken::new();
        let task = tokio::spawn(ferry_server::serve(
            l,
            ep,
            Broker::new(MqttConfig::default()),
            stop.clone(),
        ));
        Ok(TlsBroker {
            addr,
            ca: ca_file,
            _dir: dir,
            stop,
            task,
        })
    }

    async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

fn tls(cafile: Option<PathBuf>, insecure: bool) -> anyhow::Result<Option<TlsClient>> {
    Ok(Some(TlsClient::new(&TlsSettings {
        cafile,
        insecure,
        server_name: "127.0.0.1".into(),
        resume: false,
    })?))
}

fn sub(addr: SocketAddr, clients: usize, filter: &str, expect: u64, each: bool) -> SubOptions {
    SubOptions {
        addr,
        clients,
        filter: filter.into(),
        qos: QoS::AtLeastOnce,
        version: Version::V311,
        expect: Some(expect),
        each,
        idle: Duration::from_secs(10),
        duration: Some(Duration::from_secs(60)),
        client_id_prefix: "bsub-".into(),
        tls: None,
    }
}

fn publ(addr: SocketAddr, clients: usize, count: u64) -> PubOptions {
    PubOptions {
        addr,
        clients,
        rate: 0.0,
        qos: QoS::AtLeastOnce,
        size: 100,
        topic: "bench/%i".into(),
        count,
        duration: None,
        inflight: 16,
        version: Version::V311,
        client_id_prefix: "bpub-".into(),
        first_index: 0,
        tls: None,
    }
}

/// Runs the subscribers, then the publishers once they are subscribed; both reports.
async fn round(
    s: SubOptions,
    p: PubOptions,
) -> anyhow::Result<(ferry_sim::PubReport, ferry_sim::report::Report)> {
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let sub = tokio::spawn(ferry_sim::bench_sub(
        s,
        Arc::new(Stats::default()),
        Some(ready_tx),
    ));
    ready_rx.await?;
    let pr = ferry_sim::bench_pub(p, Arc::new(Stats::default())).await;
    Ok((pr, sub.await?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_publishes_subscribes_and_connects_over_tls() -> anyhow::Result<()> {
    let b = TlsBroker::start().await?;
    let t = tls(Some(b.ca.clone()), false)?;
    let (pr, r) = round(
        SubOptions {
            tls: t.clone(),
            ..sub(b.addr, 1, "bench/#", 300, false)
        },
        PubOptions {
            tls: t.clone(),
            ..publ(b.addr, 3, 100)
        },
    )
    .await?;
    assert_eq!((pr.sent, pr.acked, pr.errors), (300, 300, 0));
    assert_eq!((r.received, r.lost, r.duplicates), (300, 0, 0), "{r:?}");

    let ready = tempfile::tempdir()?;
    let ready_file = ready.path().join("ready.json");
    let o = ConnOptions {
        addr: b.addr,
        count: 20,
        rate: 0.0,
        concurrency: 4,
        hold: Duration::from_millis(10),
        version: Version::V311,
        client_id_prefix: "bconn-".into(),
        tls: tls(None, true)?,
        ready_file: Some(ready_file.clone()),
    };
    let report = ferry_sim::bench_conn(o, Arc::new(Stats::default())).await;
    assert_eq!(report["connected"], 20, "{report}");
    assert!(
        report["tls"]["version"]
            .as_str()
            .unwrap()
            .starts_with("TLSv1_"),
        "{report}"
    );
    let early: serde_json::Value = serde_json::from_slice(&std::fs::read(&ready_file)?)?;
    assert_eq!(early["connected"], 20, "written before the hold: {early}");

    // A CA that did not sign the broker's certificate: every handshake fails, counted.
    let other = TlsBroker::start().await?;
    let o = ConnOptions {
        addr: b.addr,
        count: 3,
        rate: 0.0,
        concurrency: 1,
        hold: Duration::ZERO,
        version: Version::V311,
        client_id_prefix: "bad-".into(),
        tls: tls(Some(other.ca.clone()), false)?,
        ready_file: None,
    };
    let report = ferry_sim::bench_conn(o, Arc::new(Stats::default())).await;
    assert_eq!(
        (report["connected"].as_u64(), report["errors"].as_u64()),
        (Some(0), Some(3))
    );
    assert!(
        TlsClient::new(&TlsSettings {
            server_name: "x".into(),
            ..Default::default()
        })
        .is_err(),
        "TLS needs a CA file or --insecure"
    );
    other.stop().await;
    b.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_group_splits_the_messages_and_a_fan_out_delivers_each_to_all() -> anyhow::Result<()>
{
    let b = TestBroker::start().await;
    // 10 publishers into a group of 3: every message once, to one of them.
    let (pr, r) = round(
        sub(b.addr, 3, "$share/g/bench/#", 500, false),
        publ(b.addr, 10, 50),
    )
    .await?;
    assert_eq!((pr.sent, pr.acked), (500, 500));
    assert_eq!(
        (r.sent, r.received, r.unique, r.lost, r.duplicates),
        (500, 500, 500, 0, 0),
        "{r:?}"
    );
    // 1 publisher to 5 subscribers: each gets all 200.
    let (pr, r) = round(sub(b.addr, 5, "bench/#", 200, true), publ(b.addr, 1, 200)).await?;
    assert_eq!(pr.acked, 200);
    assert_eq!(
        (r.sent, r.received, r.unique, r.lost, r.duplicates),
        (1000, 1000, 1000, 0, 0),
        "{r:?}"
    );
    b.stop().await;
    Ok(())
}
