//! Reading a topic as records arrive: `ferry kafka tail` and `ferry bench kafka`.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;

/// A record as read back from Kafka.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumedRecord {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    pub timestamp: Option<i64>,
    pub headers: Vec<(String, Vec<u8>)>,
}

impl From<&rdkafka::message::BorrowedMessage<'_>> for ConsumedRecord {
    fn from(m: &rdkafka::message::BorrowedMessage<'_>) -> Self {
        let headers = m
            .headers()
            .map(|h| {
                h.iter()
                    .map(|x| {
                        (
                            x.key.to_owned(),
                            x.value.map(<[u8]>::to_vec).unwrap_or_default(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        ConsumedRecord {
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().map(<[u8]>::to_vec),
            value: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
            timestamp: m.timestamp().to_millis(),
            headers,
        }
    }
}

/// Prints records of `topic` as they arrive (all partitions, from the end or the start)
/// until `stop` returns true. For `ferry kafka tail` and the demo. `fetch_wait`: how long
/// the broker may hold a fetch that has no data yet (librdkafka's `fetch.wait.max.ms`,
/// 500 ms by default; a latency bench sets it short, since a record arriving while a fetch
/// waits is seen only when the fetch returns).
pub fn tail(
    bootstrap: &str,
    topic: &str,
    from_beginning: bool,
    fetch_wait: Option<Duration>,
    mut on_record: impl FnMut(&ConsumedRecord),
    stop: impl Fn() -> bool,
) -> Result<(), String> {
    let group = format!("ferry-tail-{}", std::process::id());
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", bootstrap)
        .set("group.id", &group)
        .set("enable.auto.commit", "false");
    if let Some(w) = fetch_wait {
        cfg.set("fetch.wait.max.ms", w.as_millis().max(1).to_string());
    }
    let consumer: BaseConsumer = cfg.create().map_err(|e| e.to_string())?;
    let mut tpl = rdkafka::TopicPartitionList::new();
    loop {
        if stop() {
            return Ok(());
        }
        let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(5));
        let partitions: Vec<i32> = md
            .ok()
            .and_then(|md| {
                md.topics()
                    .first()
                    .map(|t| t.partitions().iter().map(|p| p.id()).collect())
            })
            .unwrap_or_default();
        if partitions.is_empty() {
            std::thread::sleep(Duration::from_millis(500));
            continue;
        }
        let offset = if from_beginning {
            rdkafka::Offset::Beginning
        } else {
            rdkafka::Offset::End
        };
        for p in partitions {
            tpl.add_partition_offset(topic, p, offset)
                .map_err(|e| e.to_string())?;
        }
        break;
    }
    consumer.assign(&tpl).map_err(|e| e.to_string())?;
    while !stop() {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => on_record(&ConsumedRecord::from(&m)),
            Some(Err(e)) => tracing::debug!("tail: {e}"),
            None => {}
        }
    }
    Ok(())
}
