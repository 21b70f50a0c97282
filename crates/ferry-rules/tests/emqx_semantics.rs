//! Comparison and truth as EMQX's `emqx_rule_runtime:compare/3` and `match_conditions/2`
//! define them: a missing value (`undefined`) against anything, a JSON `null`, `true` and
//! `false` against strings, numbers against numeric strings, Erlang's term order across
//! types, `NOT` of a non-boolean, arithmetic on strings, and integers beyond 64 bits.
#![allow(clippy::unwrap_used)]

use ferry_rules::test_rule;
use serde_json::{Value as J, json};

fn run(sql: &str, payload: J) -> Result<Vec<J>, String> {
    let ctx = json!({"topic": "t/a", "payload": payload.to_string()});
    test_rule(sql, &ctx.to_string())
        .map_err(|e| e.to_string())
        .map(|outs| {
            outs.into_iter()
                .map(|m| serde_json::from_str(&ferry_rules::Value::Map(m).to_json()).unwrap())
                .collect()
        })
}

/// Evaluates `expr` as a SELECT field against `payload`.
fn eval(expr: &str, payload: J) -> Result<J, String> {
    let mut outs = run(&format!("SELECT {expr} as r FROM \"t/#\""), payload)?;
    Ok(outs.remove(0)["r"].clone())
}

/// Does WHERE `cond` pass for `payload`?
fn passes(cond: &str, payload: J) -> bool {
    !run(
        &format!("SELECT 1 as one FROM \"t/#\" WHERE {cond}"),
        payload,
    )
    .unwrap_or_else(|e| panic!("{cond}: {e}"))
    .is_empty()
}

#[test]
fn json_booleans_equal_their_strings() {
    let p = json!({"t": true, "f": false});
    assert!(passes("payload.t = 'true'", p.clone()));
    assert!(passes("payload.f = 'false'", p.clone()));
    assert!(passes("payload.t = true", p.clone()));
    assert!(!passes("payload.t = 'false'", p.clone()));
    assert!(passes("payload.t != 'false'", p.clone()));
    // atoms order by name: false < null < true
    assert!(passes("payload.f < payload.t", p));
}

#[test]
fn json_null_equals_the_string_null_but_a_missing_value_does_not() {
    let p = json!({"n": null});
    assert!(passes("payload.n = 'null'", p.clone()));
    assert!(!passes("payload.missing = 'null'", p.clone()));
    // a missing value equals only another missing value
    assert!(passes("payload.missing = payload.other", p.clone()));
    assert!(!passes("payload.n = payload.missing", p.clone()));
    assert!(passes("payload.missing = null", p.clone()));
}

#[test]
fn a_missing_value_is_neither_equal_nor_unequal_to_a_present_one() {
    let p = json!({"x": 1});
    for cond in [
        "payload.nope = 1",
        "payload.nope != 1",
        "payload.nope <> 'a'",
        "payload.nope > 1",
        "payload.nope < 1",
        "1 >= payload.nope",
        "payload.nope =~ 't/#'",
    ] {
        assert!(!passes(cond, p.clone()), "{cond}");
    }
    assert!(passes("payload.nope <= payload.none", p));
}

#[test]
fn numbers_and_numeric_strings_compare_as_numbers() {
    let p = json!({"i": 10, "f": 2.5, "s": "10", "sf": "2.5"});
    assert!(passes("payload.i = '10'", p.clone()));
    assert!(passes("payload.s = 10", p.clone()));
    assert!(passes("payload.s = 10.0", p.clone()));
    assert!(passes("payload.f = '2.5'", p.clone()));
    assert!(passes("payload.sf < 3", p.clone()));
    assert!(passes("payload.i > '9'", p.clone()));
    // integers and floats compare by value (Erlang ==)
    assert!(passes("payload.i = 10.0", p.clone()));
    // two strings compare as strings: '10' < '9'
    assert!(passes("payload.s < '9'", p.clone()));
    // a string that is no number cannot be compared with a number
    let e = run("SELECT 1 as a FROM \"t/#\" WHERE payload.i = 'ten'", p).unwrap_err();
    assert!(e.starts_with("exception"), "{e}");
}

