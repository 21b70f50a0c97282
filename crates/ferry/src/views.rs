//! The API's views of the broker (clients, subscriptions, topics, retained messages), its
//! publish, the rule tester and the connector probe: mapping between broker types and the
//! API's EMQX-shaped JSON.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use ferry_api::ApiError;
use ferry_api::admin::{
    ClientView, PublishRequest, PublishResult, RetainedView, SubscriptionView, TopicView,
};
use ferry_broker::admin::{ClientSnapshot, SubscriptionSnapshot};
use ferry_broker::{ClientInfo, Message};
use ferry_mqtt::QoS;
use ferry_rules::rfc3339_ms;
use serde_json::{Value, json};

use crate::control::Control;

fn node(c: &Control) -> String {
    c.view().config.node.name.clone()
}

fn client_view(s: ClientSnapshot, node: &str) -> ClientView {
    let ci = &s.client;
    ClientView {
        clientid: ci.client_id.to_string(),
        username: ci.username.as_deref().map(str::to_owned),
        ip_address: ci.peer.map(|p| p.ip().to_string()).unwrap_or_default(),
        port: ci.peer.map_or(0, |p| p.port()),
        proto_name: if ci.proto_ver == 3 { "MQIsdp" } else { "MQTT" }.into(),
        proto_ver: ci.proto_ver,
        keepalive: ci.keepalive,
        clean_start: ci.clean_start,
        expiry_interval: s.expiry_interval,
        connected: s.connected,
        connected_at: rfc3339_ms(ci.connected_at),
        created_at: rfc3339_ms(s.created_at),
        node: node.to_owned(),
        subscriptions_cnt: s.subscriptions_cnt as u64,
        subscriptions_max: "infinity".into(),
        inflight_cnt: s.inflight_cnt as u64,
        inflight_max: s.inflight_max as u64,
        mqueue_len: s.mqueue_len as u64,
        mqueue_max: s.mqueue_max as u64,
        mqueue_dropped: s.stats.mqueue_dropped,
        recv_msg: s.stats.recv_msg,
        send_msg: s.stats.send_msg,
        recv_pkt: s.stats.recv_pkt,
        send_pkt: s.stats.send_pkt,
        recv_oct: s.stats.recv_oct,
        send_oct: s.stats.send_oct,
    }
}

pub(crate) fn clients(c: &Control) -> Vec<ClientView> {
    let node = node(c);
    c.broker
        .clients()
        .into_iter()
        .map(|s| client_view(s, &node))
        .collect()
}

pub(crate) fn client(c: &Control, id: &str) -> Option<ClientView> {
    c.broker.client(id).map(|s| client_view(s, &node(c)))
}

pub(crate) fn kick(c: &Control, id: &str) -> bool {
    c.broker.kick(id)
}

fn sub_view(s: SubscriptionSnapshot, node: &str) -> SubscriptionView {
    SubscriptionView {
        clientid: s.client_id.to_string(),
        topic: s.topic().to_owned(),
        qos: s.opts.qos as u8,
        nl: u8::from(s.opts.no_local),
        rap: u8::from(s.opts.retain_as_published),
        rh: s.opts.retain_handling,
        node: node.to_owned(),
        share_group: s.share_group,
    }
}

pub(crate) fn subscriptions(c: &Control) -> Vec<SubscriptionView> {
    let node = node(c);
    c.broker
        .subscriptions()
        .into_iter()
        .map(|s| sub_view(s, &node))
        .collect()
}

pub(crate) fn topics(c: &Control) -> Vec<TopicView> {
    let node = node(c);
    c.broker
        .topics()
        .into_iter()
        .map(|topic| TopicView {
            topic,
            node: node.clone(),
        })
        .collect()
}

