//! The CONNECT handshake: reading the first packet within `connect_timeout`, validating it,
//! attaching the session, and refusing with a CONNACK reason code.

use super::*;

/// Sends a refusing CONNACK (best effort: the connection closes either way).
pub(super) async fn refuse<W: AsyncWrite + Unpin>(wr: &mut W, version: Version, code: u8) {
    let mut out = BytesMut::new();
    let p = Packet::ConnAck(ConnAck {
        session_present: false,
        code,
        properties: Properties::default(),
    });
    if ferry_mqtt::encode(&p, version, &mut out).is_ok() {
        let _ = timeout(Duration::from_secs(5), async {
            wr.write_all(&out).await?;
            wr.shutdown().await
        })
        .await;
    }
}

pub(super) struct ConnectFailure {
    /// CONNACK to send before closing, if the version is known well enough to answer.
    pub(super) connack: Option<(Version, u8)>,
    /// A CONNECT of an unsupported protocol level that otherwise parses (as MQTT 3.1.1
    /// does, like EMQX): who is refused, for the `client_connack` hook.
    pub(super) refused: Option<(Box<Connect>, u8)>,
    pub(super) why: String,
}

/// Reads a CONNECT of unsupported protocol `level` as if it were 3.1.1 (or 3.1 for
/// `MQIsdp`), keeping `level` as its version: what EMQX knows of such a client when it
/// refuses it.
fn unsupported_connect(header: u8, body: &[u8], level: u8) -> Option<(Box<Connect>, u8)> {
    let name_len = usize::from(u16::from_be_bytes([*body.first()?, *body.get(1)?]));
    let name = body.get(2..2 + name_len)?;
    let mut patched = body.to_vec();
    *patched.get_mut(2 + name_len)? = if name == b"MQIsdp" { 3 } else { 4 };
    let frame = ferry_mqtt::Frame {
        header,
        body: patched.into(),
    };
    match ferry_mqtt::parse(frame, Version::V311) {
        Ok(Packet::Connect(c)) => Some((c, level)),
        _ => None,
    }
}

/// Reads until CONNECT; `read` counts the bytes read (CONNECT and whatever came with it).
pub(super) async fn read_connect<R: AsyncRead + Unpin>(
    rd: &mut R,
    rbuf: &mut BytesMut,
    cfg: &MqttConfig,
    read: &mut u64,
) -> Result<Box<Connect>, ConnectFailure> {
    let fail = |connack, why: String| ConnectFailure {
        connack,
        refused: None,
        why,
    };
    let deadline = Instant::now() + Duration::from_secs(u64::from(cfg.connect_timeout));
    loop {
        match ferry_mqtt::read_frame(rbuf, cfg.max_packet_size) {
            Ok(Some(frame)) => {
                if frame.header >> 4 != 1 {
                    return Err(fail(None, "first packet is not CONNECT".into()));
                }
                let (header, body) = (frame.header, frame.body.clone());
                return match ferry_mqtt::parse(frame, Version::V311) {
                    Ok(Packet::Connect(c)) => Ok(c),
                    Ok(_) => Err(fail(None, "first packet is not CONNECT".into())),
                    Err(DecodeError::UnsupportedVersion(l)) => Err(ConnectFailure {
                        connack: Some((Version::V311, reason::UNSUPPORTED_PROTOCOL_VERSION)),
                        refused: unsupported_connect(header, &body, l),
                        why: format!("unsupported protocol level {l}"),
                    }),
                    Err(e) => Err(fail(None, e.to_string())),
                };
            }
            Ok(None) => {}
            Err(e) => return Err(fail(None, e.to_string())),
        }
        match tokio::time::timeout_at(deadline, super::io::read_into(rd, rbuf)).await {
            Err(_) => return Err(fail(None, "no CONNECT within connect_timeout".into())),
            Ok(Ok(0)) => return Err(fail(None, "closed before CONNECT".into())),
            Ok(Ok(n)) => *read += n as u64,
            Ok(Err(e)) => return Err(fail(None, e.to_string())),
        }
    }
}

