//! Built-in functions checked against EMQX's `emqx_rule_funcs_SUITE` and the Erlang
//! functions EMQX calls (`float_to_binary/2`, `io_lib:format/2`, `string:split/3`,
//! `emqx_utils_calendar`): number to text, `int`, `is_null` vs `is_null_var`, `split`
//! options, `subbits` with 4 to 6 arguments, hex with prefixes, `sprintf` directives, date
//! directives and offsets, and exceptions on wrong argument types.
#![allow(clippy::unwrap_used)]

use ferry_rules::test_rule;
use serde_json::{Value as J, json};

fn eval(expr: &str) -> Result<J, String> {
    let sql = format!("SELECT {expr} as r FROM \"t/#\"");
    let ctx = json!({"topic": "t/a", "payload": "{\"n\": null, \"f\": -1.5}"});
    let mut outs = test_rule(&sql, &ctx.to_string()).map_err(|e| e.to_string())?;
    let v = outs.remove(0).shift_remove("r").unwrap_or_default();
    Ok(serde_json::from_str(&v.to_json()).unwrap())
}

fn check(cases: &[(&str, J)]) {
    let fails: Vec<String> = cases
        .iter()
        .filter_map(|(e, want)| match eval(e) {
            Ok(got) if &got == want => None,
            Ok(got) => Some(format!("{e}: got {got}, want {want}")),
            Err(err) => Some(format!("{e}: {err}")),
        })
        .collect();
    assert!(fails.is_empty(), "{}", fails.join("\n"));
}

#[test]
fn numbers_become_text_like_emqx() {
    // float_to_binary(F, [{decimals, 10}, compact])
    check(&[
        ("str(0.1 + 0.2)", json!("0.3")),
        ("str(2.0)", json!("2.0")),
        ("str(1)", json!("1")),
        ("str(-1.25)", json!("-1.25")),
        ("str(1 / 3)", json!("0.3333333333")),
        ("str(123456789.123456789)", json!("123456789.123456791")),
        ("str(true)", json!("true")),
        ("str({'a': 1})", json!("{\"a\":1}")),
        ("concat('v=', 0.1 + 0.2)", json!("v=0.3")),
        ("'v=' + 2.5", json!("v=2.5")),
        ("float2str(20.2, 1)", json!("20.2")),
        ("float2str(20.2, 10)", json!("20.2")),
    ]);
}

#[test]
fn int_floors_floats() {
    // emqx_utils_conv:int/1 uses erlang:floor/1
    check(&[
        ("int(-1.5)", json!(-2)),
        ("int(payload.f)", json!(-2)),
        ("int(1.9)", json!(1)),
        ("int('-2.5')", json!(-3)),
        ("int('42')", json!(42)),
        ("int(true)", json!(1)),
    ]);
}

#[test]
fn split_with_every_option() {
    // t_split_notrim_all, t_split_leading_notrim, t_split_trailing_notrim
    check(&[
        ("split('', '/', 'notrim')", json!([""])),
        ("split('/', '/', 'notrim')", json!(["", ""])),
        (
            "split('/a/b//c/', '/', 'notrim')",
            json!(["", "a", "b", "", "c", ""]),
        ),
        ("split('', '/', 'leading_notrim')", json!([""])),
        ("split('/', '/', 'leading_notrim')", json!(["", ""])),
        (
            "split('/a/b/c', '/', 'leading_notrim')",
            json!(["", "a/b/c"]),
        ),
        (
            "split('a/b//c/', '/', 'leading_notrim')",
            json!(["a", "b//c/"]),
        ),
        ("split('/', '/', 'trailing_notrim')", json!(["", ""])),
        (
            "split('/a/b/c', '/', 'trailing_notrim')",
            json!(["/a/b", "c"]),
        ),
        (
            "split('a/b//c/', '/', 'trailing_notrim')",
            json!(["a/b//c", ""]),
        ),
        ("split('/a/b/c', '/', 'leading')", json!(["a/b/c"])),
        ("split('a/b//c/', '/', 'trailing')", json!(["a/b//c"])),
    ]);
}

#[test]
fn subbits_with_type_signedness_and_endianness() {
    // t_subbits, t_subbits2_integer, t_subbits2_float, t_subbits_4_args, t_subbits_5_args
    check(&[
        ("subbits(hexstr2bin('FF'), 3)", json!(7)),
        ("subbits(hexstr2bin('FF'), 2, 8)", json!(127)),
        (
            "subbits(hexstr2bin('000001C8'), 1, 32, 'integer', 'signed', 'big')",
            json!(456),
        ),
        (
            "subbits(hexstr2bin('FFFFFE38'), 1, 32, 'integer', 'signed', 'big')",
            json!(-456),
        ),
        (
            "subbits(hexstr2bin('FFFFFE38'), 1, 32, 'integer', 'unsigned')",
            json!(4294966840i64),
        ),
        (
            "subbits(hexstr2bin('000001C8'), 1, 32, 'integer', 'unsigned')",
            json!(456),
        ),
        (
            "subbits(hexstr2bin('C8010000'), 1, 32, 'integer', 'unsigned', 'little')",
            json!(456),
        ),
        (
            "subbits(hexstr2bin('4015333333333333'), 1, 64, 'float')",
            json!(5.3),
        ),
        (
            "subbits(hexstr2bin('C015333333333333'), 1, 64, 'float', 'signed', 'big')",
            json!(-5.3),
        ),
        ("subbits(hexstr2bin('FF'), 9, 8)", json!(null)),
    ]);
}

