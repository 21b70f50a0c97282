use super::driver::Driver;
use super::*;

fn test_options() -> Options {
    Options {
        segment_bytes: 1 << 16,
        max_bytes: 1 << 20,
        sync: SyncMode::Always,
    }
}

/// An action whose Kafka is unreachable, with more `settings`; with `buffer`, its own
/// buffer thread runs there.
fn unreachable_action(
    settings: &str,
    buffer: Option<std::path::PathBuf>,
) -> (Arc<KafkaAction>, CancellationToken) {
    let registry = ferry_metrics::Registry::new();
    let conn = crate::Connector::new(
        "c",
        toml::from_str("bootstrap_hosts = \"127.0.0.1:1\"").unwrap(),
    );
    let cfg = toml::from_str(&format!("connector = \"c\"\ntopic = \"t\"\n{settings}")).unwrap();
    let stop = CancellationToken::new();
    let a = KafkaAction::start("a", cfg, &conn, &registry, stop.clone(), buffer).unwrap();
    (a, stop)
}

/// A disk-buffered driver on `io`, for an action whose Kafka is unreachable.
fn driver_on<I: Io + Send + 'static>(
    io: I,
    dir: &Path,
) -> (
    DiskHandle,
    CancellationToken,
    Arc<KafkaAction>,
    std::thread::JoinHandle<()>,
) {
    let (a, stop) = unreachable_action("", None);
    let (buf, _) = Buffer::open(dir, test_options(), io).unwrap();
    let (handle, rx) = DiskHandle::new();
    let (h, s, a2) = (handle.clone(), stop.clone(), a.clone());
    let t = std::thread::spawn(move || Driver::new(a2, h, buf, 0).serve(&rx, &s));
    (handle, stop, a, t)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_order_reports_ack_only_the_contiguous_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let (h, stop, a, t) = driver_on(StdIo, dir.path());
    stop.cancel();
    tokio::task::spawn_blocking(move || t.join().unwrap())
        .await
        .unwrap();
    let (buf, _) = Buffer::open(dir.path(), test_options(), StdIo).unwrap();
    let mut d = Driver::new(a, h, buf, 0);
    for _ in 0..5 {
        d.append(record(), 0, None);
    }
    d.commit();
    d.pump(); // ids 1..=5 handed to librdkafka (Kafka is unreachable: no reports)
    assert_eq!(d.outstanding.len(), 5);
    let mut before = 0;
    for (done, acked) in [(3, 0), (5, 0), (1, 1), (2, 3), (4, 5)] {
        d.handle_msg(Msg::Done(done));
        d.ack(false);
        assert_eq!(d.buf.acked().0, before, "the cursor is stored in batches");
        d.ack(true);
        assert_eq!(d.buf.acked().0, acked, "after report {done}");
        before = acked;
    }
    // A retried record keeps the prefix from moving past it.
    for _ in 0..2 {
        d.append(record(), 0, None);
    }
    d.commit();
    d.pump();
    let retried = Box::new(Delivery::buffered(record(), 6));
    d.handle_msg(Msg::Retry(retried));
    d.handle_msg(Msg::Done(7));
    d.ack(true);
    assert_eq!(d.buf.acked().0, 5, "6 is waiting for its retry");
    d.handle_msg(Msg::Done(6));
    d.ack(true);
    assert_eq!(d.buf.acked().0, 7);
}

