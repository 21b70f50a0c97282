//! `ferry admins` as an operator runs it against a stopped Ferry's data dir.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use ferry_api::auth::{Auth, AuthSettings};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn admins(data: &Path, args: &[&str], stdin: Option<&str>) -> std::io::Result<Output> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .arg("admins")
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin.unwrap_or("").as_bytes())?;
    }
    child.wait_with_output()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn admins_passwd_list_add_del_work_on_the_data_dir() -> TestResult {
    let dir = tempfile::tempdir()?;
    let data = dir.path();

    let out = admins(data, &["list"], None)?;
    assert!(out.status.success(), "{}", text(&out));
    let listed = text(&out);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("admin ") && l.contains("administrator") && l.contains("true")),
        "the first use creates admin, change required:\n{listed}"
    );

    // From stdin; the policy names the rule it broke.
    let out = admins(data, &["passwd", "admin"], Some("public\n"))?;
    assert!(!out.status.success());
    assert!(
        text(&out).contains("must not be the default password"),
        "{}",
        text(&out)
    );
    let out = admins(data, &["passwd", "admin"], Some("n3w-Secret\n"))?;
    assert!(out.status.success(), "{}", text(&out));
    let out = admins(data, &["list"], None)?;
    assert!(
        text(&out)
            .lines()
            .any(|l| l.starts_with("admin ") && l.contains("false")),
        "{}",
        text(&out)
    );

    let out = admins(
        data,
        &["add", "vera", "--role", "viewer", "--password", "L00k-only"],
        None,
    )?;
    assert!(out.status.success(), "{}", text(&out));
    let out = admins(
        data,
        &["add", "x", "--role", "root", "--password", "L00k-only"],
        None,
    )?;
    assert!(!out.status.success());
    assert!(
        text(&out).contains("expected administrator or viewer"),
        "{}",
        text(&out)
    );
    let out = admins(
        data,
        &["passwd", "nobody", "--password", "n3w-Secret"],
        None,
    )?;
    assert!(!out.status.success());
    assert!(text(&out).contains("not found"), "{}", text(&out));

    let users = std::fs::read_to_string(data.join("api/users.json"))?;
    assert!(!users.contains("n3w-Secret") && !users.contains("L00k-only"));

    // What the running API will see.
    let auth = Auth::open(data, AuthSettings::default())?;
    let admin = auth.login("admin", "n3w-Secret")?;
    assert!(!admin.password_change_required);
    assert_eq!(auth.login("vera", "L00k-only")?.role.as_str(), "viewer");
    drop(auth);

    let out = admins(data, &["del", "admin"], None)?;
    assert!(!out.status.success(), "the last administrator stays");
    assert!(text(&out).contains("last administrator"), "{}", text(&out));
    let out = admins(data, &["del", "vera"], None)?;
    assert!(out.status.success(), "{}", text(&out));
    let out = admins(data, &["list"], None)?;
    assert!(!text(&out).contains("vera"), "{}", text(&out));
    Ok(())
}

#[test]
fn admins_with_the_config_uses_its_data_dir_and_default_user() -> TestResult {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("state");
    let cfg = dir.path().join("ferry.toml");
    std::fs::write(
        &cfg,
        format!(
            "[node]\ndata_dir = {:?}\n[api]\ndefault_username = \"root\"\n",
            data.display().to_string()
        ),
    )?;
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["admins", "list", "--config"])
        .arg(&cfg)
        .output()?;
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("root"), "{}", text(&out));
    assert!(data.join("api").join("users.json").exists());
    Ok(())
}
