//! MQTT over WebSocket and secure WebSocket with an independent client: Eclipse paho-mqtt
//! (Python, from the `.venv` that `./scripts/test` installs) against the real binary, MQTT
//! 3.1.1 and 5.0, a message crossing from one transport to the other.

mod common;

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};

const SCRIPT: &str = r#"
import queue, ssl, sys, time
import paho.mqtt.client as mqtt

ws_port, wss_port, ca = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]

def client(name, port, tls, protocol):
    got = queue.Queue()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=name, protocol=protocol,
                    transport="websockets")
    c.ws_set_options(path="/mqtt")
    if tls:
        c.tls_set(ca_certs=ca, cert_reqs=ssl.CERT_REQUIRED)
    connected = queue.Queue()
    c.on_connect = lambda cl, ud, flags, rc, props=None: connected.put(rc)
    c.on_message = lambda cl, ud, m: got.put((m.topic, m.payload))
    c.connect("localhost", port, keepalive=30)
    c.loop_start()
    rc = connected.get(timeout=10)
    assert not rc.is_failure, f"{name}: CONNACK {rc}"
    return c, got

for protocol, tag in [(mqtt.MQTTv311, "v311"), (mqtt.MQTTv5, "v5")]:
    for (sub_port, sub_tls), (pub_port, pub_tls) in [((ws_port, False), (wss_port, True)),
                                                     ((wss_port, True), (ws_port, False))]:
        topic = f"paho/{tag}/{sub_port}"
        sub, got = client(f"sub-{tag}-{sub_port}", sub_port, sub_tls, protocol)
        r = sub.subscribe(topic, qos=1)
        assert r[0] == mqtt.MQTT_ERR_SUCCESS, r
        # The SUBACK comes asynchronously: publish until the message arrives.
        pub, _ = client(f"pub-{tag}-{pub_port}", pub_port, pub_tls, protocol)
        deadline = time.time() + 10
        while True:
            info = pub.publish(topic, b"hello over " + tag.encode(), qos=1)
            info.wait_for_publish(timeout=10)
            try:
                t, payload = got.get(timeout=0.5)
                break
            except queue.Empty:
                assert time.time() < deadline, f"{topic}: nothing arrived"
        assert (t, payload) == (topic, b"hello over " + tag.encode()), (t, payload)
        for c in (sub, pub):
            c.disconnect()
            c.loop_stop()
print("ok")
"#;

fn python() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let py = root.join(".venv/bin/python");
    assert!(
        py.exists(),
        "{} is missing: run ./scripts/test once (it creates .venv with paho-mqtt)",
        py.display()
    );
    py
}

#[test]
fn paho_over_ws_and_wss_to_the_binary() -> anyhow::Result<()> {
    let py = python();
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    common::make_cert(d, "server")?;
    let cfg = d.join("ferry.toml");
    std::fs::write(
        &cfg,
        format!(
            "[node]\ndata_dir = {:?}\npersistence = false\n[api]\nenable = false\n\
             [listeners.ws.w]\nbind = \"127.0.0.1:0\"\n\
             [listeners.wss.s]\nbind = \"127.0.0.1:0\"\ncertfile = {:?}\nkeyfile = {:?}\n",
            d.join("data"),
            d.join("server.pem"),
            d.join("server.key"),
        ),
    )?;
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["serve", "--config"])
        .arg(&cfg)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let out = child.stdout.take().expect("piped");
    let ferry = common::Killed(child);
    let mut lines = BufReader::new(out).lines();
    let (mut ws, mut wss) = (None, None);
    while ws.is_none() || wss.is_none() {
        let line = lines.next().expect("a listening line")?;
        let rest = line
            .strip_prefix("ferry: listening on ")
            .expect("listening");
        let (addr, name) = rest.split_once(' ').expect("address and name");
        let addr: SocketAddr = addr.parse()?;
        match name {
            "(ws.w)" => ws = Some(addr.port()),
            "(wss.s)" => wss = Some(addr.port()),
            other => panic!("unexpected listener {other}"),
        }
    }
    let (ws, wss) = (ws.expect("ws"), wss.expect("wss"));
    let run = Command::new(py)
        .arg("-c")
        .arg(SCRIPT)
        .arg(ws.to_string())
        .arg(wss.to_string())
        .arg(d.join("server.pem"))
        .output()?;
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success() && stdout.trim() == "ok",
        "paho: {stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    ferry.kill()?;
    Ok(())
}
