//! Rule SQL as EMQX documents it: the seed rules and EMQX documentation examples (SELECT,
//! FOREACH/DO/INCASE, CASE, events, paths), plus the errors bad SQL gets.
#![allow(clippy::unwrap_used)]

use ferry_rules::{CompileError, Rule, test_rule};
use serde_json::{Value as J, json};

fn run(sql: &str, ctx: J) -> Vec<J> {
    test_rule(sql, &ctx.to_string())
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .map(|m| serde_json::from_str(&ferry_rules::Value::Map(m).to_json()).unwrap())
        .collect()
}

fn one(sql: &str, ctx: J) -> J {
    let mut outs = run(sql, ctx);
    assert_eq!(outs.len(), 1, "{sql}: {outs:?}");
    outs.remove(0)
}

fn msg(topic: &str, payload: J) -> J {
    json!({"topic": topic, "clientid": "c_emqx", "username": "u_emqx", "payload": payload.to_string(), "qos": 1, "timestamp": 1700000000000i64})
}

const TESLA: &str = r#"{"vin":"EDF226K7LZTZ51222","speed":39,"odometer":68234,"soc":87,"location":{"latitude":"83.3494","longitude":"141.9851"},"timestamp":1681704127537}"#;

#[test]
fn seed_vehicle_rule_selects_the_raw_payload() {
    let out = one(
        "SELECT\n  payload\nFROM\n  \"mqttx/simulate/#\"",
        json!({"topic": "mqttx/simulate/tesla/mqttx_063105a2", "payload": TESLA}),
    );
    assert_eq!(out, json!({"payload": TESLA}));
}

#[test]
fn seed_temp_hum_rule() {
    let out = one(
        "SELECT timestamp, clientid, payload.temp as temp, payload.hum as hum FROM \"temp_hum/emqx\"",
        msg("temp_hum/emqx", json!({"temp": 23.5, "hum": 60})),
    );
    assert_eq!(
        out,
        json!({"timestamp": 1700000000000i64, "clientid": "c_emqx", "temp": 23.5, "hum": 60})
    );
}

#[test]
fn select_star_gives_every_message_column() {
    let out = one("SELECT * FROM \"t/a\"", msg("t/a", json!({"x": 1})));
    for k in [
        "id",
        "clientid",
        "username",
        "payload",
        "peerhost",
        "topic",
        "qos",
        "flags",
        "pub_props",
        "timestamp",
        "publish_received_at",
        "node",
        "event",
        "peername",
        "client_attrs",
    ] {
        assert!(out.get(k).is_some(), "missing {k} in {out}");
    }
    assert_eq!(out["payload"], json!("{\"x\":1}"));
    assert_eq!(out["flags"], json!({"retain": false, "dup": false}));
    assert_eq!(out["event"], json!("message.publish"));
    assert_eq!(out["client_attrs"], json!({}));
}

#[test]
fn paths_without_alias_nest_like_emqx() {
    assert_eq!(
        one("SELECT payload.x FROM \"t/#\"", msg("t/1", json!({"x": 1}))),
        json!({"payload": {"x": 1}})
    );
    assert_eq!(
        one(
            "SELECT payload.x.y, clientid FROM \"t/#\"",
            msg("t/1", json!({"x": {"y": 2}}))
        ),
        json!({"payload": {"x": {"y": 2}}, "clientid": "c_emqx"})
    );
}

#[test]
fn aliases_are_visible_to_where_and_later_fields() {
    let sql = "SELECT payload.x as x, x + 1 as y FROM \"t/#\" WHERE x = 1";
    assert_eq!(
        one(sql, msg("t/1", json!({"x": 1}))),
        json!({"x": 1, "y": 2})
    );
    assert!(run(sql, msg("t/1", json!({"x": 2}))).is_empty());
}

