//! The simulator's devices obey their physics; the bench tracker finds injected loss and
//! duplicates; simulator and bench work against a real broker over TCP.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ferry_mqtt::{QoS, Version};
use ferry_sim::report::{Tracker, payload};
use ferry_sim::scenario::{Scenario, Vehicle};
use ferry_sim::{PubOptions, SimOptions, Stats, SubOptions};
use ferry_testkit::{RawClient, TestBroker, wait_until};
use rand::SeedableRng;
use rand::rngs::StdRng;

fn dist_km(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    6371.0 * 2.0 * a.sqrt().asin()
}

#[test]
fn vehicles_drive_continuous_routes() {
    let mut rng = StdRng::seed_from_u64(7);
    for i in 0..20 {
        let mut v = Vehicle::new(i, &mut rng);
        let mut drove = false;
        let mut charged = false;
        for step in 0..3600 {
            let before = v.clone();
            v.step(1.0, 1_700_000_000_000 + step * 1000, &mut rng);
            assert!(v.odometer >= before.odometer, "odometer only grows");
            assert!((0.0..=100.0).contains(&v.soc), "soc {}", v.soc);
            assert!((0.0..=200.0).contains(&v.speed));
            assert!(
                (v.speed - before.speed).abs() <= 8.0 + 1e-9,
                "no jumps in speed"
            );
            let km = v.odometer - before.odometer;
            let moved = dist_km(before.lat, before.lon, v.lat, v.lon);
            assert!(
                (moved - km).abs() < 0.002,
                "position agrees with distance: moved {moved} drove {km}"
            );
            if km > 0.0 {
                drove = true;
                assert!(v.soc < before.soc, "driving drains the battery");
                assert_eq!(v.shift_state, "D");
            } else if v.soc > before.soc {
                charged = true;
                assert_eq!(v.shift_state, "P");
            }
            let j = v.json();
            assert!(
                j["odometer"].as_f64().unwrap() >= (before.odometer * 10.0).round() / 10.0,
                "reported odometer only grows"
            );
        }
        assert!(drove, "vehicle {i} drove");
        let _ = charged;
    }
}

#[test]
fn tesla_payload_has_teslamate_fields() {
    let mut rng = StdRng::seed_from_u64(1);
    let mut d = ferry_sim::scenario::Device::new(Scenario::Tesla, 3, &mut rng);
    let j = d.tick(1.0, 1_700_000_000_000, &mut rng);
    for k in [
        "vin",
        "car_id",
        "display_name",
        "model",
        "speed",
        "odometer",
        "soc",
        "elevation",
        "heading",
        "accuracy",
        "power",
        "shift_state",
        "range",
        "est_battery_range",
        "gps_as_of",
        "location",
        "timestamp",
    ] {
        assert!(j.get(k).is_some(), "missing {k}: {j}");
    }
    assert!(j["location"]["latitude"].is_string());
    for s in [Scenario::TempHum, Scenario::SmartHome] {
        let mut d = ferry_sim::scenario::Device::new(s, 0, &mut rng);
        assert!(d.tick(1.0, 1, &mut rng).is_object());
    }
}

