#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use ferry_broker::{Broker, ClientInfo, Message, MqttConfig, Outgoing, Restored};
use ferry_mqtt::{QoS, SubOptions};

use redb::ReadableTableMetadata as _;

use super::*;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn client(id: &str, clean: bool, expiry: u32) -> Arc<ClientInfo> {
    Arc::new(ClientInfo {
        clean_start: clean,
        expiry_interval: expiry,
        ..ClientInfo::internal(id)
    })
}

#[tokio::test]
async fn state_round_trips_through_the_file() -> TestResult {
    let dir = tempfile::tempdir()?;
    {
        let store = Arc::new(RedbStore::open(dir.path())?);
        let (b, restored) =
            Broker::with_store(MqttConfig::default(), store, Duration::from_millis(100))?;
        assert_eq!(restored, Restored::default());
        let c = client("dev", false, 300);
        let a = b.connect(c.clone());
        b.subscribe(
            &a.session,
            "t/#",
            SubOptions {
                qos: QoS::AtLeastOnce,
                ..Default::default()
            },
            Some(3),
        )
        .map_err(|e| e.what)?;
        b.disconnect(&a.session, a.conn_id, None, &c);
        for i in 0..10 {
            b.publish(Message::new("t/x", i.to_string(), QoS::AtLeastOnce, false));
        }
        b.publish(Message::new("keep", "r", QoS::AtLeastOnce, true));
        b.publish(Message::new("gone", "r", QoS::AtLeastOnce, true));
        assert_eq!(b.sync()?, 3);
        assert!(b.retained_delete("gone"));
        assert_eq!(b.sync()?, 1);
    }
    // A new process: the same file.
    let store = Arc::new(RedbStore::open(dir.path())?);
    let (b, restored) = Broker::with_store(MqttConfig::default(), store, Duration::ZERO)?;
    assert_eq!(
        restored,
        Restored {
            sessions: 1,
            expired: 0,
            retained: 1,
            subscriptions: 1,
            queued: 10,
            ..Restored::default()
        }
    );
    let a = b.connect(client("dev", false, 300));
    assert!(a.session_present);
    let mut out = Vec::new();
    a.session.lock().next_batch(
        a.conn_id,
        100,
        100,
        tokio::time::Instant::now(),
        b.metrics(),
        &mut out,
    );
    let got: Vec<String> = out
        .iter()
        .filter_map(|o| match o {
            Outgoing::Publish { delivery, .. } => {
                Some(String::from_utf8_lossy(&delivery.msg.payload).into_owned())
            }
            Outgoing::Release(_) => None,
        })
        .collect();
    assert_eq!(got, (0..10).map(|i| i.to_string()).collect::<Vec<_>>());
    assert!(b.retained_get("keep").is_some());
    assert!(b.retained_get("gone").is_none());
    Ok(())
}

#[test]
fn a_second_open_of_the_same_file_is_refused_with_its_path() -> TestResult {
    let dir = tempfile::tempdir()?;
    let _first = RedbStore::open(dir.path())?;
    let e = RedbStore::open(dir.path()).unwrap_err().to_string();
    assert!(e.contains("state.redb"), "{e}");
    Ok(())
}

#[test]
fn a_corrupt_record_is_reported_with_its_key() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = RedbStore::open(dir.path())?;
    let tx = store.db.begin_write()?;
    tx.open_table(SESSIONS)?.insert("bad", &b"\x01nope"[..])?;
    tx.commit()?;
    let e = store.load().unwrap_err().to_string();
    assert!(e.contains("sessions/bad"), "{e}");
    Ok(())
}