#[test]
fn where_with_logic_and_comparisons() {
    let sql =
        "SELECT clientid FROM \"t/#\" WHERE payload.x > 1 and payload.y <= 2 or not payload.z";
    assert_eq!(
        run(sql, msg("t/1", json!({"x": 2, "y": 2, "z": true}))).len(),
        1
    );
    assert_eq!(
        run(sql, msg("t/1", json!({"x": 0, "y": 2, "z": true}))).len(),
        0
    );
    assert_eq!(run(sql, msg("t/1", json!({"x": 0, "z": false}))).len(), 1);
    assert_eq!(
        run(
            "SELECT 1 as a FROM \"t/#\" WHERE username = 'u_emqx'",
            msg("t/1", json!({}))
        )
        .len(),
        1
    );
    assert_eq!(
        run(
            "SELECT 1 as a FROM \"t/#\" WHERE payload.x = '1'",
            msg("t/1", json!({"x": 1}))
        )
        .len(),
        1,
        "number equals numeric string"
    );
    assert_eq!(
        run(
            "SELECT 1 as a FROM \"t/#\" WHERE payload.x <> 1",
            msg("t/1", json!({"x": 1}))
        )
        .len(),
        0
    );
    assert_eq!(
        run(
            "SELECT 1 as a FROM \"t/#\" WHERE qos >= 1",
            msg("t/1", json!({}))
        )
        .len(),
        1
    );
}

#[test]
fn topic_match_operator() {
    let sql = "SELECT topic FROM \"t/#\" WHERE topic =~ 't/+/a'";
    assert_eq!(run(sql, msg("t/x/a", json!({}))).len(), 1);
    assert_eq!(run(sql, msg("t/x/b", json!({}))).len(), 0);
}

#[test]
fn arithmetic_and_concatenation() {
    let out = one(
        "SELECT 10 div 3 as d, 10 mod 3 as m, 10 / 4 as f, 2 + 3 * 4 as p, (2 + 3) * 4 as q, -payload.x as n, 'a' + 'b' as s, 'n=' + 1 as t FROM \"t/#\"",
        msg("t/1", json!({"x": 5})),
    );
    assert_eq!(
        out,
        json!({"d": 3, "m": 1, "f": 2.5, "p": 14, "q": 20, "n": -5, "s": "ab", "t": "n=1"})
    );
}

#[test]
fn array_indexes_ranges_and_quoted_keys() {
    let p = json!({"arr": [1, 2, 3, 4], "a-b": "dash", "msgs": [{"id": 7}]});
    let out = one(
        "SELECT payload.arr[1] as first, payload.arr[-1] as last, payload.arr[2..3] as mid, payload.'a-b' as ab, payload.msgs[1].id as id, payload.arr[9] as none FROM \"t/#\"",
        msg("t/1", p),
    );
    assert_eq!(
        out,
        json!({"first": 1, "last": 4, "mid": [2, 3], "ab": "dash", "id": 7, "none": null})
    );
}

#[test]
fn user_properties_by_quoted_key() {
    let mut ctx = msg("t/1", json!({}));
    ctx["pub_props"] = json!({"User-Property": {"foo": "bar"}});
    assert_eq!(
        one(
            "SELECT pub_props.'User-Property'.foo as foo FROM \"t/#\"",
            ctx
        ),
        json!({"foo": "bar"})
    );
}

#[test]
fn nested_alias_paths() {
    assert_eq!(
        one(
            "SELECT payload.x as out.a.b, clientid as out.c FROM \"t/#\"",
            msg("t/1", json!({"x": 1}))
        ),
        json!({"out": {"a": {"b": 1}, "c": "c_emqx"}})
    );
}

#[test]
fn literals() {
    assert_eq!(
        one(
            "SELECT [1, 'a', true, null] as arr, {'k': 1, v: 'x'} as obj, 1.5e3 as f FROM \"t/#\"",
            msg("t/1", json!({}))
        ),
        json!({"arr": [1, "a", true, null], "obj": {"k": 1, "v": "x"}, "f": 1500.0})
    );
}

