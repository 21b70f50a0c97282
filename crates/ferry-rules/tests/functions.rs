//! Every built-in function, with the examples EMQX documents for it. A test also checks
//! that no function is left without an example.
#![allow(clippy::unwrap_used)]
// The expected values are the documented results, not uses of the constants.
#![allow(clippy::approx_constant)]

use std::collections::HashSet;

use ferry_rules::{Value, function_names, test_rule};
use serde_json::{Value as J, json};

/// Evaluates `expr` in a rule on a message with topic "t/a" and a JSON payload.
fn eval(expr: &str) -> Result<J, String> {
    let sql = format!("SELECT {expr} as r FROM \"t/#\"");
    let ctx = r#"{"topic": "t/a", "clientid": "c1", "payload": "{\"a\": 1, \"arr\": [1, 2, 3]}"}"#;
    let outs = test_rule(&sql, ctx).map_err(|e| e.to_string())?;
    let v = outs.into_iter().next().ok_or("no output")?;
    let v = v.get("r").cloned().unwrap_or(Value::Null);
    Ok(serde_json::from_str(&v.to_json()).unwrap())
}

fn close(a: &J, b: &J) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) if a.is_f64() || b.is_f64() => {
            (x - y).abs() < 1e-12 && a.is_f64() == b.is_f64()
        }
        _ => a == b,
    }
}

