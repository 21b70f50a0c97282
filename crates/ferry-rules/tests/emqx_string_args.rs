//! String functions on arguments of the wrong type, as EMQX's `emqx_variform_bif` does it:
//! the string a function works on may be a string or an atom (`true`/`false` are the strings
//! "true"/"false"); a missing value, a JSON `null`, a number, a map or an array raises an
//! exception (the rule fails for that message and counts it); the other string arguments
//! (separators, patterns, options) must be strings.
#![allow(clippy::unwrap_used)]

use ferry_rules::test_rule;
use serde_json::{Value as J, json};

fn eval(expr: &str) -> Result<J, String> {
    let sql = format!("SELECT {expr} as r FROM \"t/#\"");
    let ctx = json!({"topic": "t/a", "payload": "{\"n\": null, \"i\": 12, \"b\": true}"});
    let mut outs = test_rule(&sql, &ctx.to_string()).map_err(|e| e.to_string())?;
    let v = outs.remove(0).shift_remove("r").unwrap_or_default();
    Ok(serde_json::from_str(&v.to_json()).unwrap())
}

#[test]
fn string_functions_raise_on_numbers_nulls_maps_and_arrays() {
    let calls = [
        "lower(X)",
        "upper(X)",
        "trim(X)",
        "ltrim(X)",
        "rtrim(X)",
        "rtrim(X, 'a')",
        "reverse(X)",
        "strlen(X)",
        "substr(X, 1)",
        "substr(X, 0, 1)",
        "split(X, '/')",
        "split(X, '/', 'notrim')",
        "tokens(X, ',')",
        "pad(X, 5)",
        "pad(X, 5, 'leading', '0')",
        "replace(X, 'a', 'b')",
        "regex_match(X, '1')",
        "regex_replace(X, '1', '2')",
        "regex_extract(X, '(1)')",
        "ascii(X)",
        "find(X, '1')",
        "unescape(X)",
        "md5(X)",
        "base64_encode(X)",
    ];
    let mut fails = Vec::new();
    for call in calls {
        for arg in [
            "12",
            "1.5",
            "payload.i",
            "payload.n",
            "payload.missing",
            "[1]",
            "{'a': 1}",
        ] {
            let e = call.replace('X', arg);
            match eval(&e) {
                Err(err) if err.contains("exception") => {}
                other => fails.push(format!("{e}: {other:?}")),
            }
        }
    }
    assert!(fails.is_empty(), "{}", fails.join("\n"));
}

#[test]
fn booleans_are_atoms_so_string_functions_take_their_names() {
    let cases = [
        ("upper(true)", json!("TRUE")),
        ("upper(payload.b)", json!("TRUE")),
        ("strlen(false)", json!(5)),
        ("substr(true, 1)", json!("rue")),
        ("split(true, 'u')", json!(["tr", "e"])),
        ("replace(false, 'l', 'L')", json!("faLse")),
        ("find(true, 'u')", json!("ue")),
        ("ascii(true)", json!(116)),
        ("pad(true, 6)", json!("true  ")),
    ];
    for (e, want) in cases {
        assert_eq!(eval(e).as_ref(), Ok(&want), "{e}");
    }
}

#[test]
fn the_other_string_arguments_must_be_strings() {
    for e in [
        "split('a1b', 1)",
        "replace('a1b', 1, 'x')",
        "replace('a1b', '1', 2)",
        "find('a1b', 1)",
        "tokens('a1b', 1)",
        "rtrim('a1b', 1)",
        "split('a/b', '/', true)",
        "regex_match('a1b', 1)",
    ] {
        let got = eval(e);
        assert!(
            got.as_ref().is_err_and(|m| m.contains("exception")),
            "{e}: {got:?}"
        );
    }
}

#[test]
fn functions_that_convert_any_value_keep_doing_so() {
    let cases = [
        // rm_prefix matches a binary prefix: anything else comes back as it is.
        ("rm_prefix(12, '1')", json!(12)),
        ("rm_prefix('12', '1')", json!("2")),
        ("concat('a', 1, true)", json!("a1true")),
        ("str(12)", json!("12")),
        ("join_to_string(',', [1, 'a', true])", json!("1,a,true")),
        ("length([1, 2])", json!(2)),
        ("ascii('é')", json!(195)),
    ];
    for (e, want) in cases {
        assert_eq!(eval(e).as_ref(), Ok(&want), "{e}");
    }
    for e in ["length('abc')", "length({'a': 1})"] {
        assert!(eval(e).is_err_and(|m| m.contains("exception")), "{e}");
    }
}

#[test]
fn a_missing_value_is_undefined_as_text_and_a_json_null_is_null() {
    let cases = [
        ("str(payload.missing)", json!("undefined")),
        ("str(payload.n)", json!("null")),
        ("concat('a', payload.missing)", json!("aundefined")),
        ("concat(['a', payload.n])", json!("anull")),
        ("'a' + payload.missing", json!("aundefined")),
        ("join_to_string('-', [payload.n, 1])", json!("null-1")),
    ];
    for (e, want) in cases {
        assert_eq!(eval(e).as_ref(), Ok(&want), "{e}");
    }
}