#[test]
fn case_expressions() {
    let sql = "SELECT CASE WHEN payload.x < 0 THEN 0 WHEN payload.x > 7 THEN 7 ELSE payload.x END as x FROM \"t/#\"";
    assert_eq!(one(sql, msg("t/1", json!({"x": -3}))), json!({"x": 0}));
    assert_eq!(one(sql, msg("t/1", json!({"x": 9}))), json!({"x": 7}));
    assert_eq!(one(sql, msg("t/1", json!({"x": 5}))), json!({"x": 5}));
    let simple = "SELECT CASE payload.s WHEN 1 THEN 'one' WHEN 2 THEN 'two' ELSE 'other' END as s FROM \"t/#\"";
    assert_eq!(
        one(simple, msg("t/1", json!({"s": 2}))),
        json!({"s": "two"})
    );
    assert_eq!(
        one(simple, msg("t/1", json!({"s": 5}))),
        json!({"s": "other"})
    );
    assert_eq!(
        one(
            "SELECT CASE WHEN false THEN 1 END as n FROM \"t/#\"",
            msg("t/1", json!({}))
        ),
        json!({"n": null})
    );
}

fn sensors() -> J {
    msg(
        "t/1",
        json!({"date": "2020-04-24", "sensors": [{"name": "a", "idx": 0}, {"name": "b", "idx": 1}, {"name": "c", "idx": 2}]}),
    )
}

#[test]
fn foreach_without_do_outputs_each_element() {
    let outs = run("FOREACH payload.sensors FROM \"t/#\"", sensors());
    assert_eq!(
        outs,
        vec![
            json!({"name": "a", "idx": 0}),
            json!({"name": "b", "idx": 1}),
            json!({"name": "c", "idx": 2})
        ]
    );
}

#[test]
fn foreach_do_incase() {
    let outs = run(
        "FOREACH payload.sensors as s DO clientid, s.name as name, s.idx as idx INCASE s.idx >= 1 FROM \"t/#\"",
        sensors(),
    );
    assert_eq!(
        outs,
        vec![
            json!({"clientid": "c_emqx", "name": "b", "idx": 1}),
            json!({"clientid": "c_emqx", "name": "c", "idx": 2})
        ]
    );
}

#[test]
fn foreach_default_item_name_and_where() {
    let outs = run(
        "FOREACH payload.sensors DO item.name as name FROM \"t/#\" WHERE payload.date = '2020-04-24'",
        sensors(),
    );
    assert_eq!(outs.len(), 3);
    assert_eq!(outs[2], json!({"name": "c"}));
    assert!(
        run(
            "FOREACH payload.sensors FROM \"t/#\" WHERE payload.date = 'other'",
            sensors()
        )
        .is_empty()
    );
    assert!(
        run(
            "FOREACH payload.sensors as s INCASE s.idx > 5 FROM \"t/#\"",
            sensors()
        )
        .is_empty()
    );
}

#[test]
fn foreach_over_a_literal_array_and_functions() {
    let outs = run(
        "FOREACH split(payload.csv, ',') as v DO upper(v) as v FROM \"t/#\"",
        msg("t/1", json!({"csv": "a,b"})),
    );
    assert_eq!(outs, vec![json!({"v": "A"}), json!({"v": "B"})]);
}

#[test]
fn non_json_payload_paths_are_null() {
    let ctx = json!({"topic": "t/1", "payload": "not json"});
    assert_eq!(
        one("SELECT payload.x as x, payload as raw FROM \"t/#\"", ctx),
        json!({"x": null, "raw": "not json"})
    );
}

#[test]
fn functions_in_select() {
    let out = one(
        "SELECT json_decode(payload) as p, upper(clientid) as c, nth(1, payload.arr) as n FROM \"t/#\"",
        msg("t/1", json!({"arr": [5]})),
    );
    assert_eq!(out, json!({"p": {"arr": [5]}, "c": "C_EMQX", "n": 5}));
}

