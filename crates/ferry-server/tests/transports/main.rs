//! Every transport with independent clients: mosquitto_pub/mosquitto_sub over TLS (with a
//! CA file, with a client certificate whose CN becomes the username, refused without one),
//! WebSocket and secure WebSocket clients (tokio-tungstenite) publishing to TCP and
//! WebSocket subscribers, bad input closing only its own connection, certificate reload
//! without dropping connections, and PROXY protocol v1/v2 setting the peer address.

mod kit;

use std::process::Stdio;
use std::time::Duration;

use ferry_broker::BrokerMetric;
use ferry_mqtt::Version;
use ferry_server::{Endpoint, PeerCertField, SslListenerConfig, Verify, WsListenerConfig};
use ferry_server::{TcpListenerConfig, WssListenerConfig};
use ferry_testkit::{RawClient, wait_until};
use futures_util::SinkExt as _;
use kit::{Client, Pki, Server, Stream, tls_connect, ws_connect};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::Command;
use tokio_tungstenite::tungstenite::Message;

const LIMIT: Duration = Duration::from_secs(10);

fn ssl(server: &kit::Leaf) -> SslListenerConfig {
    SslListenerConfig {
        certfile: server.cert.clone(),
        keyfile: server.key.clone(),
        ..Default::default()
    }
}