#[test]
fn hex_with_prefixes_and_odd_lengths() {
    check(&[
        ("bin2hexstr('ab', '0x')", json!("0x6162")),
        ("hexstr2bin('0x6162', '0x')", json!("ab")),
        ("hexstr2bin('161')", json!("\u{1}a")),
        ("bin2hexstr(hexstr2bin('ABC'))", json!("0ABC")),
    ]);
    assert!(
        eval("hexstr2bin('6162', '0x')")
            .unwrap_err()
            .contains("prefix")
    );
}

#[test]
fn sprintf_speaks_erlang() {
    // t_sprintf, plus io_lib:format's field width, precision and pad character
    check(&[
        ("sprintf('Hello ~ts!', 'Shawn')", json!("Hello Shawn!")),
        (
            "sprintf('Name: ~ts, Count: ~p', 'ABC', 2)",
            json!("Name: ABC, Count: 2"),
        ),
        ("sprintf('~.2f', 3.14159)", json!("3.14")),
        ("sprintf('~8.3f|', 3.14159)", json!("   3.142|")),
        ("sprintf('~-8.3f|', 3.14159)", json!("3.142   |")),
        ("sprintf('~5..0B', 42)", json!("00042")),
        ("sprintf('~.16B', 255)", json!("FF")),
        ("sprintf('~.16b', 255)", json!("ff")),
        ("sprintf('~.2B', 5)", json!("101")),
        ("sprintf('~5s|', 'ab')", json!("   ab|")),
        ("sprintf('~-5s|', 'ab')", json!("ab   |")),
        ("sprintf('~.2s', 'abc')", json!("ab")),
        ("sprintf('~e', 1.0)", json!("1.00000e+0")),
        ("sprintf('~w ~~ ~d', [1, 2], 3)", json!("[1,2] ~ 3")),
        ("sprintf('~3c', 97)", json!("aaa")),
    ]);
    for bad in [
        "sprintf('~d', 1.5)",
        "sprintf('~f', 1)",
        "sprintf('~s', 1)",
        "sprintf('~s')",
    ] {
        assert!(eval(bad).unwrap_err().contains("exception"), "{bad}");
    }
}

#[test]
fn format_date_with_every_emqx_directive_and_offset() {
    // 2021-07-16T01:46:40.123456789Z
    let ts = "1626400000123456789";
    check(&[
        (
            &format!("format_date('nanosecond', 'Z', '%Y-%m-%d %H:%M:%S.%N', {ts})"),
            json!("2021-07-16 01:46:40.123456789"),
        ),
        (
            &format!("format_date('nanosecond', 'Z', '%3N|%6N|%N', {ts})"),
            json!("123|123456|123456789"),
        ),
        (
            &format!("format_date('nanosecond', '-05:30', '%H:%M %z %:z %::z', {ts})"),
            json!("20:16 -0530 -05:30 -05:30:00"),
        ),
        (
            &format!("format_date('nanosecond', '+00:01:42', '%H:%M:%S %::z', {ts})"),
            json!("01:48:22 +00:01:42"),
        ),
        (
            &format!("format_date('nanosecond', 3600, '%d %H %z', {ts})"),
            json!("16 02 +0100"),
        ),
        // other text after % is literal, as in EMQX
        ("format_date('second', 'Z', '%Y %q', 0)", json!("1970 %q")),
    ]);
}

