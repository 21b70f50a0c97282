//! FOREACH as EMQX runs it (`select_and_collect`): several comma-separated `expr AS name`
//! items, each visible to the next, to WHERE, DO and INCASE; the last is iterated over; a
//! value that is not an array yields no output. Cases from EMQX's `emqx_rule_engine_SUITE`
//! (t_sqlparse_foreach_5 to _10).
#![allow(clippy::unwrap_used)]

use ferry_rules::test_rule;
use serde_json::{Value as J, json};

fn run(sql: &str, payload: &str) -> Result<Vec<J>, String> {
    let ctx = json!({"topic": "t/a", "payload": payload});
    test_rule(sql, &ctx.to_string())
        .map_err(|e| e.to_string())
        .map(|outs| {
            outs.into_iter()
                .map(|m| serde_json::from_str(&ferry_rules::Value::Map(m).to_json()).unwrap())
                .collect()
        })
}

const NESTED: &str = r#"{"sensors": {"page": 2, "collection": {"info":[{"name":"cmd1", "cmd":"1"}, {"cmd":"2"}]} } }"#;

#[test]
fn cascaded_items_with_json_decode_first_and_where_on_their_names() {
    // t_sqlparse_foreach_7
    let sql = "foreach json_decode(payload) as p, p.sensors as s, s.collection as c, c.info as info do info.cmd as msg_type, info.name as name incase is_not_null(info.cmd) from \"t/#\" where s.page = '2' ";
    assert_eq!(
        run(sql, NESTED).unwrap(),
        vec![
            json!({"msg_type": "1", "name": "cmd1"}),
            json!({"msg_type": "2", "name": null})
        ]
    );
    let sql3 = sql.replace("'2'", "'3'");
    assert!(run(&sql3, NESTED).unwrap().is_empty());
}

#[test]
fn do_may_select_the_earlier_names() {
    // t_sqlparse_foreach_8
    let payload = r#"{"sensors": {"page": 2, "collection": {"info":["haha", {"name":"cmd1", "cmd":"1"}]} } }"#;
    let coll = json!({"info": ["haha", {"name": "cmd1", "cmd": "1"}]});
    let outs = run(
        "foreach json_decode(payload) as p, p.sensors as s, s.collection as c, c.info as info do info.cmd as msg_type, info.name as name, s, c incase is_map(info) from \"t/#\" where s.page = '2' ",
        payload,
    )
    .unwrap();
    assert_eq!(
        outs,
        vec![
            json!({"msg_type": "1", "name": "cmd1", "s": {"page": 2, "collection": coll}, "c": coll})
        ]
    );
    let outs = run(
        "foreach json_decode(payload) as p, p.sensors as s, s.collection as c, sublist(2,1,c.info) as info do info.cmd as msg_type, info.name as name from \"t/#\" where s.page = '2' ",
        payload,
    )
    .unwrap();
    assert_eq!(outs, vec![json!({"msg_type": "1", "name": "cmd1"})]);
}

#[test]
fn a_non_array_or_empty_list_yields_no_output() {
    // t_sqlparse_foreach_5
    let sql = "foreach payload.sensors as s do s.cmd as msg_type, s.name as name from \"t/#\" ";
    for payload in [
        r#"{"sensors": 1}"#,
        r#"{"sensors": []}"#,
        r#"{"sensors": {"a": 1}}"#,
        r#"{"sensors": "text"}"#,
        r#"{"sensors": null}"#,
        r#"{}"#,
    ] {
        assert_eq!(run(sql, payload), Ok(vec![]), "{payload}");
    }
    assert_eq!(
        run("foreach payload.sensors from \"t/#\" ", r#"{"sensors": 1}"#),
        Ok(vec![])
    );
}

#[test]
fn foreach_over_a_decoded_or_raw_array_payload() {
    // t_sqlparse_foreach_6, _9 and _10
    let outs = run(
        "foreach json_decode(payload) do item.id as zid from \"t/#\" ",
        r#"[{"id": 5},{"id": 15}]"#,
    )
    .unwrap();
    assert_eq!(outs, vec![json!({"zid": 5}), json!({"zid": 15})]);
    let ts = r#"[{"ts": 1451649600512, "values": {"heartrate": 130}}]"#;
    for sql in [
        "foreach json_decode(payload) as p do p.ts as ts from \"t/#\" ",
        "foreach payload as p do p.ts as ts from \"t/#\" ",
    ] {
        assert_eq!(
            run(sql, ts).unwrap(),
            vec![json!({"ts": 1451649600512i64})],
            "{sql}"
        );
    }
    assert_eq!(
        run(
            "foreach payload as item do item.data as next_data from \"t/#\" ",
            r#"[{"data": "value1"}, {"data": "value2"}]"#
        )
        .unwrap(),
        vec![
            json!({"next_data": "value1"}),
            json!({"next_data": "value2"})
        ]
    );
}

#[test]
fn issue_example_data_then_sensors() {
    let payload = r#"{"data": {"sensors": [{"t": 1}, {"t": 30}]}, "site": "s1"}"#;
    let outs = run(
        "FOREACH payload.data AS d, d.sensors AS s DO s.t as t, payload.site as site INCASE s.t > 10 FROM \"t/#\" WHERE is_array(d.sensors)",
        payload,
    )
    .unwrap();
    assert_eq!(outs, vec![json!({"t": 30, "site": "s1"})]);
}

#[test]
fn foreach_with_items_prints_and_reparses() {
    let sql = "FOREACH json_decode(payload) as p, p.xs as x DO x as v FROM \"t/#\"";
    let stmt = ferry_rules::parser::parse(sql).unwrap();
    let printed = stmt.to_string();
    assert_eq!(ferry_rules::parser::parse(&printed).unwrap(), stmt);
    assert!(
        printed.starts_with("FOREACH json_decode(payload) as p, p.xs as x DO"),
        "{printed}"
    );
}