impl Conn {
    /// Validates CONNECT, authenticates it (awaiting the broker's authentication chain),
    /// attaches the session and queues CONNACK plus any redelivery.
    /// On refusal returns the version to answer in and the reason code.
    pub(super) async fn accept(
        broker: Arc<Broker>,
        mut c: Connect,
        who: Peer,
    ) -> Result<Conn, (Version, u8, String)> {
        let (peer, local) = (who.addr, who.local);
        let who_anonymous = who.allow_anonymous;
        let cfg = broker.config();
        // The certificate's identity wins over what the client claims.
        if let Some(u) = who.username {
            c.username = Some(u);
        }
        if let Some(id) = who.client_id {
            c.client_id = id;
        }
        let v = c.version;
        let v5 = v.is_v5();
        let refuse = |code: u8, why: &str| {
            broker.connack(&ClientInfo::from_connect(&c, peer, local), code);
            Err((v, code, why.to_owned()))
        };
        if c.properties.authentication_method.is_some() {
            return refuse(
                reason::BAD_AUTHENTICATION_METHOD,
                "enhanced authentication is not supported",
            );
        }
        if let Some(w) = &c.will {
            if validate_name(&w.topic).is_err() {
                return refuse(reason::TOPIC_NAME_INVALID, "invalid will topic");
            }
            if w.retain && !cfg.retain_available {
                return refuse(
                    reason::RETAIN_NOT_SUPPORTED,
                    "retained will but retain is not available",
                );
            }
        }
        if c.client_id.len() > cfg.max_clientid_len {
            return refuse(reason::CLIENT_IDENTIFIER_NOT_VALID, "client id too long");
        }
        let mut properties = Properties::default();
        let client_id: Arc<str> = if c.client_id.is_empty() {
            if !v5 && !c.clean_start {
                return refuse(
                    reason::CLIENT_IDENTIFIER_NOT_VALID,
                    "empty client id requires clean session",
                );
            }
            let id = generate_client_id();
            if v5 {
                properties.assigned_client_identifier = Some(id.clone());
            }
            id.into()
        } else {
            c.client_id.as_str().into()
        };
        if let Some(why) = broker
            .banned()
            .check(&client_id, c.username.as_deref(), Some(peer.ip()))
        {
            broker.metrics().inc(BrokerMetric::RefusedBanned);
            return refuse(reason::BANNED, &format!("banned ({why})"));
        }
        let asked = if v5 {
            c.properties.session_expiry_interval.unwrap_or(0)
        } else if c.clean_start {
            0
        } else {
            cfg.session_expiry_interval
        };
        let expiry = asked.min(cfg.max_session_expiry_interval);
        if v5 && expiry < asked {
            properties.session_expiry_interval = Some(expiry);
        }
        let mut keep_alive = c.keep_alive;
        let max = cfg.max_keepalive;
        if max > 0 && (keep_alive > max || keep_alive == 0) {
            if v5 {
                keep_alive = max;
                properties.server_keep_alive = Some(max);
            } else if keep_alive > max {
                return refuse(
                    reason::CLIENT_IDENTIFIER_NOT_VALID,
                    &format!("keep alive {keep_alive} s is above mqtt.max_keepalive ({max} s)"),
                );
            }
        }
        if v5 && let Some(k) = cfg.server_keepalive {
            keep_alive = k;
            properties.server_keep_alive = Some(k);
        }
        if v5 {
            if cfg.receive_maximum != u16::MAX {
                properties.receive_maximum = Some(cfg.receive_maximum);
            }
            if cfg.max_topic_alias > 0 {
                properties.topic_alias_maximum = Some(cfg.max_topic_alias);
            }
            properties.maximum_packet_size = Some(cfg.max_packet_size);
            if !cfg.retain_available {
                properties.retain_available = Some(0);
            }
            if !cfg.shared_subscription {
                properties.shared_subscription_available = Some(0);
            }
        }
        let mut client = ClientInfo {
            client_id: client_id.clone(),
            username: c.username.as_deref().map(Arc::from),
            peer: Some(peer),
            local,
            proto_ver: v.level(),
            keepalive: keep_alive,
            clean_start: c.clean_start,
            expiry_interval: expiry,
            connected_at: ferry_broker::hook::now_ms(),
            conn_props: ferry_broker::hook::boxed_props(&c.properties),
            auth: Arc::default(),
        };
        let (authn, auth) = broker
            .authenticate(&client, c.password.as_deref(), who_anonymous)
            .await;
        if let code @ 1.. = authn.reason_code {
            return refuse(code, "not authenticated");
        }
        client.auth = auth;
        let client = Arc::new(client);
        let attached = broker.connect(client.clone());
        let client_receive_max = c.properties.receive_maximum.unwrap_or(u16::MAX);
        attached
            .session
            .lock()
            .set_inflight_window(client_receive_max.min(cfg.max_inflight));
        let mut conn = Conn {
            version: v,
            client,
            session: attached.session,
            conn_id: attached.conn_id,
            will: c.will.map(Box::new),
            keep_alive: (keep_alive > 0)
                .then(|| Duration::from_secs_f32(f32::from(keep_alive) * cfg.keepalive_multiplier)),
            connect_expiry_zero: expiry == 0,
            disconn_props: None,
            client_receive_max,
            client_max_packet: c.properties.maximum_packet_size.unwrap_or(u32::MAX),
            client_alias_max: c.properties.topic_alias_maximum.unwrap_or(0),
            aliases: None,
            rbuf: BytesMut::new(),
            wbuf: BytesMut::new(),
            unflushed: false,
            pending: VecDeque::new(),
            holding: 0,
            rates: Rates::new(cfg),
            traffic: Traffic::default(),
            read_at: Instant::now(),
            read_ms: ferry_broker::hook::now_ms(),
            broker,
        };
        tracing::debug!(client_id = %client_id, %peer, version = %v, "client connected");
        conn.broker.connack(&conn.client, reason::SUCCESS);
        conn.send(&Packet::ConnAck(ConnAck {
            session_present: attached.session_present,
            code: reason::SUCCESS,
            properties,
        }));
        for h in conn.broker.hooks() {
            h.client_connected(&conn.client);
        }
        if attached.session_present {
            let resend = conn.session.lock().resend_all();
            for o in resend {
                conn.write_outgoing(o);
            }
        }
        Ok(conn)
    }
}

/// A client id for clients that sent none (EMQX-like: unique per process run).
fn generate_client_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("ferry-{:x}-{n}", t & 0xffff_ffff_ffff)
}
