//! `SELECT *` without building its output: `Bindings::Star` renders every template as the
//! built output does, and `Rule::check_star` decides WHERE (and counts non-JSON payloads)
//! as `Rule::apply_reporting` does.
#![allow(clippy::unwrap_used)]

use ferry_rules::{Bindings, Map, MessageInput, Report, Rule, Template, Value};

fn input(payload: &[u8]) -> MessageInput<'_> {
    let mut pub_props = Map::new();
    pub_props.insert(
        "User-Property".into(),
        Value::Map(Map::from_iter([("k".to_owned(), Value::from("v"))])),
    );
    MessageInput {
        id: "0005F8F84FFFAFB9F44200000D810002",
        clientid: "dev-1",
        username: Some("u"),
        payload,
        peerhost: "127.0.0.1",
        peername: "127.0.0.1:52918".parse().ok(),
        topic: "t/1",
        qos: 1,
        retain: false,
        dup: true,
        pub_props,
        timestamp: 1_700_000_000_123,
        node: "n",
    }
}

#[test]
fn star_bindings_render_every_template_as_the_built_output() {
    let rule = Rule::compile("SELECT * FROM \"t/#\"").unwrap();
    assert!(rule.is_select_star());
    for payload in [
        &br#"{"temp": 21.5, "a": {"b": [1, 2]}}"#[..],
        b"not json",
        b"",
    ] {
        let input = input(payload);
        let out = rule.apply(&input).unwrap().remove(0);
        for src in [
            "k1",
            "${clientid}",
            "${payload}",
            "${payload.temp}",
            "${payload.a.b[2]}",
            "${payload.nope}",
            "${timestamp}",
            "${id}-${peerhost}-${qos}",
            "${flags.dup}",
            "${headers.properties}",
            "${pub_props}",
            "${nope}",
            "${.}",
            "t-${topic}/${username}",
        ] {
            let t = Template::parse(src).unwrap();
            let star = Bindings::Star(&input);
            assert_eq!(t.render_value_in(star), t.render_value(&out), "{src}");
            assert_eq!(t.render_in(star), t.render(&out), "{src}");
            assert_eq!(
                t.render_strict_in(star),
                t.render_strict(&out, Some(&input)),
                "{src}"
            );
            assert_eq!(
                t.render_value_in(star.output_only()),
                t.render_value_with(&out, None),
                "{src}"
            );
        }
    }
}

#[test]
fn check_star_decides_where_as_the_full_evaluation() {
    for sql in [
        "SELECT * FROM \"t/#\"",
        "SELECT * FROM \"t/#\" WHERE payload.temp > 20",
        "SELECT * FROM \"t/#\" WHERE payload.temp < 20",
        "SELECT * FROM \"t/#\" WHERE clientid = 'dev-1' and qos = 1",
        "SELECT * FROM \"t/#\" WHERE payload.x = 1 or flags.dup",
        "SELECT * FROM \"t/#\" WHERE nth(1, payload) = 1",
    ] {
        let rule = Rule::compile(sql).unwrap();
        assert!(rule.is_select_star(), "{sql}");
        for payload in [&br#"{"temp": 21.5}"#[..], b"not json"] {
            let input = input(payload);
            let (mut full, mut star) = (Report::default(), Report::default());
            let expected = rule.apply_reporting(&input, &mut full);
            let got = rule.check_star(&input, &mut star);
            match (&expected, &got) {
                (Ok(_), Ok(())) => {}
                (Err(a), Err(b)) => assert_eq!(a, b, "{sql}"),
                _ => panic!("{sql}: {expected:?} vs {got:?}"),
            }
            assert_eq!(full, star, "{sql}");
        }
    }
    for sql in [
        "SELECT *, 1 as x FROM \"t/#\"",
        "SELECT clientid FROM \"t/#\"",
        "FOREACH payload.l FROM \"t/#\"",
    ] {
        assert!(!Rule::compile(sql).unwrap().is_select_star(), "{sql}");
    }
}