#[test]
fn different_types_compare_in_erlang_term_order() {
    // number < atom < map < list < binary
    assert_eq!(
        eval(
            "[1 < true, true < {'a': 1}, {'a': 1} < [1], [1] < 'a', [1, 2] > [1], {'a': 1} = {'a': 1.0}]",
            json!({})
        )
        .unwrap(),
        json!([true, true, true, true, true, true])
    );
}

#[test]
fn not_of_a_non_boolean_is_false() {
    let p = json!({"s": "x", "n": 0, "t": true, "f": false});
    assert!(!passes("not payload.s", p.clone()));
    assert!(!passes("not payload.n", p.clone()));
    assert!(!passes("not payload.missing", p.clone()));
    assert!(!passes("not payload.t", p.clone()));
    assert!(passes("not payload.f", p.clone()));
    assert!(passes("not (payload.n = 1)", p));
}

#[test]
fn arithmetic_on_strings_is_an_error_but_plus_concatenates() {
    for expr in ["'5' - 1", "'2' * 3", "'6' / 2", "payload.s - 1", "-'a'"] {
        let e = eval(expr, json!({"s": "5"})).expect_err(expr);
        assert!(e.starts_with("exception"), "{expr}: {e}");
    }
    assert_eq!(eval("'5' + 1", json!({})).unwrap(), json!("51"));
    assert_eq!(eval("1 + 'a'", json!({})).unwrap(), json!("1a"));
    assert_eq!(eval("1 + 2.5", json!({})).unwrap(), json!(3.5));
    assert_eq!(eval("7 / 2", json!({})).unwrap(), json!(3.5));
}

#[test]
fn integers_beyond_64_bits_are_errors_not_wrapped() {
    assert_eq!(
        eval("9223372036854775806 + 1", json!({})).unwrap(),
        json!(9223372036854775807i64)
    );
    for expr in [
        "9223372036854775807 + 1",
        "payload.big * payload.big",
        "-(-9223372036854775807 - 1)",
    ] {
        let e = eval(expr, json!({"big": 9223372036854775807i64})).expect_err(expr);
        assert!(e.contains("overflow"), "{expr}: {e}");
    }
}

#[test]
fn case_with_an_operand_matches_exactly() {
    // EMQX eval_switch_clauses: pattern match, so 1 does not match 1.0 or '1'.
    let sql = "SELECT CASE payload.x WHEN 1.0 THEN 'float' WHEN '1' THEN 'string' WHEN 1 THEN 'int' ELSE 'none' END as r FROM \"t/#\"";
    assert_eq!(
        run(sql, json!({"x": 1})).unwrap(),
        vec![json!({"r": "int"})]
    );
    assert_eq!(
        run(sql, json!({"x": "1"})).unwrap(),
        vec![json!({"r": "string"})]
    );
}

#[test]
fn is_null_is_for_missing_values_and_is_null_var_also_for_json_null() {
    // emqx_rule_funcs: is_null(undefined) -> true; is_null_var(null) -> true.
    let p = json!({"n": null, "v": 1});
    assert_eq!(
        eval(
            "[is_null(payload.n), is_null(payload.missing), is_null(payload.v), is_null_var(payload.n), is_null_var(payload.missing), is_not_null(payload.n), is_not_null_var(payload.n), is_not_null_var(payload.v)]",
            p
        )
        .unwrap(),
        json!([false, true, false, true, true, true, false, true])
    );
    // coalesce skips only missing values, like is_null
    assert_eq!(
        eval(
            "coalesce(payload.missing, payload.n, 1)",
            json!({"n": null})
        )
        .unwrap(),
        json!(null)
    );
}

#[test]
fn integer_literals_beyond_64_bits_are_rejected_when_loaded() {
    let e =
        ferry_rules::Rule::compile("SELECT 99999999999999999999 as x FROM \"t/#\"").unwrap_err();
    assert!(e.to_string().contains("64 bits"), "{e}");
    assert!(ferry_rules::Rule::compile("SELECT 9223372036854775807 as x FROM \"t/#\"").is_ok());
}
