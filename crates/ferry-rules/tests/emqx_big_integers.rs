//! Integers beyond 64 bits in JSON data stay exact, as Erlang keeps them in EMQX: through
//! decoding, selecting, comparing, `str` and encoding. Arithmetic on them is an overflow
//! error (Ferry's integer arithmetic is 64-bit), never a rounded value; an integer literal
//! in SQL must fit in 64 bits (a compile error names it otherwise).
#![allow(clippy::unwrap_used)]

use ferry_rules::{Value, test_rule};
use serde_json::json;

const BIG: &str = "123456789012345678901234567890";
const PAYLOAD: &str = r#"{"big": 123456789012345678901234567890, "neg": -98765432109876543210987654321, "u": 18446744073709551615, "s": "12345678901234567890123", "f": 1.5e30, "huge": 1234567890123456789012345678901234567890123, "list": [99999999999999999999, 1]}"#;

/// The rule's single output as JSON text (not through serde_json's own numbers, which are
/// 64-bit or floats).
fn run(select: &str) -> Result<String, String> {
    let sql = format!("SELECT {select} FROM \"t/#\"");
    let ctx = json!({"topic": "t/a", "payload": PAYLOAD});
    let outs = test_rule(&sql, &ctx.to_string()).map_err(|e| e.to_string())?;
    Ok(Value::Map(outs.into_iter().next().unwrap()).to_json())
}

#[test]
fn big_integers_round_trip_exactly_from_payload_to_output() {
    assert_eq!(
        run("payload.big as b, payload.neg as n, payload.u as u, payload.list as l").unwrap(),
        format!(
            "{{\"b\":{BIG},\"n\":-98765432109876543210987654321,\"u\":18446744073709551615,\"l\":[99999999999999999999,1]}}"
        )
    );
    // Decoding the whole payload, and encoding it again, keeps them too.
    let out = run("json_encode(json_decode(payload)) as j").unwrap();
    assert!(out.contains(&format!("\\\"big\\\":{BIG}")), "{out}");
    // A big integer alone, and a big integral float literal (stays a float).
    assert_eq!(
        run(&format!(
            "json_decode('{BIG}') as a, json_decode('1.5e30') as b"
        ))
        .unwrap(),
        format!("{{\"a\":{BIG},\"b\":1.5e+30}}")
    );
    // Strings of digits, floats and literals beyond 128 bits are not touched / are floats.
    assert_eq!(
        run("payload.s as s, payload.f as f, is_float(payload.huge) as h").unwrap(),
        "{\"s\":\"12345678901234567890123\",\"f\":1.5e+30,\"h\":true}"
    );
}

#[test]
fn big_integers_compare_exactly_and_print_exactly() {
    let out = run(&format!(
        "payload.big = '{BIG}' as eq, payload.big = '{BIG}1' as ne, \
         payload.big > 9223372036854775807 as gt, payload.neg < -9223372036854775807 as lt, \
         payload.big > 1.0e29 as gtf, payload.list[1] < payload.big as eqs, \
         str(payload.big) as s, is_int(payload.big) as i, is_num(payload.u) as n"
    ))
    .unwrap();
    assert_eq!(
        out,
        format!(
            "{{\"eq\":true,\"ne\":false,\"gt\":true,\"lt\":true,\"gtf\":true,\"eqs\":true,\"s\":\"{BIG}\",\"i\":true,\"n\":true}}"
        )
    );
}

#[test]
fn arithmetic_on_big_integers_is_an_overflow_error() {
    for e in ["payload.big + 1", "payload.u * 1", "0 - payload.neg"] {
        let err = run(&format!("{e} as r")).unwrap_err();
        assert!(err.contains("overflow"), "{e}: {err}");
    }
}

#[test]
fn an_sql_integer_literal_beyond_64_bits_is_a_compile_error_naming_it() {
    let err = run(&format!("payload.big = {BIG} as eq")).unwrap_err();
    assert!(err.contains("line 1, column") && err.contains(BIG), "{err}");
}
