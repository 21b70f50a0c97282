//! `docs/rule-functions.md` (EMQX's built-in functions against Ferry) cannot drift: every
//! function Ferry has is listed as `yes` with its arities, every `yes` is one Ferry has, and
//! every `no` gives a reason.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use ferry_rules::{function_arity, function_names};

/// (name, Ferry column) for each row of the tables.
fn rows() -> Vec<(String, String)> {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/rule-functions.md"
    ))
    .unwrap();
    doc.lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            // | `name` | arities | ferry |
            let name = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            Some((name.to_owned(), (*cells.get(3)?).to_owned()))
        })
        .collect()
}

fn arity_text(name: &str) -> String {
    match function_arity(name).unwrap() {
        (a, b) if a == b => a.to_string(),
        (a, usize::MAX) => format!("{a}+"),
        (a, b) => format!("{a}-{b}"),
    }
}

#[test]
fn the_function_table_matches_ferry() {
    let rows = rows();
    assert!(rows.len() > 140, "only {} rows", rows.len());
    let mut by_name: HashMap<&str, &str> = HashMap::new();
    for (n, f) in &rows {
        assert!(
            by_name.insert(n.as_str(), f.as_str()).is_none(),
            "{n} is listed twice"
        );
    }
    let mut problems = Vec::new();
    for name in function_names() {
        let want = format!("yes ({})", arity_text(name));
        match by_name.get(name) {
            Some(f) if *f == want => {}
            Some(f) => problems.push(format!("{name}: the table says {f:?}, Ferry has {want:?}")),
            None => problems.push(format!("{name}: missing from docs/rule-functions.md")),
        }
    }
    for (name, f) in &rows {
        let has = function_names().any(|n| n == name);
        if f.starts_with("yes") && !has {
            problems.push(format!(
                "{name}: listed as supported, Ferry has no such function"
            ));
        }
        if !f.starts_with("yes") && (has || !f.starts_with("no: ") || f.len() < 10) {
            problems.push(format!(
                "{name}: a 'no' needs a reason and Ferry must lack it: {f:?}"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
