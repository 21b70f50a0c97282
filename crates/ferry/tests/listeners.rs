//! The listeners through the real binary: an ssl listener from the config file serving
//! mosquitto_pub, its certificate replaced and SIGHUP sent (new handshakes use the new
//! one), and `ferry config check` naming a missing certificate file.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn publish(port: u16, cafile: &Path) -> bool {
    Command::new("mosquitto_pub")
        .args([
            "-h",
            "localhost",
            "-p",
            &port.to_string(),
            "-t",
            "t",
            "-m",
            "x",
            "-q",
            "1",
        ])
        .arg("--cafile")
        .arg(cafile)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssl_listener_from_the_config_serves_mosquitto_and_reloads_on_sighup() -> anyhow::Result<()>
{
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    common::make_cert(d, "server")?;
    common::make_cert(d, "next")?;
    std::fs::copy(d.join("server.pem"), d.join("first-ca.pem"))?;
    let cfg = d.join("ferry.toml");
    std::fs::write(
        &cfg,
        format!(
            "[node]\ndata_dir = {:?}\npersistence = false\n[api]\nenable = false\n\
             [listeners.ssl.s]\nbind = \"127.0.0.1:0\"\ncertfile = {:?}\nkeyfile = {:?}\n",
            d.join("data"),
            d.join("server.pem"),
            d.join("server.key"),
        ),
    )?;
    let (mut child, addr) = common::serve_binary(&cfg);
    let result = async {
        anyhow::ensure!(
            publish(addr.port(), &d.join("first-ca.pem")),
            "TLS publish failed"
        );
        // Install the next certificate (key first: a half-done change is refused and the
        // old certificate stays), then tell Ferry.
        std::fs::rename(d.join("next.key"), d.join("server.key"))?;
        std::fs::rename(d.join("next.pem"), d.join("server.pem"))?;
        let hup = Command::new("kill")
            .args(["-HUP", &child.id().to_string()])
            .status()?;
        anyhow::ensure!(hup.success(), "kill -HUP failed");
        let ca = d.join("server.pem");
        ferry_testkit::wait_until(
            "the new certificate is served",
            Duration::from_secs(10),
            || publish(addr.port(), &ca),
        )
        .await;
        anyhow::ensure!(
            !publish(addr.port(), &d.join("first-ca.pem")),
            "the old certificate is still served"
        );
        Ok(())
    }
    .await;
    let _ = child.kill();
    let _ = child.wait();
    result
}

#[test]
fn config_check_names_a_missing_certificate_file() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let cfg = dir.path().join("ferry.toml");
    std::fs::write(
        &cfg,
        "[listeners.wss.edge]\ncertfile = \"/nonexistent/server.pem\"\nkeyfile = \"/nonexistent/server.key\"\n",
    )?;
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["config", "check"])
        .arg(&cfg)
        .output()?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("listeners.wss.edge.certfile: cannot read /nonexistent/server.pem"),
        "{err}"
    );
    Ok(())
}