fn mosquitto(bin: &str, args: &[String]) -> Command {
    let mut c = Command::new(bin);
    c.args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    c
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Waits for an EOF or error on a stream the server should have closed.
async fn closed<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> bool {
    let mut b = [0u8; 1024];
    loop {
        match tokio::time::timeout(LIMIT, s.read(&mut b)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_over_tls_with_cafile_client_certificate_as_username_and_refused_without()
-> anyhow::Result<()> {
    let pki = Pki::new("Ferry test CA")?;
    let server = pki.leaf("server", "localhost", true)?;
    let client = pki.leaf("client", "vehicle-7", false)?;
    let mut s = Server::new();
    let open = s.listen(Endpoint::ssl("open", &ssl(&server))?).await?;
    let strict_cfg = SslListenerConfig {
        cacertfile: Some(pki.ca_file()),
        verify: Verify::VerifyPeer,
        fail_if_no_peer_cert: true,
        peer_cert_as_username: Some(PeerCertField::Cn),
        ..ssl(&server)
    };
    let strict = s.listen(Endpoint::ssl("strict", &strict_cfg)?).await?;
    let ca = pki.ca_file().display().to_string();
    let (cert, key) = (
        client.cert.display().to_string(),
        client.key.display().to_string(),
    );

    // A subscriber with a client certificate: its CN is its username.
    let before = s.broker.subscription_count();
    let mut sub_args = args(&["-h", "localhost", "-t", "fleet/#", "-C", "2", "-W", "20"]);
    sub_args.extend(args(&[
        "-i", "tls-sub", "--cafile", &ca, "--cert", &cert, "--key", &key,
    ]));
    sub_args.extend(args(&["-p", &strict.port().to_string()]));
    let sub = mosquitto("mosquitto_sub", &sub_args).spawn()?;
    let broker = s.broker.clone();
    wait_until("mosquitto_sub subscribed over TLS", LIMIT, || {
        broker.subscription_count() > before
    })
    .await;
    let info = s.broker.client("tls-sub").expect("tls-sub is known").client;
    assert_eq!(info.username.as_deref(), Some("vehicle-7"));

    // A publisher that only knows the CA, on the listener that asks for no certificate.
    let p = open.port().to_string();
    let out = mosquitto(
        "mosquitto_pub",
        &args(&[
            "-h",
            "localhost",
            "-p",
            &p,
            "--cafile",
            &ca,
            "-t",
            "fleet/a",
            "-m",
            "one",
            "-q",
            "1",
        ]),
    )
    .output()
    .await?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // And one with its certificate on the strict listener.
    let p = strict.port().to_string();
    let mut pub_args = args(&[
        "-h",
        "localhost",
        "-p",
        &p,
        "--cafile",
        &ca,
        "--cert",
        &cert,
    ]);
    pub_args.extend(args(&[
        "--key", &key, "-t", "fleet/b", "-m", "two", "-q", "1",
    ]));
    let out = mosquitto("mosquitto_pub", &pub_args).output().await?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = tokio::time::timeout(Duration::from_secs(20), sub.wait_with_output()).await??;
    assert_eq!(String::from_utf8_lossy(&got.stdout), "one\ntwo\n");

    // No client certificate on the strict listener: refused in the handshake, counted.
    let failed = s.metric(BrokerMetric::HandshakeFailedTls);
    let out = mosquitto(
        "mosquitto_pub",
        &args(&[
            "-h",
            "localhost",
            "-p",
            &p,
            "--cafile",
            &ca,
            "-t",
            "fleet/c",
            "-m",
            "x",
            "-q",
            "1",
        ]),
    )
    .output()
    .await?;
    assert!(
        !out.status.success(),
        "a client without a certificate got in"
    );
    let m = s.broker.clone();
    wait_until("the refused handshake is counted", LIMIT, || {
        m.metrics().get(BrokerMetric::HandshakeFailedTls) > failed
    })
    .await;
    s.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_and_wss_clients_publish_and_subscribe_across_transports() -> anyhow::Result<()> {
    let pki = Pki::new("Ferry test CA")?;
    let server = pki.leaf("server", "localhost", true)?;
    let mut s = Server::new();
    let tcp = s
        .listen(Endpoint::tcp("t", &TcpListenerConfig::default()))
        .await?;
    let ws = s
        .listen(Endpoint::ws("w", &WsListenerConfig::default()))
        .await?;
    let wss_cfg = WssListenerConfig {
        certfile: server.cert.clone(),
        keyfile: server.key.clone(),
        ..Default::default()
    };
    let wss = s.listen(Endpoint::wss("ws", &wss_cfg)?).await?;

    let (mut tcp_sub, _) = RawClient::connect(tcp, Version::V311, "tcp-sub", true).await?;
    tcp_sub
        .subscribe("cross/#", ferry_mqtt::QoS::AtLeastOnce)
        .await?;
    // Paho and older Mosquitto clients offer "mqttv3.1"; the standard name is "mqtt".
    let (w, chosen) = ws_connect(TcpStream::connect(ws).await?, "mqttv3.1").await?;
    assert_eq!(chosen.as_deref(), Some("mqttv3.1"));
    let mut ws_sub = Client::connect(w, "ws-sub").await?;
    ws_sub.subscribe("cross/#").await?;

    let tls = tls_connect(&pki.client(None)?, wss).await?;
    let (w, chosen) = ws_connect(tls, "mqtt").await?;
    assert_eq!(chosen.as_deref(), Some("mqtt"));
    let mut wss_pub = Client::connect(w, "wss-pub").await?;
    wss_pub.publish("cross/wss", b"from wss").await?;

    let got = tcp_sub.recv_publish().await?;
    assert_eq!(
        (got.topic.as_str(), &got.payload[..]),
        ("cross/wss", &b"from wss"[..])
    );
    assert_eq!(
        ws_sub.next_message().await?,
        ("cross/wss".into(), b"from wss".to_vec())
    );
    // And back: a TCP publisher reaches the WebSocket subscriber.
    let (mut tcp_pub, _) = RawClient::connect(tcp, Version::V311, "tcp-pub", true).await?;
    let p = ferry_testkit::publish_packet(
        "cross/tcp",
        b"from tcp",
        ferry_mqtt::QoS::AtMostOnce,
        false,
        0,
    );
    tcp_pub.send(&ferry_mqtt::Packet::Publish(p)).await?;
    assert_eq!(
        ws_sub.next_message().await?,
        ("cross/tcp".into(), b"from tcp".to_vec())
    );
    s.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_closes_only_its_own_connection_and_is_counted() -> anyhow::Result<()> {
    let pki = Pki::new("Ferry test CA")?;
    let rogue = Pki::new("Someone else")?;
    let server = pki.leaf("server", "localhost", true)?;
    let intruder = rogue.leaf("intruder", "intruder", false)?;
    let mut s = Server::new();
    let tcp = s
        .listen(Endpoint::tcp("t", &TcpListenerConfig::default()))
        .await?;
    let ws = s
        .listen(Endpoint::ws("w", &WsListenerConfig::default()))
        .await?;
    let strict = SslListenerConfig {
        cacertfile: Some(pki.ca_file()),
        verify: Verify::VerifyPeer,
        fail_if_no_peer_cert: true,
        ..ssl(&server)
    };
    let ssl_addr = s.listen(Endpoint::ssl("s", &strict)?).await?;

    // Bystanders on TCP and WebSocket.
    let (mut tcp_sub, _) = RawClient::connect(tcp, Version::V311, "bystander", true).await?;
    tcp_sub
        .subscribe("ok/#", ferry_mqtt::QoS::AtLeastOnce)
        .await?;
    let (w, _) = ws_connect(TcpStream::connect(ws).await?, "mqtt").await?;
    let mut ws_pub = Client::connect(w, "ws-bystander").await?;

    // Garbage instead of an upgrade.
    let mut g = TcpStream::connect(ws).await?;
    g.write_all(b"\x10\x0c\x00\x04MQTT not http at all\r\n\r\n")
        .await?;
    assert!(closed(&mut g).await, "garbage upgrade left open");
    // A path that is not /mqtt.
    let mut g = TcpStream::connect(ws).await?;
    g.write_all(b"GET /other HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").await?;
    let mut answer = String::new();
    g.read_to_string(&mut answer).await?;
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    let m = s.broker.clone();
    wait_until("two failed upgrades counted", LIMIT, || {
        m.metrics().get(BrokerMetric::HandshakeFailedWebsocket) == 2
    })
    .await;

    // A text frame after CONNECT, and a frame over the limit.
    let (w, _) = ws_connect(TcpStream::connect(ws).await?, "mqtt").await?;
    let mut texter = Client::connect(w, "texter").await?;
    texter.wire.0.send(Message::Text("hello".into())).await?;
    assert!(texter.recv().await.is_err(), "a text frame was accepted");
    let (w, _) = ws_connect(TcpStream::connect(ws).await?, "mqtt").await?;
    let mut big = Client::connect(w, "big").await?;
    let _ = big
        .wire
        .0
        .send(Message::Binary(vec![0u8; 2 << 20].into()))
        .await;
    assert!(big.recv().await.is_err(), "an oversized frame was accepted");
    wait_until("bad frames counted by reason", LIMIT, || {
        m.metrics().get(BrokerMetric::WebsocketNotBinary) == 1
            && m.metrics().get(BrokerMetric::WebsocketFrameTooLarge) == 1
    })
    .await;

    // A TLS client whose certificate another CA signed, and one that does not speak TLS.
    assert!(
        async {
            let mut t = tls_connect(&rogue.client(Some(&intruder))?, ssl_addr).await?;
            // TLS 1.3: the client learns of the refusal on its first read.
            t.write_all(b"\x10").await?;
            let mut b = [0u8; 1];
            let n = t.read(&mut b).await?;
            anyhow::ensure!(n > 0, "closed");
            Ok::<_, anyhow::Error>(())
        }
        .await
        .is_err(),
        "a certificate from another CA was accepted"
    );
    let mut plain = TcpStream::connect(ssl_addr).await?;
    plain
        .write_all(b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00")
        .await?;
    assert!(
        closed(&mut plain).await,
        "plain MQTT on the TLS port left open"
    );
    wait_until("failed TLS handshakes counted", LIMIT, || {
        m.metrics().get(BrokerMetric::HandshakeFailedTls) >= 2
    })
    .await;

    // The bystanders never noticed.
    ws_pub.publish("ok/still", b"fine").await?;
    let got = tcp_sub.recv_publish().await?;
    assert_eq!(&got.payload[..], b"fine");
    assert!(s.broker.client("bystander").is_some_and(|c| c.connected));
    s.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_certificate_files_are_used_by_new_handshakes_while_old_connections_stay()
-> anyhow::Result<()> {
    let pki = Pki::new("Ferry test CA")?;
    let first = pki.leaf("server", "localhost", true)?;
    let mut s = Server::new();
    let ep = Endpoint::ssl("s", &ssl(&first))?;
    let tls_cfg = ep.tls().expect("an ssl endpoint has TLS");
    let addr = s.listen(ep).await?;
    let connector = pki.client(None)?;

    let old = tls_connect(&connector, addr).await?;
    let leaf = |t: &kit::Tls| {
        t.get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first().cloned())
    };
    assert_eq!(leaf(&old), Some(first.der.clone()));
    let mut old = Client::connect(Stream(old), "old").await?;

    // Replace both files (same names): the listener notices within its poll interval.
    let second = pki.leaf("server", "localhost", true)?;
    assert_ne!(first.der, second.der);
    let m = s.broker.clone();
    wait_until("the changed files are reloaded", LIMIT, || {
        m.metrics().get(BrokerMetric::CertReloaded) == 1
    })
    .await;
    let new = tls_connect(&connector, addr).await?;
    assert_eq!(leaf(&new), Some(second.der.clone()));
    let mut new = Client::connect(Stream(new), "new").await?;
    new.subscribe("reload/#").await?;
    old.ping().await?;
    old.publish("reload/x", b"old connection still works")
        .await?;
    assert_eq!(new.next_message().await?.1, b"old connection still works");

    // A broken file is refused and the current certificate stays (also on SIGHUP's path).
    std::fs::write(&second.cert, "not a certificate")?;
    let e = tls_cfg
        .reload()
        .expect_err("a broken certfile was accepted");
    assert!(e.to_string().contains("certfile"), "{e}");
    let again = tls_connect(&connector, addr).await?;
    assert_eq!(leaf(&again), Some(second.der.clone()));
    s.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_protocol_v1_and_v2_headers_set_the_peer_address() -> anyhow::Result<()> {
    let mut s = Server::new();
    let cfg = TcpListenerConfig {
        proxy_protocol: true,
        ..Default::default()
    };
    let addr = s.listen(Endpoint::tcp("lb", &cfg)).await?;

    let mut t = TcpStream::connect(addr).await?;
    t.write_all(b"PROXY TCP4 192.0.2.7 198.51.100.1 40000 1883\r\n")
        .await?;
    let mut v1 = Client::connect(Stream(t), "via-v1").await?;
    v1.ping().await?;
    let peer = s.broker.client("via-v1").expect("via-v1").client.peer;
    assert_eq!(peer, Some("192.0.2.7:40000".parse()?));

    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.extend_from_slice(&[0x21, 0x21, 0, 36]);
    h.extend_from_slice(&"2001:db8::5".parse::<std::net::Ipv6Addr>()?.octets());
    h.extend_from_slice(&"2001:db8::1".parse::<std::net::Ipv6Addr>()?.octets());
    h.extend_from_slice(&5555u16.to_be_bytes());
    h.extend_from_slice(&1883u16.to_be_bytes());
    let mut t = TcpStream::connect(addr).await?;
    t.write_all(&h).await?;
    let _v2 = Client::connect(Stream(t), "via-v2").await?;
    let info = s.broker.client("via-v2").expect("via-v2").client;
    assert_eq!(info.peer, Some("[2001:db8::5]:5555".parse()?));
    assert_eq!(info.local, Some("[2001:db8::1]:1883".parse()?));

    // No header: that connection is closed and counted; the others go on.
    let mut bare = TcpStream::connect(addr).await?;
    bare.write_all(b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00")
        .await?;
    assert!(closed(&mut bare).await);
    assert_eq!(s.metric(BrokerMetric::HandshakeFailedProxy), 1);
    v1.ping().await?;
    s.stop().await;
    Ok(())
}