#[test]
fn flags_and_qos() {
    let mut ctx = msg("t/1", json!({}));
    ctx["retain"] = json!(true);
    assert_eq!(
        one("SELECT flags.retain as r, qos FROM \"t/#\"", ctx),
        json!({"r": true, "qos": 1})
    );
}

#[test]
fn several_from_topics() {
    let sql = "SELECT topic FROM \"a/#\", \"b/#\"";
    assert_eq!(run(sql, msg("b/1", json!({}))).len(), 1);
    assert!(
        test_rule(sql, &msg("c/1", json!({})).to_string()).is_err(),
        "topic outside FROM"
    );
}

#[test]
fn client_connected_event() {
    let ctx = json!({"event_type": "client_connected", "clientid": "c1", "username": "emqx", "peername": "127.0.0.1:5000", "proto_ver": 5, "connected_at": 1700000000000i64});
    let out = one(
        "SELECT clientid, connected_at, event FROM \"$events/client_connected\" WHERE username = 'emqx'",
        ctx,
    );
    assert_eq!(
        out,
        json!({"clientid": "c1", "connected_at": 1700000000000i64, "event": "client.connected"})
    );
}

#[test]
fn client_disconnected_event() {
    let ctx = json!({"event_type": "client_disconnected", "clientid": "c1", "reason": "normal"});
    assert_eq!(
        one(
            "SELECT clientid, reason FROM \"$events/client_disconnected\"",
            ctx
        ),
        json!({"clientid": "c1", "reason": "normal"})
    );
}

#[test]
fn session_events() {
    let ctx =
        json!({"event_type": "session_subscribed", "clientid": "c1", "topic": "t/1", "qos": 1});
    assert_eq!(
        one(
            "SELECT clientid, topic, qos FROM \"$events/session_subscribed\" WHERE topic = 't/1'",
            ctx
        ),
        json!({"clientid": "c1", "topic": "t/1", "qos": 1})
    );
    let ctx = json!({"event_type": "session_unsubscribed", "clientid": "c1", "topic": "t/1"});
    assert_eq!(
        one("SELECT topic FROM \"$events/session_unsubscribed\"", ctx),
        json!({"topic": "t/1"})
    );
}

#[test]
fn message_events() {
    let ctx = json!({"event_type": "message_delivered", "from_clientid": "p", "clientid": "s", "topic": "t/1", "payload": "{\"x\": 3}"});
    assert_eq!(
        one(
            "SELECT from_clientid, clientid, payload.x as x FROM \"$events/message_delivered\"",
            ctx
        ),
        json!({"from_clientid": "p", "clientid": "s", "x": 3})
    );
    let ctx = json!({"event_type": "message_acked", "clientid": "s", "topic": "t/1"});
    assert_eq!(
        one("SELECT clientid FROM \"$events/message_acked\"", ctx),
        json!({"clientid": "s"})
    );
    let ctx = json!({"event_type": "message_dropped", "reason": "no_subscribers", "topic": "t/1"});
    assert_eq!(
        one("SELECT reason FROM \"$events/message_dropped\"", ctx),
        json!({"reason": "no_subscribers"})
    );
}

#[test]
fn rule_listening_to_topics_and_events() {
    let sql = "SELECT clientid FROM \"t/#\", \"$events/client_connected\"";
    assert_eq!(run(sql, msg("t/1", json!({}))).len(), 1);
    assert_eq!(
        run(
            sql,
            json!({"event_type": "client_connected", "clientid": "x"})
        )
        .len(),
        1
    );
}

#[test]
fn keywords_are_case_insensitive_and_comments_allowed() {
    let out = one(
        "select payload.x AS x -- the x\nfrom \"t/#\" where x > 0 AND true",
        msg("t/1", json!({"x": 1})),
    );
    assert_eq!(out, json!({"x": 1}));
}

