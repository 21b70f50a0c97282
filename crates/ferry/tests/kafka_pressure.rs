//! Kafka actions under pressure, against the Tansu test broker: Kafka hanging (SIGSTOP) for
//! 30 s with each `when_full` policy, a graceful stop with records still waiting (memory and
//! hybrid modes), and a disk that fills up under the real binary (a small tmpfs in a private
//! mount namespace) and frees up again.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

mod common;

use common::{action_metrics as action, gateway_in};

use ferry_kafka::testing::{TestKafka, read_records};
use ferry_mqtt::{Packet, QoS, Version};
use ferry_testkit::{RawClient, wait_until};

/// The numbers (first 4 characters of each value) found in `topic`, once each: at least
/// `want` records are waited for, then whatever else arrives (duplicates, records whose
/// send timed out but landed) until the topic is quiet.
async fn numbers_in(bootstrap: &str, topic: &str, want: usize) -> BTreeSet<usize> {
    let (b, t) = (bootstrap.to_owned(), topic.to_owned());
    let recs = tokio::task::spawn_blocking(move || {
        let mut recs = read_records(&b, &t, want, Duration::from_secs(60));
        loop {
            let more = read_records(&b, &t, recs.len() + 1, Duration::from_secs(3));
            if more.len() <= recs.len() {
                return recs;
            }
            recs = more;
        }
    })
    .await
    .unwrap();
    // (The warm-up records are not numbered.)
    recs.iter()
        .filter_map(|r| std::str::from_utf8(&r.value[..4]).ok()?.parse().ok())
        .collect()
}

/// Publishes `n` QoS 1 messages `NNNN` + 1,000 bytes on `topic`, 10 at a time; returns the
/// PUBACK reason codes.
async fn publish_numbered(c: &mut RawClient, topic: &str, n: usize) -> anyhow::Result<Vec<u8>> {
    let mut codes = Vec::new();
    for from in (0..n).step_by(10) {
        codes.extend(publish_numbered_from(c, topic, from, 10.min(n - from)).await?);
    }
    Ok(codes)
}

const HANG: &str = r#"
[listeners.tcp.default]
bind = "0.0.0.0:1883"
[connectors.kafka.k]
bootstrap_hosts = "127.0.0.1:9092"
connect_timeout = "1s"
[actions.kafka.oldest]
connector = "k"
topic = "p_oldest"
value = "${payload}"
buffer_mode = "disk"
buffer_max_bytes = 65536
segment_bytes = 16384
when_full = "drop_oldest"
retry_backoff = "200ms"
[actions.kafka.newest]
connector = "k"
topic = "p_newest"
value = "${payload}"
buffer_mode = "disk"
buffer_max_bytes = 65536
segment_bytes = 16384
when_full = "drop_newest"
retry_backoff = "200ms"
[actions.kafka.bp]
connector = "k"
topic = "p_bp"
value = "${payload}"
buffer_mode = "disk"
buffer_max_bytes = 65536
segment_bytes = 16384
when_full = "backpressure"
retry_backoff = "200ms"
[rules.oldest]
sql = 'SELECT payload FROM "oldest/#"'
actions = ["kafka:oldest"]
[rules.newest]
sql = 'SELECT payload FROM "newest/#"'
actions = ["kafka:newest"]
[rules.bp]
sql = 'SELECT payload FROM "bp/#"'
actions = ["kafka:bp"]
"#;

