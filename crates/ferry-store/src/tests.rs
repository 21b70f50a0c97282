#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use ferry_broker::{Broker, ClientInfo, Message, MqttConfig, Outgoing, Restored};
use ferry_mqtt::{QoS, SubOptions};

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
