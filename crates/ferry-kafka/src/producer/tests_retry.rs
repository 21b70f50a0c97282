//! A record that librdkafka fails comes back whole for its retry: `send` lends topic, key
//! and value to librdkafka in memory modes, and the failed delivery report rebuilds them
//! (`Delivery::restore`). Against librdkafka's own mock cluster, which can fail a produce
//! request on demand.

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

use super::*;

fn record(key: Option<&[u8]>, value: &[u8]) -> Box<Delivery> {
    Box::new(Delivery {
        record: Record {
            topic: "t".into(),
            key: key.map(<[u8]>::to_vec),
            value: value.to_vec(),
            timestamp: 1_700_000_000_000,
            headers: vec![("h".into(), b"hv".to_vec())],
            partition: None,
            since: Instant::now(),
        },
        ack: None,
        attempt: 0,
        buffer_id: None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_record_is_sent_again_with_its_topic_key_value_and_headers() {
    let mock = MockCluster::new(1).expect("mock cluster");
    mock.create_topic("t", 1, 1).expect("topic");
    // The first produce request fails with an error librdkafka does not retry itself.
    mock.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_INVALID_TIMESTAMP],
    );
    let conn: crate::config::ConnectorConfig = toml::from_str(&format!(
        "bootstrap_hosts = \"{}\"",
        mock.bootstrap_servers()
    ))
    .expect("connector");
    let conn = Connector::new("k", conn);
    let cfg: ProducerConfig = toml::from_str(
        "connector = \"k\"\ntopic = \"t\"\nquery_mode = \"async\"\nidempotence = false\n\
         retry_backoff = \"10ms\"\nmax_retries = 3\nlinger = \"0ms\"\n",
    )
    .expect("config");
    let registry = Arc::new(Registry::new());
    let stop = CancellationToken::new();
    let a = KafkaAction::start("a", cfg, &conn, &registry, stop.clone(), None).expect("start");
    a.queue.push(record(Some(b"k1"), b"v1"));
    a.queue.push(record(None, b"v2"));
    let m = a.metrics.clone();
    let deadline = Instant::now() + Duration::from_secs(20);
    while m.counters.get(ActionMetric::Success) < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.cancel();
    assert_eq!(m.counters.get(ActionMetric::Success), 2);
    assert!(
        m.counters.get(ActionMetric::Retried) >= 1,
        "nothing was retried"
    );
    assert_eq!(m.counters.get(ActionMetric::Failed), 0);

    let bootstrap = mock.bootstrap_servers();
    let got = tokio::task::spawn_blocking(move || {
        use rdkafka::Message as _;
        use rdkafka::message::Headers as _;
        let c: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", "g")
            .set("auto.offset.reset", "earliest")
            .create()
            .expect("consumer");
        c.subscribe(&["t"]).expect("subscribe");
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while got.len() < 2 && Instant::now() < deadline {
            if let Some(Ok(msg)) = c.poll(Duration::from_millis(100)) {
                let h = msg.headers().and_then(|h| {
                    h.iter()
                        .next()
                        .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
                });
                got.push((
                    msg.key().map(<[u8]>::to_vec),
                    msg.payload().map(<[u8]>::to_vec),
                    h,
                ));
            }
        }
        got
    })
    .await
    .expect("consumer thread");
    let header = Some(("h".to_owned(), Some(b"hv".to_vec())));
    assert_eq!(
        got,
        vec![
            (Some(b"k1".to_vec()), Some(b"v1".to_vec()), header.clone()),
            (None, Some(b"v2".to_vec()), header),
        ]
    );
}