/// Kafka stops answering (SIGSTOP) for 30 s while devices keep publishing more than the
/// buffers hold: drop_oldest and drop_newest acknowledge everything and count what they
/// drop; backpressure holds its publisher and loses nothing. Then Kafka comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_hanging_30s_with_each_when_full_policy() -> anyhow::Result<()> {
    const N: usize = 150; // about 1,060 bytes a record: 60 fit in 64 KiB
    let k = TestKafka::start();
    for t in ["p_oldest", "p_newest", "p_bp"] {
        k.create_topic(t, 1);
    }
    let data = tempfile::tempdir()?;
    let (g, addr) = gateway_in(HANG, &k.bootstrap, data.path()).await;
    let (mut c, _) = RawClient::connect(addr, Version::V5, "pub", true).await?;
    // Connected to Kafka before it hangs.
    for name in ["oldest", "newest", "bp"] {
        c.publish(&format!("{name}/warm"), b"warm", QoS::AtLeastOnce, false, 1)
            .await?;
        c.recv().await?;
        wait_until("warm-up delivered", Duration::from_secs(30), || {
            action(&g, name)["success"] == 1
        })
        .await;
    }

    k.pause();
    let hung = Instant::now();
    let oldest = publish_numbered(&mut c, "oldest/1", N).await?;
    let newest = publish_numbered(&mut c, "newest/1", N).await?;
    assert!(oldest.iter().chain(&newest).all(|c| *c < 0x80));
    let bp = tokio::spawn(async move {
        let (mut c, _) = RawClient::connect(addr, Version::V5, "bp-pub", true).await?;
        publish_numbered(&mut c, "bp/1", N).await
    });
    wait_until("backpressure holds", Duration::from_secs(20), || {
        action(&g, "bp")["buffer.held"] > 0
    })
    .await;
    tokio::time::sleep_until((hung + Duration::from_secs(30)).into()).await;
    assert!(
        !bp.is_finished(),
        "the backpressure publisher waits for room"
    );
    let m = action(&g, "bp");
    assert_eq!((m["dropped"], m["refused.buffer_full"]), (0, 0), "{m:?}");
    k.resume();

    let codes = bp.await??;
    assert!(codes.iter().all(|c| *c < 0x80), "{codes:?}");
    let all: BTreeSet<usize> = (0..N).collect();
    assert_eq!(
        numbers_in(&k.bootstrap, "p_bp", N + 1).await,
        all,
        "nothing lost"
    );

    for (name, reason) in [
        ("oldest", "buffer_full_oldest"),
        ("newest", "buffer_full_newest"),
    ] {
        let topic = format!("p_{name}");
        let settled = || {
            let m = action(&g, name);
            m["buffer.records"] == 0 && m["success"] + m["dropped"] == N as u64 + 1
        };
        let t = Instant::now();
        while !settled() {
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "{name}: {:?}",
                action(&g, name)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let m = action(&g, name);
        let dropped = m[&format!("dropped.{reason}")];
        assert_eq!(m["dropped"], dropped, "{m:?}");
        // About 60 records fit the buffer; drop_oldest also delivers those librdkafka had
        // (up to half the buffer's bytes, about 30) when they were dropped from disk.
        let most = if name == "oldest" { 64 + 32 } else { 64 };
        assert!(
            (N as u64 - most..=N as u64 - 40).contains(&dropped),
            "{m:?}"
        );
        let kept = N - dropped as usize;
        let got = numbers_in(&k.bootstrap, &topic, kept + 1).await;
        if name == "newest" {
            let want: BTreeSet<usize> = (0..kept).collect();
            assert_eq!(got, want, "the first ones are kept");
        } else {
            // The newest are kept; the oldest that librdkafka already had when they were
            // dropped from the buffer may have been delivered too: counted as success, or
            // as dropped when their send timed out during the hang (Kafka may still have
            // taken them: a timeout says nothing either way).
            assert!(got.len() >= kept, "{name}: {got:?}");
            let v: Vec<usize> = got.iter().copied().collect();
            let gap = (1..v.len()).find(|i| v[*i] != v[i - 1] + 1).unwrap_or(0);
            assert!(gap == 0 || v[0] == 0, "{v:?}");
            assert!(v[gap..].iter().copied().eq(v[gap]..N), "a suffix: {v:?}");
        }
    }
    g.stop().await;
    Ok(())
}

const STOP: &str = r#"
[listeners.tcp.default]
bind = "0.0.0.0:1883"
[connectors.kafka.k]
bootstrap_hosts = "127.0.0.1:9092"
connect_timeout = "1s"
[actions.kafka.mem]
connector = "k"
topic = "s_mem"
value = "${payload}"
[actions.kafka.hyb]
connector = "k"
topic = "s_hyb"
value = "${payload}"
buffer_mode = "hybrid"
[rules.mem]
sql = 'SELECT payload FROM "mem/#"'
actions = ["kafka:mem"]
[rules.hyb]
sql = 'SELECT payload FROM "hyb/#"'
actions = ["kafka:hyb"]
"#;

