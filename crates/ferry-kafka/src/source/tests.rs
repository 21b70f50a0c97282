//! Tests of the source's start that need no Kafka.

use std::sync::atomic::AtomicU64;

use super::*;

/// The metadata and offset lookups of `start_from_timestamp` wait for Kafka (here: for
/// their timeout, as nothing listens): they run on a blocking thread, so even the only
/// thread of a current-thread runtime goes on serving other tasks meanwhile.
#[tokio::test(flavor = "current_thread")]
async fn start_does_its_blocking_lookups_off_the_runtime() {
    let conn = Connector::new(
        "c",
        toml::from_str("bootstrap_hosts = \"127.0.0.1:1\"").unwrap(),
    );
    let cfg: SourceConfig = toml::from_str(
        "connector = \"c\"\ntopics = [\"t\"]\nmqtt_topic = \"x\"\nstart_from_timestamp = 1",
    )
    .unwrap();
    let ticks = Arc::new(AtomicU64::new(0));
    let t2 = ticks.clone();
    let ticker = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(10)).await;
            t2.fetch_add(1, Ordering::Relaxed);
        }
    });
    let began = Instant::now();
    let started = KafkaSource::start(
        "s",
        cfg,
        &conn,
        Weak::new(),
        None,
        &ferry_metrics::Registry::new(),
    )
    .await;
    ticker.abort();
    let Err(err) = started else {
        panic!("no Kafka listens: the lookups cannot succeed");
    };
    assert!(err.starts_with("sources.kafka.s:"), "{err}");
    // The lookups waited for Kafka (nothing answers: up to their timeout), and the
    // runtime's only thread ticked all along (blocked, it would not have ticked at all).
    let waited = began.elapsed();
    let ticks = u128::from(ticks.load(Ordering::Relaxed));
    assert!(waited >= Duration::from_secs(1), "{err} after {waited:?}");
    assert!(
        ticks * 100 >= waited.as_millis(),
        "{ticks} ticks of 10 ms in {waited:?}"
    );
}
