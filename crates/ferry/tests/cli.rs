//! The `ferry` binary as a user runs it.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

fn ferry() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ferry"))
}

/// Starts `ferry serve` with `config` (which must bind port 0); returns it and its port.
fn serve(config: &str) -> (std::process::Child, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ferry.toml");
    let data = dir.path().join("data");
    let config = format!(
        "{config}\n[node]\ndata_dir = {:?}\n[api]\nbind = \"127.0.0.1:0\"\n",
        data.display().to_string()
    );
    std::fs::write(&path, config).unwrap();
    let mut child = ferry()
        .arg("serve")
        .arg("--config")
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("ferry: listening on ")
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    let port = addr.rsplit(':').next().unwrap().to_owned();
    (child, port, dir)
}

fn stop(mut child: std::process::Child) {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(
        child.wait().unwrap().success(),
        "ferry exits cleanly on SIGTERM"
    );
}

#[test]
fn config_example_prints_a_config_that_loads() {
    let out = ferry().args(["config", "example"]).output().unwrap();
    assert!(out.status.success());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ferry.toml");
    std::fs::write(&path, &out.stdout).unwrap();
    let check = ferry()
        .args(["config", "check"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

#[test]
fn bad_config_is_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    let mut f = std::fs::File::create(&path).unwrap();
    writeln!(f, "[mqtt]\nmax_inflight = 0\nretain_avaliable = true").unwrap();
    let out = ferry()
        .arg("serve")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("retain_avaliable"), "{err}");
}

#[test]
fn serve_accepts_mqtt_and_stops_on_sigterm() {
    let (mut child, port, _dir) = serve("[listeners.tcp.default]\nbind = \"127.0.0.1:0\"\n");
    let port = port.as_str();
    let out = Command::new("mosquitto_pub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            port,
            "-t",
            "cli/test",
            "-m",
            "x",
            "-q",
            "1",
        ])
        .output()
        .expect("mosquitto_pub (install with ./scripts/test)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("ferry did not stop on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn rule_test_prints_one_json_line_per_output() {
    let out = ferry()
        .args([
            "rule",
            "test",
            "--sql",
            "FOREACH payload.sensors as s DO clientid, s.name as name INCASE s.idx >= 1 FROM \"t/#\"",
            "--context",
            r#"{"clientid": "c1", "topic": "t/1", "payload": "{\"sensors\": [{\"name\": \"a\", \"idx\": 0}, {\"name\": \"b\", \"idx\": 1}, {\"name\": \"c\", \"idx\": 2}]}"}"#,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "{\"clientid\":\"c1\",\"name\":\"b\"}\n{\"clientid\":\"c1\",\"name\":\"c\"}\n"
    );
    // Defaults fill the context: topic t/a, payload {"msg": "hello"}, clientid c_emqx.
    let out = ferry()
        .args([
            "rule",
            "test",
            "--sql",
            "SELECT clientid, payload.msg as msg FROM \"t/#\"",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "{\"clientid\":\"c_emqx\",\"msg\":\"hello\"}\n"
    );
    // WHERE not met: nothing printed, exit 0.
    let out = ferry()
        .args([
            "rule",
            "test",
            "--sql",
            "SELECT 1 as x FROM \"t/#\" WHERE false",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
    // A topic outside FROM: no match, like a false WHERE (nothing printed, exit 0).
    let out = ferry()
        .args([
            "rule",
            "test",
            "--sql",
            "SELECT 1 as x FROM \"t/#\"",
            "--context",
            r#"{"topic": "other/1"}"#,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no match"));
}

#[test]
fn rule_test_reports_sql_errors_on_stderr() {
    let out = ferry()
        .args(["rule", "test", "--sql", "SELECT a,\nFROM \"t\""])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "ferry: SQL error: line 2, column 1: expected an expression, found 'FROM'"
    );
}

#[test]
fn serve_runs_rules_from_the_config() {
    let (child, port, _dir) = serve(
        r#"
[listeners.tcp.default]
bind = "127.0.0.1:0"

[rules.echo]
sql = 'SELECT payload.v as v FROM "in/#"'
actions = [{ function = "republish", args = { topic = "out", payload = "v=${v}" } }]
"#,
    );
    let mut sub = Command::new("mosquitto_sub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-t",
            "out",
            "-C",
            "1",
            "-W",
            "10",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("mosquitto_sub (install with ./scripts/test)");
    // Publish until the subscriber is in place and has its message.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        Command::new("mosquitto_pub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-t",
                "in/1",
                "-m",
                "{\"v\": 42}",
            ])
            .status()
            .unwrap();
        if let Some(s) = sub.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no republished message"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success());
    let mut got = String::new();
    std::io::Read::read_to_string(&mut sub.stdout.take().unwrap(), &mut got).unwrap();
    assert_eq!(got.trim(), "v=42");
    stop(child);
}

#[test]
fn bench_pub_and_sub_through_the_binary() {
    let (server, port, _dir) = serve("[listeners.tcp.default]\nbind = \"127.0.0.1:0\"\n");
    let sub = ferry()
        .args([
            "bench", "sub", "-p", &port, "-q", "1", "--expect", "200", "--idle", "5s", "-d", "30s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The subscriber is ready once the broker has its subscription.
    std::thread::sleep(Duration::from_millis(500));
    let publ = ferry()
        .args([
            "bench", "pub", "-p", &port, "-c", "2", "-n", "100", "-q", "1",
        ])
        .output()
        .unwrap();
    assert!(
        publ.status.success(),
        "{}",
        String::from_utf8_lossy(&publ.stderr)
    );
    let p: serde_json::Value = serde_json::from_slice(&publ.stdout).unwrap();
    assert_eq!(
        (p["sent"].as_u64(), p["acked"].as_u64()),
        (Some(200), Some(200))
    );
    let out = sub.wait_with_output().unwrap();
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["received"], 200, "{r}");
    assert_eq!(
        (r["lost"].as_u64(), r["duplicates"].as_u64()),
        (Some(0), Some(0)),
        "{r}"
    );
    assert!(r["latency_us"]["p99"].as_u64().is_some());
    stop(server);
}