/// A graceful stop while Kafka is down: memory mode counts what it could not deliver
/// (dropped.resource_stopped); hybrid mode writes its memory to disk, and the next start
/// delivers it in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_counts_or_saves_what_waits() -> anyhow::Result<()> {
    const N: usize = 30;
    let mut k = TestKafka::start();
    k.stop();
    let data = tempfile::tempdir()?;
    let (g, addr) = gateway_in(STOP, &k.bootstrap, data.path()).await;
    let (mut c, _) = RawClient::connect(addr, Version::V5, "pub", true).await?;
    for name in ["mem", "hyb"] {
        let codes = publish_numbered(&mut c, &format!("{name}/1"), N).await?;
        assert!(codes.iter().all(|c| *c < 0x80));
    }
    let m = action(&g, "hyb");
    assert_eq!(m["buffer.spilled"], 0, "all in memory: {m:?}");
    let registry = g.broker.registry().clone();
    drop(c);
    g.stop().await;
    let json = |name: &str| registry.action(name).json();
    let mem = json("mem");
    assert_eq!(mem["dropped.resource_stopped"], N as u64, "{mem:?}");
    assert_eq!(mem["dropped"], N as u64);
    let hyb = json("hyb");
    assert_eq!(
        (hyb["buffer.spilled"], hyb["dropped"]),
        (N as u64, 0),
        "{hyb:?}"
    );

    k.restart();
    k.create_topic("s_hyb", 1);
    let (g, _) = gateway_in(STOP, &k.bootstrap, data.path()).await;
    let (b, t) = (k.bootstrap.clone(), "s_hyb".to_owned());
    let recs =
        tokio::task::spawn_blocking(move || read_records(&b, &t, N, Duration::from_secs(60)))
            .await?;
    let got: Vec<usize> = recs
        .iter()
        .map(|r| std::str::from_utf8(&r.value[..4]).unwrap().parse().unwrap())
        .collect();
    assert_eq!(got, (0..N).collect::<Vec<_>>(), "all of them, in order");
    g.stop().await;
    Ok(())
}

