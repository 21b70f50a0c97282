//! Templates and rule sets.
#![allow(clippy::unwrap_used)]

use ferry_rules::{Map, MessageInput, Rule, RuleSet, Template, Value};

fn output() -> Map {
    let rule = Rule::compile(
        "SELECT clientid, payload.temp as temp, payload.hum as hum, pub_props FROM \"t/#\"",
    )
    .unwrap();
    let mut pub_props = Map::new();
    pub_props.insert(
        "User-Property".into(),
        Value::Map(Map::from_iter([("k".to_owned(), Value::from("v"))])),
    );
    let input = MessageInput {
        id: "1",
        clientid: "dev-1",
        username: None,
        payload: br#"{"temp": 21.5, "hum": 40}"#,
        peerhost: "127.0.0.1",
        peername: "127.0.0.1:52918".parse().ok(),
        topic: "t/1",
        qos: 1,
        retain: false,
        dup: false,
        pub_props,
        timestamp: 1,
        node: "n",
    };
    rule.apply(&input).unwrap().remove(0)
}

#[test]
fn renders_paths_literals_and_the_whole_output() {
    let out = output();
    assert_eq!(
        Template::parse("{\"temp\": ${temp}, \"hum\": ${hum}}")
            .unwrap()
            .render(&out),
        "{\"temp\": 21.5, \"hum\": 40}"
    );
    assert_eq!(
        Template::parse("${clientid}").unwrap().render(&out),
        "dev-1"
    );
    assert_eq!(
        Template::parse("t-${clientid}-x").unwrap().render(&out),
        "t-dev-1-x"
    );
    let whole = Template::parse("${.}").unwrap().render(&out);
    assert!(
        whole.starts_with("{\"clientid\":\"dev-1\",\"temp\":21.5"),
        "{whole}"
    );
    assert_eq!(
        Template::parse("${pub_props.'User-Property'.k}")
            .unwrap()
            .render(&out),
        "v"
    );
    assert_eq!(
        Template::parse("no placeholders").unwrap().render(&out),
        "no placeholders"
    );
}

#[test]
fn missing_values_render_as_undefined_like_emqx() {
    // emqx_rule_actions:republish: "rendering missing bindings as string \"undefined\"".
    let out = output();
    assert_eq!(
        Template::parse("k-${nope}").unwrap().render(&out),
        "k-undefined"
    );
    assert_eq!(
        Template::parse("{\"x\": ${nope}}").unwrap().render(&out),
        "{\"x\": undefined}"
    );
    assert_eq!(
        Template::parse("${nope}").unwrap().render_value(&out),
        Value::Null,
        "a single placeholder keeps the value (an action decides what a missing one means)"
    );
}

#[test]
fn single_placeholder_renders_to_a_value() {
    let out = output();
    let t = Template::parse("${pub_props}").unwrap();
    assert!(t.is_single_placeholder());
    assert!(matches!(t.render_value(&out), Value::Map(_)));
    assert_eq!(
        Template::parse("x${temp}").unwrap().render_value(&out),
        Value::from("x21.5")
    );
}

#[test]
fn bad_templates_are_refused_with_a_position() {
    assert_eq!(
        Template::parse("a ${oops").unwrap_err().to_string(),
        "line 1, column 3: expected '}', found an unclosed '${'"
    );
    assert_eq!(
        Template::parse("${1 + 2}").unwrap_err().to_string(),
        "line 1, column 3: expected a field path such as payload.x, found \"1 + 2\""
    );
}

#[test]
fn rule_set_matches_topics_through_the_trie_and_events() {
    let mut set = RuleSet::new();
    for i in 0..10_000 {
        set.add(
            Rule::compile(&format!("SELECT * FROM \"site/{i}/#\"")).unwrap(),
            i,
        );
    }
    set.add(
        Rule::compile("SELECT * FROM \"site/+/temp\", \"$events/client_connected\"").unwrap(),
        10_000,
    );
    let hits: Vec<i32> = set
        .for_topic("site/42/temp")
        .into_iter()
        .map(|(_, d)| *d)
        .collect();
    assert_eq!(hits, vec![42, 10_000]);
    assert!(set.for_topic("other").is_empty());
    assert!(set.wants_event(ferry_rules::Event::ClientConnected));
    assert!(!set.wants_event(ferry_rules::Event::MessageAcked));
    assert_eq!(
        set.for_event(ferry_rules::Event::ClientConnected).count(),
        1
    );
}