fn err(sql: &str) -> CompileError {
    Rule::compile(sql).expect_err(sql)
}

#[test]
fn syntax_errors_name_line_column_found_and_expected() {
    assert_eq!(
        err("SELECT FROM \"t\"").to_string(),
        "line 1, column 8: expected an expression, found 'FROM'"
    );
    assert_eq!(
        err("SELECT a,\n  b +\nFROM \"t\"").to_string(),
        "line 3, column 1: expected an expression, found 'FROM'"
    );
    assert_eq!(
        err("SELECT a \"t\"").to_string(),
        "line 1, column 10: expected FROM, found string \"t\""
    );
    assert_eq!(
        err("SELECT a FROM t").to_string(),
        "line 1, column 15: expected a topic in double quotes, found 't'"
    );
    assert_eq!(
        err("SELECT 'abc FROM \"t\"").to_string(),
        "line 1, column 8: expected a closing ', found an unterminated string"
    );
    assert_eq!(
        err("SELECT a FROM \"t\" WHERE").to_string(),
        "line 1, column 24: expected an expression, found end of input"
    );
    assert_eq!(
        err("SELECT (a FROM \"t\"").to_string(),
        "line 1, column 11: expected ')', found 'FROM'"
    );
    assert_eq!(
        err("UPDATE x").to_string(),
        "line 1, column 1: expected SELECT or FOREACH, found 'UPDATE'"
    );
    assert_eq!(
        err("SELECT a FROM \"t\" extra").to_string(),
        "line 1, column 19: expected end of input, found 'extra'"
    );
    assert_eq!(
        err("SELECT a # b FROM \"t\"").to_string(),
        "line 1, column 10: expected an expression, operator or keyword, found '#'"
    );
}

#[test]
fn load_time_errors() {
    assert_eq!(
        err("SELECT nosuch(1) FROM \"t\"").to_string(),
        "line 1, column 8: unknown function nosuch()"
    );
    assert_eq!(
        err("SELECT abs(1, 2) FROM \"t\"").to_string(),
        "line 1, column 8: abs() takes 1 arguments, got 2"
    );
    assert_eq!(
        err("SELECT sprintf() FROM \"t\"").to_string(),
        "line 1, column 8: sprintf() takes at least 1 arguments, got 0"
    );
    assert!(
        err("SELECT a FROM \"$events/nope\"")
            .to_string()
            .starts_with("unknown event topic \"$events/nope\"")
    );
    assert_eq!(
        err("SELECT a FROM \"a/#/b\"").to_string(),
        "invalid topic filter \"a/#/b\" in FROM: '#' must be the last level and stand alone"
    );
}

#[test]
fn runtime_errors_are_reported_not_panics() {
    let e = test_rule(
        "SELECT 1 / payload.x as r FROM \"t/#\"",
        &msg("t/1", json!({"x": 0})).to_string(),
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "exception: division by zero");
    let e = test_rule(
        // EMQX reads the string as a number (binary_to_integer/float), which fails.
        "SELECT payload.x > 'a' as r FROM \"t/#\"",
        &msg("t/1", json!({"x": 1})).to_string(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("cannot compare"), "{e}");
}

#[test]
fn comparisons_with_missing_values_are_false() {
    assert!(
        run(
            "SELECT 1 as a FROM \"t/#\" WHERE payload.nope > 1",
            msg("t/1", json!({}))
        )
        .is_empty()
    );
    assert!(
        run(
            "SELECT 1 as a FROM \"t/#\" WHERE payload.nope <= 1",
            msg("t/1", json!({}))
        )
        .is_empty()
    );
    assert_eq!(
        run(
            "SELECT 1 as a FROM \"t/#\" WHERE payload.nope = null",
            msg("t/1", json!({}))
        )
        .len(),
        1
    );
}
