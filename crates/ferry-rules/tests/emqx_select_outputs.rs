//! SELECT outputs shaped as EMQX shapes them (`emqx_rule_maps:nested_put`): unaliased paths
//! keep their nesting, aliases may be paths into a selected object (a selected raw payload
//! is decoded for it), and index aliases: `[0]` prepends, `[-0]` appends, `[N]` sets.
//! Cases from EMQX's `emqx_rule_engine_SUITE` (t_sqlselect_as_put, t_sqlparse_payload_as,
//! t_sqlparse_array_index_1 to _4, t_sqlparse_array_range_1).
#![allow(clippy::unwrap_used)]

use ferry_rules::test_rule;
use serde_json::{Value as J, json};

fn one(sql: &str, payload: &str) -> J {
    let ctx = json!({"topic": "t/a", "payload": payload});
    let mut outs = test_rule(sql, &ctx.to_string()).unwrap_or_else(|e| panic!("{sql}: {e}"));
    assert_eq!(outs.len(), 1);
    serde_json::from_str(&ferry_rules::Value::Map(outs.remove(0)).to_json()).unwrap()
}

#[test]
fn unaliased_paths_keep_their_nesting_including_indexes() {
    assert_eq!(
        one("select payload.a from \"t/#\"", r#"{"a": 1}"#),
        json!({"payload": {"a": 1}})
    );
    assert_eq!(
        one("select payload.x[2] from \"t/#\"", r#"{"x": [1, 3, 4]}"#),
        json!({"payload": {"x": [3]}})
    );
    assert_eq!(
        one(
            "select payload.x[2].y from \"t/#\"",
            r#"{"x": [1, {"y": 3}, 4]}"#
        ),
        json!({"payload": {"x": [{"y": 3}]}})
    );
    assert_eq!(
        one(
            "select payload.x[2].y as b.c from \"t/#\"",
            r#"{"x": [1,{"y": [1,2]},3]}"#
        ),
        json!({"b": {"c": [1, 2]}})
    );
}

#[test]
fn an_alias_path_updates_the_selected_payload() {
    // t_sqlselect_as_put
    let out = one(
        "select payload, 'STEVE' as payload.data[1].name from \"t/#\" ",
        r#"{"f1": "f1", "f2": "f2", "data": [{"name": "n1", "idx": 1}, {"name": "n2", "idx": 2}]}"#,
    );
    assert_eq!(
        out,
        json!({"payload": {"f1": "f1", "f2": "f2", "data": [{"name": "STEVE", "idx": 1}, {"name": "n2", "idx": 2}]}})
    );
    // t_sqlparse_payload_as (emqx/emqx#3866)
    let sql = "SELECT payload, map_get('engineWorkTime', payload.params, -1) as payload.params.engineWorkTime, map_get('hydOilTem', payload.params, -1) as payload.params.hydOilTem FROM \"t/#\" ";
    assert_eq!(
        one(
            sql,
            r#"{ "msgId": 1002, "params": { "convertTemp": 20, "engineSpeed": 42, "hydOilTem": 30 } }"#
        ),
        json!({"payload": {"msgId": 1002, "params": {"convertTemp": 20, "engineSpeed": 42, "engineWorkTime": -1, "hydOilTem": 30}}})
    );
    assert_eq!(
        one(
            sql,
            r#"{ "msgId": 1002, "params": { "convertTemp": 20, "engineSpeed": 42 } }"#
        ),
        json!({"payload": {"msgId": 1002, "params": {"convertTemp": 20, "engineSpeed": 42, "engineWorkTime": -1, "hydOilTem": -1}}})
    );
}

#[test]
fn index_aliases_set_inside_selected_and_unselected_payloads() {
    // t_sqlparse_array_index_4
    assert_eq!(
        one(
            "select 0 as payload.x[2].y from \"t/#\" ",
            r#"{"x": [1,{"y": [1,2]},3]}"#
        ),
        json!({"payload": {"x": [{"y": 0}]}})
    );
    assert_eq!(
        one(
            "select payload.x, 0 as payload.x[2].y from \"t/#\" ",
            r#"{"x": [1,{"y": [1,2]},3]}"#
        ),
        json!({"payload": {"x": [1, {"y": 0}, 3]}})
    );
    // negative indexes count from the end; out of range leaves the list alone
    assert_eq!(
        one(
            "select [1, 2, 3] as c, 9 as c[-1], 8 as c[7], 7 as c[-9] from \"t/#\"",
            "{}"
        ),
        json!({"c": [1, 2, 9]})
    );
}

#[test]
fn index_zero_prepends_and_minus_zero_appends() {
    // t_sqlparse_array_index_1
    assert_eq!(
        one(
            "select payload.x as b, 1 as c[-0], 2 as c[-0], b as c[0] from \"t/#\" ",
            r#"{"x": 0}"#
        ),
        json!({"b": 0, "c": [0, 1, 2]})
    );
    assert_eq!(
        one(
            "select [] as c, 1 as c[-0], 2 as c[-0], 0 as c[0] from \"t/#\" ",
            ""
        ),
        json!({"c": [0, 1, 2]})
    );
    assert_eq!(
        one(
            "select [payload.a, topic, 'c'] as c, 1 as c[-0], 2 as c[-0], 0 as c[0] from \"t/#\" ",
            r#"{"a":11}"#
        ),
        json!({"c": [0, 11, "t/a", "c", 1, 2]})
    );
    // t_sqlparse_array_range_1
    assert_eq!(
        one(
            "select [1, 2, 3, 4] as c, 5 as c[-0], 6 as c[-0], 0 as c[0] from \"t/#\" ",
            ""
        ),
        json!({"c": [0, 1, 2, 3, 4, 5, 6]})
    );
}

#[test]
fn index_aliases_print_and_reparse() {
    let sql = "SELECT 1 as c[0], 2 as c[-0], 3 as c[2].x, 4 as a.b[-1] FROM \"t/#\"";
    let stmt = ferry_rules::parser::parse(sql).unwrap();
    assert_eq!(stmt.to_string(), sql);
    assert_eq!(ferry_rules::parser::parse(&stmt.to_string()).unwrap(), stmt);
}