async fn append(h: &DiskHandle) -> Result<(), NotDurable> {
    let (tx, rx) = ferry_broker::DurableAck::channel();
    assert!(h.append(record(), 0, Some(tx)).is_ok());
    rx.await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_commit_answers_0x80_and_the_buffer_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let (io, faults) = ferry_buffer::FaultyIo::new();
    let (h, stop, a, t) = driver_on(io, dir.path());
    append(&h).await.unwrap();
    faults.set_disk_full(true);
    let e = append(&h).await.unwrap_err();
    assert_eq!(e.code, reason::UNSPECIFIED_ERROR, "{e:?}");
    assert!(e.why.contains("disk buffer"), "{e:?}");
    let status = a.buffer_error().unwrap();
    assert!(status.contains("disk buffer"), "{status}");
    faults.set_disk_full(false);
    append(&h).await.unwrap();
    assert_eq!(a.buffer_error(), None, "cleared by a successful commit");
    let m = a.metrics.counters.get(ActionMetric::BufferErrors);
    assert!(m >= 1);
    stop.cancel();
    tokio::task::spawn_blocking(move || t.join().unwrap())
        .await
        .unwrap();
    // Two records are durable; the refused one is not there.
    let (b, _) = Buffer::open(dir.path(), test_options(), StdIo).unwrap();
    assert_eq!(b.len_records(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hybrid_keeps_records_in_memory_then_spills_and_saves_them_at_stop() {
    let dir = tempfile::tempdir().unwrap();
    let size = stored_len(&record()) as u64;
    // Room in memory for 3 records.
    let settings = format!(
        "buffer_mode = \"hybrid\"\nbuffer_memory_bytes = {}",
        size * 3
    );
    let (a, stop) = unreachable_action(&settings, Some(dir.path().to_owned()));
    let h = a.disk_handle().unwrap().clone();
    for _ in 0..5 {
        append(&h).await.unwrap();
    }
    let c = &a.metrics.counters;
    wait_until("gauges", || c.get(ActionMetric::BufferMemoryRecords) == 3).await;
    assert_eq!(
        c.get(ActionMetric::BufferSpilled),
        2,
        "past the memory bound: on disk"
    );
    assert_eq!(c.get(ActionMetric::BufferRecords), 2);
    stop.cancel();
    let a2 = a.clone();
    tokio::task::spawn_blocking(move || a2.drain(Duration::from_secs(1)))
        .await
        .unwrap();
    assert_eq!(c.get(ActionMetric::BufferSpilled), 5, "saved at stop");
    assert_eq!(c.get(ActionMetric::DroppedResourceStopped), 0);
    let (mut b, _) = Buffer::open(dir.path(), test_options(), StdIo).unwrap();
    assert_eq!(b.len_records(), 5, "nothing kept in memory is lost");
    let stored = b.read_from(Id(1), 10).unwrap();
    for (_, bytes) in stored {
        same(&decode(&bytes).unwrap().0, &record());
    }
}

async fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let until = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[test]
fn stored_len_is_the_encoded_length() {
    let bare = Record {
        key: None,
        partition: None,
        headers: Vec::new(),
        ..record()
    };
    for r in [record(), bare] {
        assert_eq!(stored_len(&r), encode(&r, 1).len());
    }
}

fn record() -> Record {
    Record {
        topic: "t-site.1".into(),
        key: Some(b"dev-7".to_vec()),
        value: br#"{"x":1}"#.to_vec(),
        timestamp: 1_700_000_000_123,
        headers: vec![("a".into(), b"1".to_vec()), ("empty".into(), Vec::new())],
        partition: Some(3),
        since: Instant::now(),
    }
}

fn same(a: &Record, b: &Record) {
    assert_eq!(
        (
            &a.topic,
            &a.key,
            &a.value,
            a.timestamp,
            &a.headers,
            a.partition
        ),
        (
            &b.topic,
            &b.key,
            &b.value,
            b.timestamp,
            &b.headers,
            b.partition
        )
    );
}

#[test]
fn records_round_trip() {
    let r = record();
    let (back, received) = decode(&encode(&r, 42)).unwrap();
    same(&r, &back);
    assert_eq!(received, 42);
    let bare = Record {
        key: None,
        partition: None,
        headers: Vec::new(),
        value: Vec::new(),
        ..record()
    };
    let (back, _) = decode(&encode(&bare, -1)).unwrap();
    same(&bare, &back);
}

#[test]
fn the_format_is_fixed() {
    let r = Record {
        topic: "t".into(),
        key: Some(b"k".to_vec()),
        value: b"v".to_vec(),
        timestamp: 2,
        headers: vec![("h".into(), b"x".to_vec())],
        partition: None,
        since: Instant::now(),
    };
    let mut want = vec![1u8];
    want.extend_from_slice(&1i64.to_le_bytes());
    want.extend_from_slice(&2i64.to_le_bytes());
    want.push(0);
    want.extend_from_slice(&[1, 0, b't', 1, 1, 0, 0, 0, b'k', 1, 0, 0, 0, b'v']);
    want.extend_from_slice(&[1, 0, 0, 0, 1, 0, 0, 0, b'h', 1, 0, 0, 0, b'x']);
    assert_eq!(encode(&r, 1), want);
}

#[test]
fn damaged_records_are_errors_not_panics() {
    let bytes = encode(&record(), 7);
    for cut in 0..bytes.len() {
        assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(decode(&longer).is_err());
    let mut v2 = bytes;
    v2[0] = 2;
    assert!(decode(&v2).unwrap_err().contains("version"));
}