/// (expression, expected result). The function names used are collected for the coverage check.
fn examples() -> Vec<(&'static str, J)> {
    vec![
        // math
        ("abs(-12)", json!(12)),
        ("abs(-1.2)", json!(1.2)),
        ("acos(0.5)", json!(1.0471975511965979)),
        ("acosh(1.5)", json!(0.9624236501192069)),
        ("asin(0.5)", json!(0.5235987755982989)),
        ("asinh(0.5)", json!(0.48121182505960347)),
        ("atan(0.5)", json!(0.4636476090008061)),
        ("atanh(0.5)", json!(0.5493061443340548)),
        ("ceil(0.8)", json!(1)),
        ("cos(0.5)", json!(0.8775825618903728)),
        ("cosh(0.5)", json!(1.1276259652063807)),
        ("exp(1)", json!(2.718281828459045)),
        ("floor(0.8)", json!(0)),
        ("fmod(6.5, 2)", json!(0.5)),
        ("log(7.38905609893065)", json!(2.0)),
        ("log10(100)", json!(2.0)),
        ("log2(8)", json!(3.0)),
        ("power(2, 3)", json!(8.0)),
        ("is_float(random())", json!(true)),
        ("round(4.5)", json!(5)),
        ("sin(0.5)", json!(0.479425538604203)),
        ("sinh(0.5)", json!(0.5210953054937474)),
        ("sqrt(9)", json!(3.0)),
        ("tan(0.5)", json!(0.5463024898437905)),
        ("tanh(0.5)", json!(0.46211715726000974)),
        // bits
        ("bitnot(10)", json!(-11)),
        ("bitand(10, 8)", json!(8)),
        ("bitor(10, 8)", json!(10)),
        ("bitxor(10, 8)", json!(2)),
        ("bitsl(8, 2)", json!(32)),
        ("bitsr(8, 2)", json!(2)),
        ("bitsize('abc')", json!(24)),
        ("subbits('abc', 8)", json!(97)),
        ("subbits('abc', 9, 8)", json!(98)),
        // conversion
        ("str(100)", json!("100")),
        ("str(1.5)", json!("1.5")),
        ("str_utf8(100)", json!("100")),
        ("bin2hexstr(str_utf16_le('hi'))", json!("68006900")),
        ("bool('true')", json!(true)),
        ("bool(0)", json!(false)),
        ("int('100')", json!(100)),
        ("int(1.9)", json!(1)),
        ("float('3.14')", json!(3.14)),
        ("float(3.1415, 2)", json!(3.14)),
        ("float2str(3.1415, 2)", json!("3.14")),
        ("map('{\"a\": 1}')", json!({"a": 1})),
        // checks
        ("is_null(payload.nope)", json!(true)),
        ("is_not_null(payload.a)", json!(true)),
        ("is_null_var(payload.nope)", json!(true)),
        ("is_not_null_var(clientid)", json!(true)),
        ("is_str('a')", json!(true)),
        ("is_bool(true)", json!(true)),
        ("is_int(1)", json!(true)),
        ("is_float(1.5)", json!(true)),
        ("is_num(1)", json!(true)),
        ("is_map(payload)", json!(false)),
        ("is_map(json_decode(payload))", json!(true)),
        ("is_array(payload.arr)", json!(true)),
        // strings
        ("lower('ABC')", json!("abc")),
        ("upper('abc')", json!("ABC")),
        ("trim('  a b  ')", json!("a b")),
        ("ltrim('  a ')", json!("a ")),
        ("rtrim(' a  ')", json!(" a")),
        ("reverse('abc')", json!("cba")),
        ("strlen('abc')", json!(3)),
        ("substr('abcdef', 2)", json!("cdef")),
        ("substr('abcdef', 2, 3)", json!("cde")),
        ("split('a/b/c', '/')", json!(["a", "b", "c"])),
        ("split('/a/b/', '/')", json!(["a", "b"])),
        ("split('a,,b', ',', 'notrim')", json!(["a", "", "b"])),
        ("split('a/b/c', '/', 'leading')", json!(["a", "b/c"])),
        ("split('a/b/c', '/', 'trailing')", json!(["a/b", "c"])),
        ("concat('a', 'b')", json!("ab")),
        ("concat(['a', 'b', 'c'])", json!("abc")),
        ("tokens('a b;c', ' ;')", json!(["a", "b", "c"])),
        ("tokens('a\r\nb', ' ', 'nocrlf')", json!(["a", "b"])),
        ("sprintf('hello, ~s!', 'steve')", json!("hello, steve!")),
        ("sprintf('count: ~p~n', 100)", json!("count: 100\n")),
        ("pad('abc', 5)", json!("abc  ")),
        ("pad('abc', 5, 'leading')", json!("  abc")),
        ("pad('abc', 5, 'both', '-')", json!("-abc-")),
        ("replace('ababef', 'ab', 'cd')", json!("cdcdef")),
        ("replace('ababef', 'ab', 'cd', 'leading')", json!("cdabef")),
        ("replace('ababef', 'ab', 'cd', 'trailing')", json!("abcdef")),
        ("regex_match('abc123', '[0-9]+$')", json!(true)),
        (
            "regex_replace('ab1cd3ef', '[1-9]', '[&]')",
            json!("ab[1]cd[3]ef"),
        ),
        ("regex_replace('ccefacef', 'c+', ':')", json!(":efa:ef")),
        (
            "regex_extract('Tel: 1234-5678', '(\\d+)-(\\d+)')",
            json!(["1234", "5678"]),
        ),
        ("regex_extract('abc', '\\d+')", json!([])),
        ("ascii('a')", json!(97)),
        ("find('abcabc', 'bc')", json!("bcabc")),
        ("find('abcabc', 'bc', 'trailing')", json!("bc")),
        ("find('abc', 'x')", json!("")),
        ("join_to_string(', ', ['a', 'b'])", json!("a, b")),
        ("unescape('a\\\\nb')", json!("a\nb")),
        // maps
        ("map_get('a', json_decode('{\"a\": 1}'))", json!(1)),
        (
            "map_get('a.b', json_decode('{\"a\": {\"b\": 2}}'))",
            json!(2),
        ),
        ("map_get('x', json_decode('{}'), 'dflt')", json!("dflt")),
        ("map_put('a', 1, json_decode('{}'))", json!({"a": 1})),
        (
            "mput('b', 2, json_decode('{\"a\": 1}'))",
            json!({"a": 1, "b": 2}),
        ),
        ("mget('a.b', json_decode('{\"a.b\": 3}'))", json!(3)),
        (
            "map_keys(json_decode('{\"a\": 1, \"b\": 2}'))",
            json!(["a", "b"]),
        ),
        (
            "map_values(json_decode('{\"a\": 1, \"b\": 2}'))",
            json!([1, 2]),
        ),
        (
            "map_to_entries(json_decode('{\"a\": 1}'))",
            json!([{"key": "a", "value": 1}]),
        ),
        // arrays
        ("nth(2, [1, 2, 3])", json!(2)),
        ("length([1, 2, 3])", json!(3)),
        ("sublist(2, [1, 2, 3, 4])", json!([1, 2])),
        ("sublist(2, 2, [1, 2, 3, 4])", json!([2, 3])),
        ("first([1, 2, 3])", json!(1)),
        ("last([1, 2, 3])", json!(3)),
        ("contains(2, [1, 2, 3])", json!(true)),
        // hashes
        ("md5('some val')", json!("1b68352b3e9c2de52ffd322e30bffcc4")),
        (
            "sha('some val')",
            json!("f85ba28ff5ea84a0cbfa118319acb0c5e58ee2b9"),
        ),
        (
            "sha256('some val')",
            json!("67f97635d8a0e064f60ba6e8846a0ac0be664f18f0c1dc6445cd3542d2b71993"),
        ),
        // encoding
        ("base64_encode('some val')", json!("c29tZSB2YWw=")),
        ("base64_decode('c29tZSB2YWw=')", json!("some val")),
        (
            "json_encode(json_decode('{\"a\": [1, true]}'))",
            json!("{\"a\":[1,true]}"),
        ),
        ("json_decode('[1, 2]')", json!([1, 2])),
        ("bin2hexstr('Hello')", json!("48656C6C6F")),
        ("hexstr2bin('48656C6C6F')", json!("Hello")),
        // compression
        (
            "gunzip(gzip('hello hello hello'))",
            json!("hello hello hello"),
        ),
        ("unzip(zip('hello'))", json!("hello")),
        ("zip_uncompress(zip_compress('hello'))", json!("hello")),
        (
            "bin2hexstr(substr(bin2hexstr(zip_compress('x')), 0, 2))",
            json!("3738"),
        ),
        // date and time
        ("is_int(now_timestamp())", json!(true)),
        ("now_timestamp('millisecond') > 1600000000000", json!(true)),
        ("strlen(now_rfc3339())", json!(25)),
        ("strlen(now_rfc3339('millisecond'))", json!(29)),
        (
            "unix_ts_to_rfc3339(1626400000)",
            json!("2021-07-16T01:46:40+00:00"),
        ),
        (
            "unix_ts_to_rfc3339(1626400000123, 'millisecond')",
            json!("2021-07-16T01:46:40.123+00:00"),
        ),
        (
            "rfc3339_to_unix_ts('2021-07-16T09:46:40+08:00')",
            json!(1626400000),
        ),
        (
            "rfc3339_to_unix_ts('2021-07-16T01:46:40.123Z', 'millisecond')",
            json!(1626400000123i64),
        ),
        (
            "format_date('second', '+08:00', '%Y-%m-%d %H:%M:%S', 1626400000)",
            json!("2021-07-16 09:46:40"),
        ),
        (
            "format_date('millisecond', 'Z', '%Y-%m-%dT%H:%M:%S.%N%z', 1626400000123)",
            json!("2021-07-16T01:46:40.123000000+0000"),
        ),
        (
            "date_to_unix_ts('second', '%Y-%m-%d %H:%M:%S', '2021-07-16 01:46:40')",
            json!(1626400000),
        ),
        (
            "date_to_unix_ts('second', '+08:00', '%Y-%m-%d %H:%M:%S', '2021-07-16 09:46:40')",
            json!(1626400000),
        ),
        ("timezone_to_offset_seconds('+08:00')", json!(28800)),
        ("timezone_to_offset_seconds('Z')", json!(0)),
        // misc
        ("strlen(uuid_v4())", json!(36)),
        ("strlen(uuid_v4_no_hyphen())", json!(32)),
        ("coalesce(null, 1)", json!(1)),
        ("coalesce(payload.nope, 'x')", json!("x")),
        ("coalesce_ne('', 'a')", json!("a")),
        (
            "contains_topic(json_decode('[{\"topic\": \"t/1\", \"qos\": 1}]'), 't/1')",
            json!(true),
        ),
        (
            "contains_topic(json_decode('[{\"topic\": \"t/1\", \"qos\": 1}]'), 't/1', 2)",
            json!(false),
        ),
        (
            "contains_topic_match(json_decode('[{\"topic\": \"t/#\", \"qos\": 1}]'), 't/1')",
            json!(true),
        ),
        ("topic(2)", json!("a")),
        // functions added from EMQX's list (emqx_rule_funcs_SUITE / emqx_variform_bif)
        ("bytesize('abc')", json!(3)),
        ("rm_prefix('abc', 'ab')", json!("c")),
        ("rm_prefix('abc', 'x')", json!("abc")),
        ("map_new()", json!({})),
        ("map_size(map_put('a', 1, map_new()))", json!(1)),
        ("map_size('{\"a\": 1, \"b\": 2}')", json!(2)),
        (
            "[is_empty([]), is_empty(''), is_empty(map_new()), is_empty([1]), is_empty('{\"a\":1}')]",
            json!([true, true, true, false, false]),
        ),
        (
            "hash('md5', 'emqx')",
            json!("ab0c1e4a885172552a002f8de9b526d1"),
        ),
        (
            "hash('sha256', 'abc')",
            json!("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ),
        ("sqlserver_bin2hexstr('ab')", json!("0x6162")),
        ("timezone_to_second('+00:01:42')", json!(102)),
        // EMQX's IoT functions: the message's columns
        ("msgid()", json!("0005F8F84FFFAFB9F44200000D810002")),
        ("qos()", json!(1)),
        ("clientid()", json!("c1")),
        (
            "[clientip(), peerhost(), username()]",
            json!(["127.0.0.1", "127.0.0.1", "u_emqx"]),
        ),
        ("flags()", json!({"retain": false, "dup": false})),
        ("flag('dup')", json!(false)),
        ("payload('arr')", json!([1, 2, 3])),
        ("payload()", json!("{\"a\": 1, \"arr\": [1, 2, 3]}")),
        ("topic()", json!("t/a")),
        (
            "[eq(1, 1.0), eq('1', 1), 1 = '1']",
            json!([true, false, true]),
        ),
        ("sprintf_s('~p-~ts', [1, 'x'])", json!("1-x")),
        // the function forms of `div` and `mod` (EMQX t_sqlselect_002)
        ("div(7, 2)", json!(3)),
        ("mod(3, 2)", json!(1)),
    ]
}

#[test]
fn documented_examples_give_documented_results() {
    let mut failures = Vec::new();
    for (expr, want) in examples() {
        match eval(expr) {
            Ok(got) if close(&got, &want) => {}
            Ok(got) => failures.push(format!("{expr}: got {got}, want {want}")),
            Err(e) => failures.push(format!("{expr}: error {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_function_has_an_example() {
    let used: String = examples()
        .iter()
        .map(|(e, _)| *e)
        .collect::<Vec<_>>()
        .join(" ");
    let missing: Vec<&str> = function_names()
        .filter(|n| !used.contains(&format!("{n}(")))
        .collect();
    assert!(
        missing.is_empty(),
        "functions without an example: {missing:?}"
    );
    let unique: HashSet<&str> = function_names().collect();
    assert!(unique.len() >= 100, "only {} functions", unique.len());
}

#[test]
fn bad_arguments_are_exceptions_not_panics() {
    for expr in [
        "sqrt(-1)",
        "nth(9, [1])",
        "int('x')",
        "1 / 0",
        "5 div 0",
        "hexstr2bin('zz')",
        "base64_decode('!!')",
        "json_decode('nope')",
        "first([])",
        "regex_match('a', '(')",
        "sprintf('~s')",
        "substr('a', -1)",
        "format_date('eon', 'Z', '%Y', 1)",
        "date_to_unix_ts('second', '%Y', 'abc')",
        "gunzip('not gzip')",
    ] {
        let e = eval(expr).expect_err(expr);
        assert!(e.contains("exception"), "{expr}: {e}");
    }
}
