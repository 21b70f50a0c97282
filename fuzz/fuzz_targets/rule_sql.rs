//! Arbitrary text into the rule SQL parser: never a panic; whatever parses prints to SQL
//! that parses back to the same statement.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(sql) = std::str::from_utf8(data) else { return };
    if let Ok(stmt) = ferry_rules::parser::parse(sql) {
        let printed = stmt.to_string();
        let again = ferry_rules::parser::parse(&printed).expect("printed SQL parses");
        assert_eq!(again, stmt, "{printed}");
    }
});