fn retained_view(r: ferry_broker::admin::RetainedSnapshot, with_payload: bool) -> RetainedView {
    RetainedView {
        msgid: format!("{:x}", r.published_at),
        qos: r.qos as u8,
        from_clientid: r.from_clientid.as_deref().unwrap_or_default().to_owned(),
        from_username: r.from_username.as_deref().unwrap_or_default().to_owned(),
        publish_at: rfc3339_ms(r.published_at),
        payload: with_payload.then(|| base64::engine::general_purpose::STANDARD.encode(&r.payload)),
        topic: r.topic,
    }
}

pub(crate) fn retained(c: &Control, filter: &str) -> Result<Vec<RetainedView>, ApiError> {
    c.broker
        .retained_list(filter)
        .map(|l| l.into_iter().map(|r| retained_view(r, false)).collect())
        .map_err(|e| ApiError::bad_request(format!("topic: {filter:?} is not a topic filter: {e}")))
}

pub(crate) fn retained_get(c: &Control, topic: &str) -> Option<RetainedView> {
    c.broker.retained_get(topic).map(|r| retained_view(r, true))
}

pub(crate) fn retained_delete(c: &Control, topic: &str) -> bool {
    c.broker.retained_delete(topic)
}

pub(crate) fn retained_clear(c: &Control) -> usize {
    c.broker.retained_clear()
}

/// The client id an API publish appears to come from, unless the request names one.
const API_CLIENT: &str = "ferry_http_api";

pub(crate) fn publish(c: &Control, req: PublishRequest) -> Result<PublishResult, ApiError> {
    ferry_mqtt::topic::validate_name(&req.topic)
        .map_err(|e| ApiError::bad_request(format!("topic: {:?}: {e}", req.topic)))?;
    let qos = match req.qos {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        2 => QoS::ExactlyOnce,
        q => return Err(ApiError::bad_request(format!("qos: {q} is not 0, 1 or 2"))),
    };
    let payload = match req.payload_encoding.as_str() {
        "plain" => req.payload.into_bytes(),
        "base64" => base64::engine::general_purpose::STANDARD
            .decode(req.payload.as_bytes())
            .map_err(|e| ApiError::bad_request(format!("payload: not base64: {e}")))?,
        other => {
            return Err(ApiError::bad_request(format!(
                "payload_encoding: {other:?} is not plain or base64"
            )));
        }
    };
    let max = c.broker.config().max_packet_size as usize;
    if payload.len() > max {
        return Err(ApiError::TooLarge(format!(
            "payload: {} bytes is more than mqtt.max_packet_size ({max})",
            payload.len()
        )));
    }
    let mut msg = Message::new(req.topic, payload, qos, req.retain);
    let p = req.properties;
    if p.payload_format_indicator.is_some_and(|x| x > 1) {
        return Err(ApiError::bad_request(
            "properties.payload_format_indicator: must be 0 or 1",
        ));
    }
    msg.properties.payload_format_indicator = p.payload_format_indicator;
    msg.properties.message_expiry_interval = p.message_expiry_interval;
    msg.properties.content_type = p.content_type;
    if let Some(t) = &p.response_topic {
        ferry_mqtt::topic::validate_name(t)
            .map_err(|e| ApiError::bad_request(format!("properties.response_topic: {t:?}: {e}")))?;
    }
    msg.properties.response_topic = p.response_topic;
    msg.properties.correlation_data = p.correlation_data.map(|s| s.into_bytes().into());
    msg.properties.user_properties = p.user_properties.into_iter().collect();
    let id = req.clientid.unwrap_or_else(|| API_CLIENT.to_owned());
    msg.publisher = Some(Arc::new(ClientInfo::internal(&id)));
    let msg_id = format!(
        "{:016x}",
        msg.timestamp as u64 ^ u64::from(std::process::id())
    );
    let matched = c.broker.publish(msg);
    Ok(PublishResult {
        id: msg_id,
        reason_code: (matched == 0).then_some(16),
        message: (matched == 0).then(|| "no matching subscribers".to_owned()),
    })
}