#[test]
fn tracker_reports_injected_loss_duplicates_and_reordering() {
    let mut t = Tracker::default();
    let now = ferry_sim::report::now_us();
    // Publisher 0 sends 1..=10; 4 is lost, 6 arrives twice, 8 arrives after 9.
    for s in [1u64, 2, 3, 5, 6, 6, 7, 9, 8, 10] {
        t.record(&payload(0, s, now - 1000, 64), now);
    }
    // Publisher 1 sends 1..=3 cleanly.
    for s in 1..=3u64 {
        t.record(&payload(1, s, now - 500, 64), now);
    }
    t.record(b"not a bench payload", now);
    let r = t.report(13, 1.0);
    assert_eq!(
        (
            r.received,
            r.unique,
            r.lost,
            r.duplicates,
            r.out_of_order,
            r.unparsable
        ),
        (14, 12, 1, 1, 1, 1)
    );
    assert!(r.latency_us.p50 >= 500 && r.latency_us.max >= 1000);
    assert_eq!(t.inferred_sent(), 13);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_vehicles_reach_a_subscriber() -> anyhow::Result<()> {
    let b = TestBroker::start().await;
    let (mut sub, _) = RawClient::connect(b.addr, Version::V5, "watch", true).await?;
    sub.subscribe("mqttx/simulate/tesla/+", QoS::AtLeastOnce)
        .await?;
    let stats = Arc::new(Stats::default());
    let o = SimOptions {
        addr: b.addr,
        scenario: Scenario::Tesla,
        count: 3,
        interval: Duration::from_millis(20),
        topic: "mqttx/simulate/tesla/%c".into(),
        client_id_prefix: "car-".into(),
        qos: QoS::AtLeastOnce,
        version: Version::V311,
        username: None,
        password: None,
        limit: Some(5),
        tls: None,
    };
    ferry_sim::simulate(o, stats.clone(), Arc::new(AtomicBool::new(false))).await;
    assert_eq!(stats.sent.load(Ordering::Relaxed), 15);
    assert_eq!(stats.acked.load(Ordering::Relaxed), 15);
    for _ in 0..15 {
        let m = sub.recv_publish().await?;
        assert!(m.topic.starts_with("mqttx/simulate/tesla/car-"));
        let v: serde_json::Value = serde_json::from_slice(&m.payload)?;
        assert!(v["vin"].is_string());
    }
    b.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulator_reconnects_when_the_broker_comes_back() -> anyhow::Result<()> {
    let b = TestBroker::start().await;
    let addr = b.addr;
    let stats = Arc::new(Stats::default());
    let stop = Arc::new(AtomicBool::new(false));
    let o = SimOptions {
        addr,
        scenario: Scenario::TempHum,
        count: 2,
        interval: Duration::from_millis(50),
        topic: "temp_hum/%i".into(),
        client_id_prefix: "th-".into(),
        qos: QoS::AtMostOnce,
        version: Version::V5,
        username: None,
        password: None,
        limit: None,
        tls: None,
    };
    let run = tokio::spawn(ferry_sim::simulate(o, stats.clone(), stop.clone()));
    let s = stats.clone();
    wait_until("publishing", Duration::from_secs(10), || {
        s.sent.load(Ordering::Relaxed) > 4
    })
    .await;
    b.stop().await;
    let s = stats.clone();
    wait_until("errors seen", Duration::from_secs(10), || {
        s.errors.load(Ordering::Relaxed) > 0
    })
    .await;
    let b2 = TestBroker::at(Default::default(), addr).await;
    let before = stats.sent.load(Ordering::Relaxed);
    let s = stats.clone();
    wait_until("publishing again", Duration::from_secs(20), || {
        s.sent.load(Ordering::Relaxed) > before + 4
    })
    .await;
    assert_eq!(b2.broker.session_count(), 2, "both devices reconnected");
    stop.store(true, Ordering::Relaxed);
    run.await?;
    b2.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_pub_and_sub_report_no_loss_at_qos1_and_qos2() -> anyhow::Result<()> {
    for qos in [QoS::AtLeastOnce, QoS::ExactlyOnce] {
        bench_round(qos).await?;
    }
    Ok(())
}

async fn bench_round(qos: QoS) -> anyhow::Result<()> {
    let b = TestBroker::start().await;
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let sub = tokio::spawn(ferry_sim::bench_sub(
        SubOptions {
            addr: b.addr,
            clients: 1,
            filter: "bench/#".into(),
            qos,
            version: Version::V5,
            expect: Some(400),
            each: false,
            idle: Duration::from_secs(10),
            duration: Some(Duration::from_secs(60)),
            client_id_prefix: "bsub-".into(),
            tls: None,
        },
        Arc::new(Stats::default()),
        Some(ready_tx),
    ));
    ready_rx.await?;
    let pr = ferry_sim::bench_pub(
        PubOptions {
            addr: b.addr,
            clients: 4,
            rate: 0.0,
            qos,
            size: 100,
            topic: "bench/%i".into(),
            count: 100,
            duration: None,
            inflight: 16,
            version: Version::V311,
            client_id_prefix: "bpub-".into(),
            first_index: 0,
            tls: None,
        },
        Arc::new(Stats::default()),
    )
    .await;
    assert_eq!((pr.sent, pr.acked, pr.errors), (400, 400, 0));
    let ack = pr
        .ack_latency_us
        .expect("QoS 1/2 report publish-to-ack latency");
    assert!(
        ack.p50 > 0 && ack.p50 <= ack.p99 && ack.p99 <= ack.max,
        "{ack:?}"
    );
    let r = sub.await?;
    assert_eq!(
        (r.received, r.lost, r.duplicates, r.out_of_order),
        (400, 0, 0, 0),
        "{qos:?}: {r:?}"
    );
    b.stop().await;
    Ok(())
}

#[test]
fn bench_payloads_parse_fast_or_as_json_and_trackers_merge() {
    let p = payload(7, 42, 1_700_000_000_000_000, 100);
    assert_eq!(p.len(), 100);
    assert_eq!(
        ferry_sim::report::parse(&p),
        Some((7, 42, 1_700_000_000_000_000))
    );
    // Reordered keys (e.g. after a rule rewrote the JSON) still parse.
    assert_eq!(
        ferry_sim::report::parse(br#"{"t":5,"s":2,"c":1,"p":""}"#),
        Some((1, 2, 5))
    );
    let now = ferry_sim::report::now_us();
    let (mut a, mut b) = (Tracker::default(), Tracker::default());
    a.record(&payload(0, 1, now, 40), now);
    b.record(&payload(0, 1, now, 40), now);
    b.record(&payload(0, 2, now, 40), now);
    a.merge(b);
    let r = a.report(2, 1.0);
    assert_eq!((r.received, r.unique, r.duplicates, r.lost), (3, 2, 1, 0));
}
