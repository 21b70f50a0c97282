//! `local` as a time offset is the machine's offset now, as in EMQX
//! (`emqx_utils_calendar:offset_second(local)`). The test runs itself again with a `TZ`
//! (a POSIX rule, so no time zone database is needed) rather than changing its own
//! environment.
#![allow(clippy::unwrap_used)]

use ferry_rules::test_rule;
use serde_json::json;

fn eval(expr: &str) -> String {
    let sql = format!("SELECT {expr} as r FROM \"t/#\"");
    let ctx = json!({"topic": "t/a", "payload": "{}"});
    let mut outs = test_rule(&sql, &ctx.to_string()).unwrap();
    outs.remove(0)["r"].to_json()
}

#[test]
fn local_offset_follows_the_machine_time_zone() {
    if std::env::var_os("FERRY_LOCAL_TZ_CHILD").is_some() {
        // India: +05:30, no daylight saving time.
        assert_eq!(eval("timezone_to_offset_seconds('local')"), "19800");
        assert_eq!(
            eval("format_date('second', 'local', '%Y-%m-%d %H:%M:%S %:z', 0)"),
            "\"1970-01-01 05:30:00 +05:30\""
        );
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "local_offset_follows_the_machine_time_zone",
            "--nocapture",
        ])
        .env("FERRY_LOCAL_TZ_CHILD", "1")
        .env("TZ", "IST-5:30")
        .output()
        .unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("1 passed"),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
