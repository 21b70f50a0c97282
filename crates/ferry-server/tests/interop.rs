//! Interoperability with independent clients: rumqttc (3.1.1 and 5) and Debian's
//! mosquitto_pub / mosquitto_sub (installed by ./scripts/test).
#![allow(clippy::unwrap_used)]

use std::process::Stdio;
use std::time::Duration;

use ferry_testkit::TestBroker;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet as RPacket, QoS};
use tokio::process::Command;

async fn next_publish(ev: &mut rumqttc::EventLoop) -> rumqttc::Publish {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ev.poll()).await {
            Ok(Ok(Event::Incoming(RPacket::Publish(p)))) => return p,
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("rumqttc error: {e}"),
            Err(_) => panic!("no PUBLISH within 10 s"),
        }
    }
}

async fn wait_suback(ev: &mut rumqttc::EventLoop) {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ev.poll()).await {
            Ok(Ok(Event::Incoming(RPacket::SubAck(_)))) => return,
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("rumqttc error: {e}"),
            Err(_) => panic!("no SUBACK within 10 s"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rumqttc_v311_pub_sub_at_every_qos() -> anyhow::Result<()> {
    let b = TestBroker::start().await;
    let (sub, mut sev) =
        AsyncClient::new(MqttOptions::new("r-sub", "127.0.0.1", b.addr.port()), 10);
    sub.subscribe("rq/#", QoS::ExactlyOnce).await?;
    wait_suback(&mut sev).await;
    let (publ, mut pev) =
        AsyncClient::new(MqttOptions::new("r-pub", "127.0.0.1", b.addr.port()), 10);
    tokio::spawn(async move { while pev.poll().await.is_ok() {} });
    for (i, q) in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce]
        .into_iter()
        .enumerate()
    {
        publ.publish(format!("rq/{i}"), q, false, vec![i as u8])
            .await?;
        let p = next_publish(&mut sev).await;
        assert_eq!(
            (p.topic.as_str(), p.qos, p.payload[0]),
            (&*format!("rq/{i}"), q, i as u8)
        );
    }
    b.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rumqttc_v5_user_properties_and_retain() -> anyhow::Result<()> {
    use rumqttc::v5::mqttbytes::QoS as Q5;
    use rumqttc::v5::mqttbytes::v5::{Packet as P5, PublishProperties};
    use rumqttc::v5::{AsyncClient as C5, Event as E5, MqttOptions as O5};
    let b = TestBroker::start().await;
    let (publ, mut pev) = C5::new(O5::new("r5-pub", "127.0.0.1", b.addr.port()), 10);
    tokio::spawn(async move { while pev.poll().await.is_ok() {} });
    let props = PublishProperties {
        user_properties: vec![("site".into(), "lab".into())],
        ..Default::default()
    };
    publ.publish_with_properties("r5/state", Q5::AtLeastOnce, true, "on", props)
        .await?;
    let broker = b.broker.clone();
    ferry_testkit::wait_until("retained", Duration::from_secs(10), || {
        broker.retained_count() == 1
    })
    .await;
    let (sub, mut sev) = C5::new(O5::new("r5-sub", "127.0.0.1", b.addr.port()), 10);
    sub.subscribe("r5/#", Q5::AtLeastOnce).await?;
    let p = loop {
        if let E5::Incoming(P5::Publish(p)) =
            tokio::time::timeout(Duration::from_secs(10), sev.poll()).await??
        {
            break p;
        }
    };
    assert!(p.retain);
    assert_eq!(&p.payload[..], b"on");
    let up = p.properties.map(|p| p.user_properties).unwrap_or_default();
    assert_eq!(up, vec![("site".to_string(), "lab".to_string())]);
    b.stop().await;
    Ok(())
}

fn mosquitto(bin: &str) -> Command {
    let mut c = Command::new(bin);
    c.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    c
}

async fn run_pub(args: &[&str]) {
    let out = mosquitto("mosquitto_pub").args(args).output().await.unwrap_or_else(|e| {
        panic!("mosquitto_pub not runnable ({e}); install it with ./scripts/test (Debian package mosquitto-clients)")
    });
    assert!(
        out.status.success(),
        "mosquitto_pub {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Starts mosquitto_sub and waits until its subscription is in place.
async fn start_sub(b: &TestBroker, args: &[&str]) -> tokio::process::Child {
    let before = b.broker.subscription_count();
    let child = mosquitto("mosquitto_sub").args(args).spawn().unwrap_or_else(|e| {
        panic!("mosquitto_sub not runnable ({e}); install it with ./scripts/test (Debian package mosquitto-clients)")
    });
    let broker = b.broker.clone();
    ferry_testkit::wait_until("mosquitto_sub subscribed", Duration::from_secs(10), || {
        broker.subscription_count() > before
    })
    .await;
    child
}

async fn output(child: tokio::process::Child) -> String {
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("mosquitto_sub finished")
        .expect("mosquitto_sub output");
    assert!(
        out.status.success(),
        "mosquitto_sub: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_qos2_retained_and_v5_user_properties() -> anyhow::Result<()> {
    let b = TestBroker::start().await;
    let port = b.addr.port().to_string();
    let p = port.as_str();
    // Retained at QoS 2 before anyone subscribes.
    run_pub(&[
        "-h",
        "127.0.0.1",
        "-p",
        p,
        "-t",
        "m/retained",
        "-m",
        "kept",
        "-r",
        "-q",
        "2",
    ])
    .await;
    let sub = start_sub(
        &b,
        &[
            "-h",
            "127.0.0.1",
            "-p",
            p,
            "-V",
            "mqttv5",
            "-t",
            "m/#",
            "-q",
            "2",
            "-C",
            "3",
            "-W",
            "15",
            "-F",
            "%t|%q|%r|%P|%p",
        ],
    )
    .await;
    run_pub(&[
        "-h",
        "127.0.0.1",
        "-p",
        p,
        "-t",
        "m/q2",
        "-m",
        "exactly",
        "-q",
        "2",
    ])
    .await;
    run_pub(&[
        "-h",
        "127.0.0.1",
        "-p",
        p,
        "-V",
        "mqttv5",
        "-t",
        "m/props",
        "-m",
        "with-props",
        "-q",
        "1",
        "-D",
        "publish",
        "user-property",
        "k1",
        "v1",
        "-D",
        "publish",
        "user-property",
        "k2",
        "v2",
    ])
    .await;
    let out = output(sub).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        vec![
            "m/retained|2|1||kept",
            "m/q2|2|0||exactly",
            "m/props|1|0|k1:v1 k2:v2|with-props"
        ]
    );
    b.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_will_is_delivered_when_the_client_dies() -> anyhow::Result<()> {
    let b = TestBroker::start().await;
    let port = b.addr.port().to_string();
    let p = port.as_str();
    let watcher = start_sub(
        &b,
        &[
            "-h",
            "127.0.0.1",
            "-p",
            p,
            "-t",
            "wills/#",
            "-q",
            "1",
            "-C",
            "1",
            "-W",
            "15",
            "-v",
        ],
    )
    .await;
    let mut dying = start_sub(
        &b,
        &[
            "-h",
            "127.0.0.1",
            "-p",
            p,
            "-t",
            "nothing",
            "--will-topic",
            "wills/dev1",
            "--will-payload",
            "dead",
            "--will-qos",
            "1",
        ],
    )
    .await;
    dying.kill().await?; // SIGKILL: no DISCONNECT is sent
    assert_eq!(output(watcher).await.trim(), "wills/dev1 dead");
    b.stop().await;
    Ok(())
}