pub(crate) fn rule_test(sql: &str, context: Value) -> Result<Value, ApiError> {
    if !context.is_object() {
        return Err(ApiError::bad_request("context: must be a JSON object"));
    }
    let text = context.to_string();
    match ferry_rules::test_rule(sql, &text) {
        Ok(outs) if outs.is_empty() => Err(ApiError::PreconditionFailed(
            "SQL Not Match: the input did not match FROM or WHERE".into(),
        )),
        Ok(outs) => {
            let mut vals: Vec<Value> = outs
                .into_iter()
                .map(|m| {
                    serde_json::from_str(&ferry_rules::Value::Map(m).to_json())
                        .unwrap_or(Value::Null)
                })
                .collect();
            if vals.len() == 1 {
                Ok(vals.remove(0))
            } else {
                Ok(Value::Array(vals))
            }
        }
        Err(ferry_rules::TestError::Rule(ferry_rules::RuleError::NoResult)) => Err(
            ApiError::PreconditionFailed("SQL Not Match: no output for this input".into()),
        ),
        Err(e @ ferry_rules::TestError::NotMatched(_)) => {
            Err(ApiError::PreconditionFailed(e.to_string()))
        }
        Err(e) => Err(ApiError::bad_request(e.to_string())),
    }
}

pub(crate) fn rule_events() -> Value {
    let mut events = vec![json!({
        "event": "$events/message_publish",
        "event_type": "message_publish",
        "title": {"en": "Message publish"},
        "description": {"en": "A message was published (FROM a topic filter)"},
        "columns": ["id", "clientid", "username", "payload", "peerhost", "peername", "topic",
            "qos", "flags", "pub_props", "timestamp", "publish_received_at", "node",
            "client_attrs"],
        "sql_example": "SELECT * FROM \"t/#\"",
    })];
    for e in ferry_rules::Event::ALL {
        events.push(json!({
            "event": format!("$events/{}", e.name()),
            "event_type": e.name(),
            "title": {"en": e.event_field()},
            "columns": e.columns(),
            "sql_example": format!("SELECT * FROM \"$events/{}\"", e.name()),
        }));
    }
    Value::Array(events)
}

/// The connector "Test": a TCP connection to every bootstrap host (so a refusal names the
/// address), then a metadata request through the Kafka client with the connector's TLS and
/// SASL settings.
pub(crate) async fn probe_connector(section: Value) -> Result<(), ApiError> {
    let cfg: ferry_kafka::config::ConnectorConfig = serde_json::from_value(section)
        .map_err(|e| ApiError::invalid(vec![format!("connector: {e}")]))?;
    let mut kafka = ferry_kafka::config::KafkaConnectors::default();
    kafka.kafka.insert("probe".into(), cfg.clone());
    let problems = ferry_kafka::config::validate(&kafka, &Default::default());
    if !problems.is_empty() {
        return Err(ApiError::invalid(problems));
    }
    let timeout = cfg.connect_timeout.0.min(Duration::from_secs(10));
    for host in cfg.bootstrap_hosts.split(',').map(str::trim) {
        match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(host)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                return Err(ApiError::bad_request(format!("connection refused: {host}")));
            }
            Ok(Err(e)) => return Err(ApiError::bad_request(format!("{host}: {e}"))),
            Err(_) => {
                return Err(ApiError::bad_request(format!(
                    "{host}: no answer within {} ms",
                    timeout.as_millis()
                )));
            }
        }
    }
    let conn = ferry_kafka::Connector::new("probe", cfg);
    let checked = tokio::task::spawn_blocking(move || {
        conn.check_now();
        conn.status()
    })
    .await
    .map_err(|e| ApiError::Internal(format!("probe: {e}")))?;
    match checked.state {
        ferry_kafka::ConnectorState::Connected => Ok(()),
        _ => Err(ApiError::bad_request(format!(
            "cannot reach the cluster: {}",
            checked.last_error.unwrap_or_else(|| "unknown error".into())
        ))),
    }
}
