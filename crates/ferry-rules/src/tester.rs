//! The rule tester: run a rule on a context like EMQX's rule-test API takes, without a
//! broker. `ferry rule test` and (later) the HTTP API call this.

use crate::error::CompileError;
use crate::events::Event;
use crate::input::{MapInput, MessageInput};
use crate::rule::{Rule, RuleError, Source};
use crate::value::{Map, Value};

#[derive(Debug, thiserror::Error)]
pub enum TestError {
    #[error("SQL error: {0}")]
    Compile(CompileError),
    #[error("bad context: {0}")]
    Context(String),
    /// The input is not one the rule selects (its topic or event is not in FROM).
    #[error("SQL Not Match: {0}")]
    NotMatched(String),
    #[error("{0}")]
    Rule(RuleError),
}

impl From<CompileError> for TestError {
    fn from(e: CompileError) -> Self {
        TestError::Compile(e)
    }
}

fn get_str(ctx: &Map, k: &str, default: &str) -> String {
    match ctx.get(k) {
        Some(Value::Str(s)) => s.clone(),
        Some(Value::Null) | None => default.to_owned(),
        Some(other) => other.to_text(),
    }
}

fn get_int(ctx: &Map, k: &str, default: i64) -> Result<i64, TestError> {
    match ctx.get(k) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Int(i)) => Ok(*i),
        Some(Value::Str(s)) => s
            .parse()
            .map_err(|_| TestError::Context(format!("{k} must be an integer"))),
        Some(_) => Err(TestError::Context(format!("{k} must be an integer"))),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Runs `sql` on the input described by `context` (a JSON object). Returns the outputs:
/// none when the WHERE (or every INCASE) fails.
pub fn test_rule(sql: &str, context: &str) -> Result<Vec<Map>, TestError> {
    let rule = Rule::compile(sql)?;
    let ctx = match Value::from_json(context.as_bytes()) {
        Some(Value::Map(m)) => m,
        _ => {
            return Err(TestError::Context(
                "the context must be a JSON object".into(),
            ));
        }
    };
    // Which topic the input arrives on, as EMQX's sqltester infers it: `event_topic`, else
    // the `event` (or Ferry's `event_type`) unless it is a publish, else `topic`.
    let event_type = match (
        ctx.get("event_topic"),
        ctx.get("event"),
        ctx.get("event_type"),
    ) {
        (Some(Value::Str(t)), _, _) => t.trim_start_matches("$events/").to_owned(),
        (_, Some(Value::Str(e)), _) | (_, _, Some(Value::Str(e))) => e.clone(),
        _ => "message_publish".to_owned(),
    };
    let event_type = event_type.trim_start_matches("$events/").to_owned();
    let event_type = match Event::from_name(&event_type) {
        Some(e) => e.name().to_owned(),
        None => event_type.replace('.', "_"),
    };
    let topic = get_str(&ctx, "topic", "t/a");
    let in_topic = if event_type == "message_publish" {
        topic.clone()
    } else if event_type.starts_with("$bridges/") {
        event_type.clone()
    } else {
        format!("$events/{event_type}")
    };
    // An input the rule does not listen to is "no match", like a false WHERE; only then
    // is the rest of the context checked.
    let matched = rule.sources.iter().any(|s| match s {
        Source::Topic(f) => {
            event_type == "message_publish" && ferry_mqtt::topic::matches(f, &in_topic)
        }
        Source::Event(e) => Event::from_name(&event_type) == Some(*e),
        Source::Bridge(b) => *b == in_topic,
    });
    if !matched {
        return Err(TestError::NotMatched(format!(
            "{in_topic:?} does not match the rule's FROM"
        )));
    }
    let result = if event_type == "message_publish" {
        let payload = get_str(&ctx, "payload", "{\"msg\": \"hello\"}");
        let pub_props = match ctx.get("pub_props") {
            Some(Value::Map(m)) => m.clone(),
            _ => Map::new(),
        };
        let qos = get_int(&ctx, "qos", 1)?;
        let input = MessageInput {
            id: &get_str(&ctx, "id", "0005F8F84FFFAFB9F44200000D810002"),
            clientid: &get_str(&ctx, "clientid", "c_emqx"),
            username: Some(&get_str(&ctx, "username", "u_emqx")),
            payload: payload.as_bytes(),
            peerhost: &get_str(&ctx, "peerhost", "127.0.0.1"),
            peername: get_str(&ctx, "peername", "127.0.0.1:52918").parse().ok(),
            topic: &topic,
            qos: u8::try_from(qos)
                .ok()
                .filter(|q| *q <= 2)
                .ok_or(TestError::Context("qos must be 0, 1 or 2".into()))?,
            retain: matches!(ctx.get("retain"), Some(Value::Bool(true))),
            dup: false,
            pub_props,
            timestamp: get_int(&ctx, "timestamp", now_ms())?,
            node: &get_str(&ctx, "node", "ferry@127.0.0.1"),
        };
        rule.apply(&input)
    } else {
        let ev = Event::from_name(&event_type)
            .ok_or_else(|| TestError::Context(format!("unknown event_type {event_type:?}")))?;
        let mut columns = ctx.clone();
        columns.shift_remove("event_type");
        columns.shift_remove("event_topic");
        columns.insert("event".into(), Value::from(ev.event_field()));
        for (k, v) in [
            ("clientid", "c_emqx"),
            ("username", "u_emqx"),
            ("node", "ferry@127.0.0.1"),
        ] {
            columns
                .entry(k.to_owned())
                .or_insert_with(|| Value::from(v));
        }
        columns
            .entry("timestamp".to_owned())
            .or_insert_with(|| Value::Int(now_ms()));
        rule.apply(&MapInput { columns })
    };
    match result {
        Ok(outs) => Ok(outs),
        Err(RuleError::NoResult) => Ok(Vec::new()),
        Err(e) => Err(TestError::Rule(e)),
    }
}
