//! Double-quoted tokens (ADR 0009): a topic in FROM, a key after a dot and an alias as in
//! EMQX; an operand stays a string in Ferry (EMQX reads it as a column that does not exist).
#![allow(clippy::unwrap_used)]

use ferry_rules::test_rule;
use serde_json::{Value as J, json};

fn run(sql: &str) -> J {
    let ctx = json!({"topic": "cmd/a", "clientid": "c1", "payload": "{\"user-id\": 7, \"a\": 1}"});
    let mut outs = test_rule(sql, &ctx.to_string()).unwrap();
    serde_json::from_str(&ferry_rules::Value::Map(outs.remove(0)).to_json()).unwrap()
}

#[test]
fn from_keys_and_aliases_in_double_quotes_are_names_as_in_emqx() {
    assert_eq!(
        run("SELECT payload.\"user-id\" as \"the-id\", payload.a AS \"x\" FROM \"cmd/#\""),
        json!({"the-id": 7, "x": 1})
    );
}

#[test]
fn a_double_quoted_operand_is_a_string() {
    assert_eq!(
        run(
            "SELECT topic =~ \"cmd/#\" as m, clientid = \"c1\" as c, \"lit\" as s FROM \"cmd/#\" WHERE clientid = \"c1\""
        ),
        json!({"m": true, "c": true, "s": "lit"})
    );
}