#[test]
fn date_to_unix_ts_as_emqx() {
    // t_date_to_unix_ts and t_parse_date_errors
    check(&[
        (
            "date_to_unix_ts('second', '+08:00', '%Y-%m-%d %H-%M-%S', '2024-03-01 10:30:38')",
            json!(1709260238),
        ),
        (
            "date_to_unix_ts('millisecond', '+08:00', '%Y-%m-%d %H-%M-%S.%3N', '2024-03-01 10:30:38.333')",
            json!(1709260238333i64),
        ),
        (
            "date_to_unix_ts('microsecond', '+08:00', '%Y-%m-%d %H-%M-%S.%6N', '2024-03-01 10:30:38.333444')",
            json!(1709260238333444i64),
        ),
        (
            "date_to_unix_ts('second', '%Y-%m-%d %H:%M:%S', '2022-05-26 10:40:12')",
            json!(1653561612),
        ),
        (
            "date_to_unix_ts('second', '%Y-%m-%d %H-%M-%S', '2022-05-26 10:40:12')",
            json!(1653561612),
        ),
        (
            "date_to_unix_ts('second', '%Y-%m-%d %H:%M:%S', '2024-02-29 14:31:40')",
            json!(1709217100),
        ),
        (
            "date_to_unix_ts('second', '%Y-%m-%d %H:%M:%S%::z', '2022-05-26 10:40:12-01:00:30')",
            json!(1653561612 + 3630),
        ),
        (
            "date_to_unix_ts('second', '%Y-%m-%d %H:%M:%S%z', '2022-05-26 10:40:12+0100')",
            json!(1653561612 - 3600),
        ),
    ]);
    for bad in [
        "date_to_unix_ts('second', '%Y-%m-%d %H:%M:%S', '2022-05-32 10:40:12')",
        "date_to_unix_ts('second', '%Y-%m-%d %H:%M:%S', '2023-02-29 10:40:12')",
        "date_to_unix_ts('second', '%H:%M:%S', '10:40:12')",
    ] {
        assert!(eval(bad).unwrap_err().contains("exception"), "{bad}");
    }
}

#[test]
fn timezone_offsets_with_seconds_and_signs() {
    // t_timezone_to_offset_seconds
    check(&[
        ("timezone_to_offset_seconds('+02:00:00')", json!(7200)),
        ("timezone_to_offset_seconds('-02:00:00')", json!(-7200)),
        ("timezone_to_offset_seconds('+00:01:42')", json!(102)),
        ("timezone_to_second('z')", json!(0)),
        ("timezone_to_second('Z')", json!(0)),
        ("timezone_to_second(42)", json!(42)),
        ("timezone_to_second('-0530')", json!(-19800)),
    ]);
    assert!(
        eval("timezone_to_second('+24:00')")
            .unwrap_err()
            .contains("exception")
    );
}

#[test]
fn maps_pads_and_base64_options() {
    check(&[
        ("mput('a.b', 1, map_new())", json!({"a.b": 1})),
        ("mget('a.b', mput('a.b', 1, map_new()))", json!(1)),
        ("map_put('a.b', 1, map_new())", json!({"a": {"b": 1}})),
        ("pad('a', 3, 'trailing', 'xy')", json!("axyxy")),
        ("pad('a', 3, 'leading', '0')", json!("00a")),
        ("base64_encode('a', 'no_padding')", json!("YQ")),
        (
            "base64_encode(hexstr2bin('FBFF'), 'urlsafe')",
            json!("-_8="),
        ),
        ("base64_decode('YQ', 'no_padding')", json!("a")),
        ("rtrim('abcxx', 'x')", json!("abc")),
        (
            "[is_null(null()), is_null_var(payload.n), is_null(payload.n)]",
            json!([true, true, false]),
        ),
    ]);
}

#[test]
fn wrong_argument_types_raise_exceptions() {
    for bad in [
        "abs('a')",
        "bitand(1.5, 1)",
        "strlen(payload.missing)",
        "map_size(1)",
        "nth('1', [1])",
        "hash('sha999', 'a')",
        "hash('md5', payload.missing)",
        "rm_prefix(payload.missing, 'a')",
        "bytesize(1)",
        "subbits(1, 2)",
        "base64_encode('a', 'bogus')",
        "split('a', '/', 'bogus')",
    ] {
        let e = eval(bad).expect_err(bad);
        assert!(e.contains("exception"), "{bad}: {e}");
    }
}

#[test]
fn unescape_and_regex_extract_as_emqx() {
    // t_unescape; regex_extract captures all_but_first
    check(&[
        ("unescape('\\\\n')", json!("\n")),
        (
            "unescape('Hello,\\\\t World\\\\n!')",
            json!("Hello,\t World\n!"),
        ),
        ("unescape('\\\\\\\\')", json!("\\")),
        ("unescape('\\\\?\\\\a')", json!("?\u{7}")),
        ("unescape('hej\\\\x0Ahej')", json!("hej\nhej")),
        ("unescape('\\\\x41\\\\x42\\\\x43')", json!("ABC")),
        ("unescape('\\\\xFF')", json!("\u{ff}")),
        ("regex_extract('abc123', '[0-9]+')", json!([])),
        (
            "regex_extract('abc123', '([a-z]+)([0-9]+)')",
            json!(["abc", "123"]),
        ),
        ("regex_extract('abc', '(x)')", json!([])),
    ]);
    assert!(eval("unescape('\\\\L')").unwrap_err().contains("exception"));
}

#[test]
fn sprintf_p_prints_erlang_terms() {
    check(&[
        ("sprintf('~p', 'a')", json!("<<\"a\">>")),
        ("sprintf('~p', payload.missing)", json!("undefined")),
        ("sprintf('~p', payload.n)", json!("null")),
        ("sprintf('~p', [1, 'a'])", json!("[1,<<\"a\">>]")),
        ("sprintf('~p', {'k': 1})", json!("#{<<\"k\">> => 1}")),
    ]);
}