#[tokio::test]
async fn a_file_from_before_keyed_deliveries_is_read_and_rewritten() -> TestResult {
    // The layout before the `deliveries` table: a version 1 session record holding its
    // queue and inflight window (2 + 2 deliveries; see ferry-broker's testdata).
    let dir = tempfile::tempdir()?;
    {
        let db = redb::Database::create(dir.path().join(FILE_NAME))?;
        let tx = db.begin_write()?;
        tx.open_table(SESSIONS)?.insert(
            "legacy",
            &include_bytes!("../../ferry-broker/src/store/testdata/session_v1.bin")[..],
        )?;
        tx.open_table(RETAINED)?;
        tx.commit()?;
    }
    let store = Arc::new(RedbStore::open(dir.path())?);
    let (b, restored) = Broker::with_store(MqttConfig::default(), store.clone(), Duration::ZERO)?;
    assert_eq!(
        (restored.sessions, restored.queued, restored.inflight),
        (1, 2, 2)
    );
    b.publish(Message::new("t/9", "q2", QoS::AtLeastOnce, false));
    b.sync()?;
    let tx = store.db.begin_read()?;
    assert_eq!(
        tx.open_table(DELIVERIES)?.len()?,
        5,
        "one key per delivery now"
    );
    drop((tx, b, store));

    let store = Arc::new(RedbStore::open(dir.path())?);
    let (b, restored) = Broker::with_store(MqttConfig::default(), store, Duration::ZERO)?;
    assert_eq!((restored.queued, restored.inflight), (3, 2));
    let a = b.connect(client("legacy", false, u32::MAX));
    assert!(a.session_present);
    assert_eq!(a.session.lock().resend_all().len(), 2);
    Ok(())
}

/// Applies every batch to a [`RedbStore`] and to the broker's reference `MemStore`.
#[derive(Debug)]
struct Tee(RedbStore, ferry_broker::store::MemStore);

impl Store for Tee {
    fn load(&self) -> Result<Loaded, StoreError> {
        self.0.load()
    }
    fn apply(&self, changes: &[Change]) -> Result<(), StoreError> {
        self.1.apply(changes)?;
        self.0.apply(changes)
    }
}

/// (client id, [(seq, sent, payload)]) of every stored session.
type Summary = Vec<(String, Vec<(u64, Option<u16>, String)>)>;

fn summary(l: Loaded) -> Summary {
    let mut out: Summary = l
        .sessions
        .into_iter()
        .map(|s| {
            let ds = s
                .deliveries
                .iter()
                .map(|d| {
                    let text = String::from_utf8_lossy(&d.delivery.msg.payload).into_owned();
                    (d.seq, d.sent.map(|(id, _)| id), text)
                })
                .collect();
            (s.record.client_id.to_string(), ds)
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn keyed_deliveries_in_the_file_match_the_reference_store() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Arc::new(Tee(
        RedbStore::open(dir.path())?,
        ferry_broker::store::MemStore::default(),
    ));
    let (b, _) = Broker::with_store(MqttConfig::default(), store.clone(), Duration::ZERO)?;
    let opts = SubOptions {
        qos: QoS::AtLeastOnce,
        ..Default::default()
    };
    // Client ids that are prefixes of each other: a range delete of one must not touch
    // the others.
    let mut attached = Vec::new();
    for id in ["de", "dev", "dev2"] {
        let a = b.connect(client(id, false, 300));
        b.subscribe(&a.session, "t", opts, None)
            .map_err(|e| e.what)?;
        attached.push(a);
    }
    for i in 0..20 {
        b.publish(Message::new("t", i.to_string(), QoS::AtLeastOnce, false));
    }
    b.sync()?;
    // "dev" takes 5 and acknowledges 2 of them; "de" is discarded by a clean start.
    let dev = &attached[1];
    let mut out = Vec::new();
    dev.session.lock().next_batch(
        dev.conn_id,
        5,
        100,
        tokio::time::Instant::now(),
        b.metrics(),
        &mut out,
    );
    b.sync()?;
    for o in out.iter().take(2) {
        if let Outgoing::Publish { packet_id, .. } = o {
            assert!(dev.session.lock().puback(*packet_id).is_some());
        }
    }
    let _de = b.connect(client("de", true, 0));
    b.publish(Message::new("t", "last", QoS::AtLeastOnce, false));
    b.sync()?;
    let file = summary(store.0.load()?);
    assert_eq!(file, summary(store.1.load()?));
    let lens: Vec<(String, usize)> = file.iter().map(|(id, d)| (id.clone(), d.len())).collect();
    assert_eq!(lens, vec![("dev".into(), 19), ("dev2".into(), 21)]);
    Ok(())
}