/// The buffer directory of a disk action fills up (a 256 KiB tmpfs mounted over it in the
/// binary's own mount namespace) while Kafka is down: PUBLISHes are refused with 0x80, the
/// action's status and the log say why, nothing acknowledged is lost; when Kafka is back
/// the buffer drains, space returns and writes succeed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_reported_and_recovers_in_the_binary() -> anyhow::Result<()> {
    let mut k = TestKafka::start();
    k.stop();
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let buffer = data.join("buffer");
    std::fs::create_dir_all(&buffer)?;
    let config = dir.path().join("ferry.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[node]
data_dir = {data:?}
[api]
bind = "127.0.0.1:0"
[listeners.tcp.default]
bind = "127.0.0.1:0"
[connectors.kafka.k]
bootstrap_hosts = "{bootstrap}"
connect_timeout = "1s"
[actions.kafka.out]
connector = "k"
buffer_mode = "disk"
segment_bytes = 16384
topic = "full"
value = "${{payload}}"
[rules.r]
sql = 'SELECT payload FROM "full/#"'
actions = ["kafka:out"]
"#,
            data = data.display().to_string(),
            bootstrap = k.bootstrap,
        ),
    )?;
    // The test needs a small file system of its own: a tmpfs in a private mount namespace.
    let probe = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount -t tmpfs -o size=64k ferry-probe "$1""#)
        .arg("sh")
        .arg(&buffer)
        .output();
    match probe {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "this test mounts a 256 KiB tmpfs in a private mount namespace (unshare --mount,              util-linux): run it as root or with unprivileged user namespaces enabled: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!("this test needs `unshare` (util-linux: apt-get install util-linux): {e}"),
    }
    let log = dir.path().join("ferry.log");
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount -t tmpfs -o size=256k ferry-test "$1" && exec "$2" serve --config "$3""#)
        .arg("sh")
        .arg(&buffer)
        .arg(env!("CARGO_BIN_EXE_ferry"))
        .arg(&config)
        .stderr(std::fs::File::create(&log)?);
    let (child, addr, api) = common::serve_command(cmd, true);
    // Killed when the test ends, even by a failed assertion.
    let ferry = common::Killed(child);
    let api = api.unwrap();

    let (mut c, _) = RawClient::connect(addr, Version::V5, "pub", true).await?;
    let mut acked = Vec::new();
    let mut refused = 0;
    let mut n = 0;
    while refused == 0 {
        assert!(n < 2000, "256 KiB never filled up");
        let codes = publish_numbered_from(&mut c, "full/1", n, 10).await?;
        for (i, code) in codes.into_iter().enumerate() {
            if code < 0x80 {
                acked.push(n + i);
            } else {
                assert_eq!(code, 0x80, "unspecified error");
                refused += 1;
            }
        }
        n += 10;
    }
    assert!(acked.len() > 100, "{} acknowledged", acked.len());
    let token = ferry_testkit::http::login_changed(api, "admin", "public", "s3cret-Pass")
        .await
        .unwrap();
    let status = ferry_testkit::http::call(
        api,
        "GET",
        "/api/v5/actions/kafka:out",
        ferry_testkit::http::Cred::Bearer(&token),
        None,
    )
    .await
    .unwrap();
    let reason = status.body["status_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("No space left"), "{:?}", status.body);
    let logged = std::fs::read_to_string(&log)?;
    assert!(logged.contains("No space left"), "{logged}");

    // Kafka comes back: the buffer drains, its segments go, writes succeed again.
    k.restart();
    k.create_topic("full", 1);
    let t = Instant::now();
    loop {
        let codes = publish_numbered_from(&mut c, "full/1", n, 1).await?;
        n += 1;
        if codes[0] < 0x80 {
            acked.push(n - 1);
            break;
        }
        if t.elapsed() > Duration::from_secs(60) {
            let logged = std::fs::read_to_string(&log)?;
            panic!("space never came back; the log:\n{logged}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Records refused after part of their batch became durable reach Kafka as well:
    // read until every acknowledged one is there.
    let want: BTreeSet<usize> = acked.iter().copied().collect();
    let mut count = acked.len();
    loop {
        let (b, topic) = (k.bootstrap.clone(), "full".to_owned());
        let recs = tokio::task::spawn_blocking(move || {
            read_records(&b, &topic, count, Duration::from_secs(30))
        })
        .await?;
        let got: BTreeSet<usize> = recs
            .iter()
            .map(|r| std::str::from_utf8(&r.value[..4]).unwrap().parse().unwrap())
            .collect();
        let missing: Vec<&usize> = want.difference(&got).collect();
        if missing.is_empty() {
            break;
        }
        assert_eq!(recs.len(), count, "acknowledged, not in Kafka: {missing:?}");
        count += missing.len();
    }
    let status = ferry_testkit::http::call(
        api,
        "GET",
        "/api/v5/actions/kafka:out",
        ferry_testkit::http::Cred::Bearer(&token),
        None,
    )
    .await
    .unwrap();
    assert!(
        !status.body["status_reason"]
            .as_str()
            .unwrap_or_default()
            .contains("No space left"),
        "cleared once a commit succeeds: {:?}",
        status.body
    );
    ferry.kill()?;
    Ok(())
}

/// [`publish_numbered`] of `count` messages numbered from `from`.
async fn publish_numbered_from(
    c: &mut RawClient,
    topic: &str,
    from: usize,
    count: usize,
) -> anyhow::Result<Vec<u8>> {
    let body = "x".repeat(1000);
    for i in from..from + count {
        let payload = format!("{i:04}{body}");
        c.publish(
            topic,
            payload.as_bytes(),
            QoS::AtLeastOnce,
            false,
            (i % 60_000) as u16 + 1,
        )
        .await?;
    }
    let mut codes = Vec::new();
    for _ in 0..count {
        match c.recv_within(Duration::from_secs(120)).await? {
            Some(Packet::PubAck(a)) => codes.push(a.code),
            other => anyhow::bail!("expected a PUBACK, got {other:?}"),
        }
    }
    Ok(codes)
}
