//! The rule tester as EMQX's `emqx_rule_sqltester:test/1`: the input's topic (the message
//! topic, or the event's `$events/...` topic from `event_topic`, `event` or `event_type`)
//! is matched against FROM first; no match is `TestError::NotMatched` ("no match", like a
//! false WHERE), never an error about the rest of the context.
#![allow(clippy::unwrap_used)]

use ferry_rules::{TestError, test_rule};
use serde_json::json;

fn no_match(sql: &str, ctx: serde_json::Value) -> bool {
    matches!(
        test_rule(sql, &ctx.to_string()),
        Err(TestError::NotMatched(_))
    )
}

#[test]
fn a_topic_outside_from_is_no_match() {
    let sql = "SELECT * FROM \"t/#\"";
    assert!(no_match(sql, json!({"topic": "other/a", "payload": "{}"})));
    // even with a context that would otherwise be rejected
    assert!(no_match(sql, json!({"topic": "other/a", "qos": 7})));
    assert!(test_rule(sql, &json!({"topic": "t/a"}).to_string()).is_ok());
    // `$` topics are not matched by a leading wildcard
    assert!(no_match("SELECT * FROM \"#\"", json!({"topic": "$SYS/x"})));
}

#[test]
fn an_event_outside_from_is_no_match() {
    let sql = "SELECT clientid FROM \"$events/client_connected\"";
    for ctx in [
        json!({"event_type": "client_disconnected", "clientid": "c1"}),
        json!({"event": "client.disconnected", "clientid": "c1"}),
        json!({"event_topic": "$events/session_subscribed"}),
        // an event Ferry does not know is still just "not this rule"
        json!({"event_type": "client_connack"}),
        json!({"topic": "t/a"}),
    ] {
        assert!(no_match(sql, ctx.clone()), "{ctx}");
    }
    for ctx in [
        json!({"event_type": "client_connected", "clientid": "c1"}),
        json!({"event": "client.connected", "clientid": "c1"}),
        json!({"event_topic": "$events/client_connected", "clientid": "c1"}),
    ] {
        let outs = test_rule(sql, &ctx.to_string()).unwrap();
        assert_eq!(outs.len(), 1, "{ctx}");
    }
    // a message rule and an event context
    assert!(no_match(
        "SELECT * FROM \"t/#\"",
        json!({"event_type": "client_connected", "topic": "t/a"})
    ));
}

#[test]
fn a_false_where_is_no_output_not_no_match() {
    let outs = test_rule(
        "SELECT 1 as a FROM \"t/#\" WHERE false",
        &json!({"topic": "t/a"}).to_string(),
    )
    .unwrap();
    assert!(outs.is_empty());
}

#[test]
fn newer_events_and_namespaced_topics() {
    // emqx_rule_events: event_topics_enum and expand_legacy_event_topics
    for (from, event) in [
        ("$events/client/disconnected", "client.disconnected"),
        ("$events/client_connack", "client.connack"),
        ("$events/client/connack", "client.connack"),
        (
            "$events/client_check_authz_complete",
            "client.check_authz_complete",
        ),
        (
            "$events/auth/check_authz_complete",
            "client.check_authz_complete",
        ),
        (
            "$events/client_check_authn_complete",
            "client.check_authn_complete",
        ),
        (
            "$events/auth/check_authn_complete",
            "client.check_authn_complete",
        ),
        ("$events/delivery_dropped", "delivery.dropped"),
        ("$events/message/delivery_dropped", "delivery.dropped"),
        ("$events/session/subscribed", "session.subscribed"),
    ] {
        let sql = format!("SELECT event, clientid, reason FROM \"{from}\"");
        // by the `event` column value, and by either topic
        for ctx in [
            json!({"event": event, "clientid": "c1", "reason": "queue_full"}),
            json!({"event_topic": from, "clientid": "c1", "reason": "queue_full"}),
        ] {
            let outs = test_rule(&sql, &ctx.to_string()).unwrap_or_else(|e| panic!("{from}: {e}"));
            let out = ferry_rules::Value::Map(outs[0].clone()).to_json();
            assert_eq!(
                serde_json::from_str::<serde_json::Value>(&out).unwrap(),
                json!({"event": event, "clientid": "c1", "reason": "queue_full"}),
                "{from}"
            );
        }
    }
    // legacy and namespaced topics name the same event
    let legacy =
        ferry_rules::Rule::compile("SELECT * FROM \"$events/client_disconnected\"").unwrap();
    let new = ferry_rules::Rule::compile("SELECT * FROM \"$events/client/disconnected\"").unwrap();
    assert_eq!(legacy.sources, new.sources);
}

#[test]
fn event_columns_include_what_emqx_documents() {
    use ferry_rules::Event;
    for (e, cols) in [
        (
            Event::MessageDelivered,
            &[
                "flags",
                "pub_props",
                "node",
                "peername",
                "publish_received_at",
            ][..],
        ),
        (
            Event::ClientDisconnected,
            &[
                "reason",
                "peername",
                "sockname",
                "connected_at",
                "disconnected_at",
            ][..],
        ),
        (
            Event::DeliveryDropped,
            &["reason", "from_clientid", "flags", "pub_props"][..],
        ),
        (
            Event::ClientConnack,
            &["reason_code", "conn_props", "sockname"][..],
        ),
        (
            Event::ClientCheckAuthzComplete,
            &["action", "authz_source", "result", "topic"][..],
        ),
        (
            Event::ClientCheckAuthnComplete,
            &["reason_code", "is_superuser", "is_anonymous"][..],
        ),
    ] {
        for c in cols {
            assert!(e.columns().contains(c), "{e:?} lacks {c}");
        }
    }
}
