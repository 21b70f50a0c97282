//! Operators as EMQX's rule engine evaluates them: `div` and `mod` (infix and as functions,
//! Erlang's `div`/`rem` for negative operands), `IN (...)` / `NOT IN (...)` in WHERE, CASE,
//! FOREACH ... INCASE and SELECT. Expected values come from EMQX's `emqx_rule_engine_SUITE`
//! and from Erlang's own semantics, which EMQX's `'div'/2` and `mod/2` call directly.
#![allow(clippy::unwrap_used)]

use ferry_rules::test_rule;
use serde_json::{Value as J, json};

fn run(sql: &str, ctx: J) -> Result<Vec<J>, String> {
    test_rule(sql, &ctx.to_string())
        .map_err(|e| e.to_string())
        .map(|outs| {
            outs.into_iter()
                .map(|m| serde_json::from_str(&ferry_rules::Value::Map(m).to_json()).unwrap())
                .collect()
        })
}

fn one(sql: &str, ctx: J) -> J {
    let mut outs = run(sql, ctx).unwrap_or_else(|e| panic!("{sql}: {e}"));
    assert_eq!(outs.len(), 1, "{sql}: {outs:?}");
    outs.remove(0)
}

fn msg(payload: J) -> J {
    json!({"topic": "t/a", "payload": payload.to_string()})
}

#[test]
fn div_and_mod_are_infix_operators_and_functions() {
    // EMQX t_sqlselect_002
    let out = one(
        "select 2 mod 2   as mod1,\n mod(3, 2) as mod2,\n 4 div 2   as div1,\n div(7, 2) as div2\n from \"t/#\"",
        msg(json!({"what": 4})),
    );
    assert_eq!(out, json!({"mod1": 0, "mod2": 1, "div1": 2, "div2": 3}));
}

#[test]
fn div_truncates_and_mod_follows_the_dividend_for_negative_operands() {
    // Erlang: -7 div 2 = -3, 7 div -2 = -3, -7 rem 2 = -1, 7 rem -2 = 1.
    let out = one(
        "SELECT -7 div 2 as a, 7 div -2 as b, -7 mod 2 as c, 7 mod -2 as d, -7 mod -2 as e, payload.n div 4 as f, payload.n mod 4 as g FROM \"t/#\"",
        msg(json!({"n": -9})),
    );
    assert_eq!(
        out,
        json!({"a": -3, "b": -3, "c": -1, "d": 1, "e": -1, "f": -2, "g": -1})
    );
}

#[test]
fn div_and_mod_stand_wherever_an_expression_may() {
    // In WHERE, CASE, function arguments, FOREACH INCASE, and mixed with other operators.
    let sql = "SELECT CASE WHEN payload.n mod 2 = 0 THEN 'even' ELSE 'odd' END as parity, abs(payload.n div 2) as half, 1 + payload.n mod 3 * 2 as p FROM \"t/#\" WHERE payload.n mod 5 = 0";
    assert_eq!(
        one(sql, msg(json!({"n": -10}))),
        json!({"parity": "even", "half": 5, "p": -1})
    );
    assert!(run(sql, msg(json!({"n": 7}))).unwrap().is_empty());
    let outs = run(
        "FOREACH payload.xs as x DO x div 2 as h INCASE x mod 2 = 1 FROM \"t/#\"",
        msg(json!({"xs": [1, 2, 3, -5]})),
    )
    .unwrap();
    assert_eq!(
        outs,
        // -5 mod 2 is -1 (rem), so -5 is left out.
        vec![json!({"h": 0}), json!({"h": 1})]
    );
}

#[test]
fn div_and_mod_need_integers_and_a_nonzero_divisor() {
    for expr in ["7.5 div 2", "7 mod 2.0", "'7' div 2", "1 mod 0", "1 div 0"] {
        let e = run(&format!("SELECT {expr} as r FROM \"t/#\""), msg(json!({}))).expect_err(expr);
        assert!(e.starts_with("exception"), "{expr}: {e}");
    }
}

#[test]
fn in_and_not_in_lists_in_where() {
    let sql = "SELECT payload.c as c FROM \"t/#\" WHERE payload.c IN ('red', 'green', 1)";
    assert_eq!(run(sql, msg(json!({"c": "red"}))).unwrap().len(), 1);
    assert_eq!(run(sql, msg(json!({"c": 1}))).unwrap().len(), 1);
    assert!(run(sql, msg(json!({"c": "blue"}))).unwrap().is_empty());
    assert!(run(sql, msg(json!({}))).unwrap().is_empty(), "missing");
    let sql = "SELECT payload.c as c FROM \"t/#\" WHERE payload.c NOT IN ('red', 'green') and clientid not in ('x')";
    assert!(run(sql, msg(json!({"c": "red"}))).unwrap().is_empty());
    assert_eq!(run(sql, msg(json!({"c": "blue"}))).unwrap().len(), 1);
}

#[test]
fn in_uses_exact_equality_like_lists_member() {
    // EMQX: match_conditions({in, Var, {list, Vals}}) is lists:member, i.e. =:=.
    let out = one(
        "SELECT 1 in (1.0) as a, '1' in (1) as b, 1 in (2, 1) as c, payload.o in ([1], {'k': 2}) as d, payload.x in (payload.y, 3) as e FROM \"t/#\"",
        msg(json!({"o": {"k": 2}, "x": 5, "y": 5})),
    );
    assert_eq!(
        out,
        json!({"a": false, "b": false, "c": true, "d": true, "e": true})
    );
}

#[test]
fn in_lists_in_case_and_incase() {
    let sql = "SELECT CASE WHEN payload.s IN ('a', 'b') THEN 'ab' WHEN payload.s NOT IN ('z') THEN 'other' ELSE 'z' END as k FROM \"t/#\"";
    assert_eq!(one(sql, msg(json!({"s": "b"}))), json!({"k": "ab"}));
    assert_eq!(one(sql, msg(json!({"s": "q"}))), json!({"k": "other"}));
    assert_eq!(one(sql, msg(json!({"s": "z"}))), json!({"k": "z"}));
    let outs = run(
        "FOREACH payload.sensors as s DO s.id as id INCASE s.kind IN ('temp', 'hum') FROM \"t/#\"",
        msg(json!({"sensors": [{"id": 1, "kind": "temp"}, {"id": 2, "kind": "co2"}, {"id": 3, "kind": "hum"}]})),
    )
    .unwrap();
    assert_eq!(outs, vec![json!({"id": 1}), json!({"id": 3})]);
    let outs = run(
        "FOREACH payload.xs as x INCASE x NOT IN (2) FROM \"t/#\"",
        msg(json!({"xs": [1, 2, 3]})),
    )
    .unwrap();
    assert_eq!(outs, vec![json!({"x": 1}), json!({"x": 3})]);
}

#[test]
fn in_binds_tighter_than_and_and_not() {
    let out = one(
        "SELECT not 1 in (2) as a, 1 in (1) and 2 in (3) as b, 1 + 1 in (2) as c FROM \"t/#\"",
        msg(json!({})),
    );
    assert_eq!(out, json!({"a": true, "b": false, "c": true}));
}

#[test]
fn integer_overflow_is_an_error_not_a_wrap() {
    for expr in [
        "9223372036854775807 + 1",
        "-9223372036854775807 - 2",
        "4611686018427387904 * 2",
        "(-9223372036854775807 - 1) div -1",
    ] {
        let e = run(&format!("SELECT {expr} as r FROM \"t/#\""), msg(json!({}))).expect_err(expr);
        assert!(e.contains("overflow"), "{expr}: {e}");
    }
}
