//! Listener configuration: `[listeners.tcp.NAME]`, `[listeners.ssl.NAME]`,
//! `[listeners.ws.NAME]`, `[listeners.wss.NAME]`. Each type is a struct of its own (serde's
//! `flatten` does not work with `deny_unknown_fields`); the TLS and WebSocket keys are
//! gathered into [`TlsOptions`] and [`WsOptions`] for the transport code.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

const DEFAULT_MAX_CONNECTIONS: usize = 1_000_000;
const DEFAULT_PROXY_TIMEOUT: u64 = 3;

fn any(port: u16) -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], port))
}

/// One plain TCP listener (`[listeners.tcp.NAME]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TcpListenerConfig {
    /// Address to listen on, e.g. "0.0.0.0:1883".
    pub bind: SocketAddr,
    /// Connections accepted at once on this listener; further ones wait in the backlog.
    pub max_connections: usize,
    /// New connections accepted per second on this listener (0: no limit); more wait
    /// in the backlog.
    pub max_conn_rate: u64,
    /// Overrides `[authentication] allow_anonymous` for this listener's clients.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_anonymous: Option<bool>,
    /// Expect a PROXY protocol v1 or v2 header (from a load balancer) first on every
    /// connection; the client address it carries becomes the peer address.
    pub proxy_protocol: bool,
    /// Seconds to wait for the PROXY header.
    pub proxy_protocol_timeout: u64,
}

impl Default for TcpListenerConfig {
    fn default() -> Self {
        TcpListenerConfig {
            bind: any(1883),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_conn_rate: 0,
            allow_anonymous: None,
            proxy_protocol: false,
            proxy_protocol_timeout: DEFAULT_PROXY_TIMEOUT,
        }
    }
}

/// Whether an ssl/wss listener asks clients for a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Verify {
    /// No client certificate is requested.
    #[default]
    VerifyNone,
    /// A client certificate is requested and must chain to `cacertfile`.
    VerifyPeer,
}

/// Which part of a client certificate replaces the username or client id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerCertField {
    /// The subject's common name.
    Cn,
    /// The whole subject distinguished name (RFC 4514, e.g. "CN=dev1,O=Fleet").
    Dn,
    /// The first subject alternative name (DNS name, else e-mail, else URI).
    San,
}

/// One TLS listener (`[listeners.ssl.NAME]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SslListenerConfig {
    pub bind: SocketAddr,
    pub max_connections: usize,
    /// New connections accepted per second on this listener (0: no limit); more wait
    /// in the backlog.
    pub max_conn_rate: u64,
    /// Overrides `[authentication] allow_anonymous` for this listener's clients.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_anonymous: Option<bool>,
    pub proxy_protocol: bool,
    pub proxy_protocol_timeout: u64,
    /// PEM certificate chain of the server (leaf first).
    pub certfile: PathBuf,
    /// PEM private key of the server (PKCS#8, PKCS#1 or SEC1).
    pub keyfile: PathBuf,
    /// PEM CA certificates that client certificates must chain to (needed by `verify_peer`).
    pub cacertfile: Option<PathBuf>,
    pub verify: Verify,
    /// With `verify_peer`: refuse clients that send no certificate.
    pub fail_if_no_peer_cert: bool,
    pub peer_cert_as_username: Option<PeerCertField>,
    pub peer_cert_as_clientid: Option<PeerCertField>,
}

impl Default for SslListenerConfig {
    fn default() -> Self {
        SslListenerConfig {
            bind: any(8883),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_conn_rate: 0,
            allow_anonymous: None,
            proxy_protocol: false,
            proxy_protocol_timeout: DEFAULT_PROXY_TIMEOUT,
            certfile: PathBuf::new(),
            keyfile: PathBuf::new(),
            cacertfile: None,
            verify: Verify::VerifyNone,
            fail_if_no_peer_cert: false,
            peer_cert_as_username: None,
            peer_cert_as_clientid: None,
        }
    }
}

/// One MQTT-over-WebSocket listener (`[listeners.ws.NAME]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WsListenerConfig {
    pub bind: SocketAddr,
    pub max_connections: usize,
    /// New connections accepted per second on this listener (0: no limit); more wait
    /// in the backlog.
    pub max_conn_rate: u64,
    /// Overrides `[authentication] allow_anonymous` for this listener's clients.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_anonymous: Option<bool>,
    pub proxy_protocol: bool,
    pub proxy_protocol_timeout: u64,
    /// HTTP path of the upgrade request; other paths get 404.
    pub path: String,
}

impl Default for WsListenerConfig {
    fn default() -> Self {
        WsListenerConfig {
            bind: any(8083),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_conn_rate: 0,
            allow_anonymous: None,
            proxy_protocol: false,
            proxy_protocol_timeout: DEFAULT_PROXY_TIMEOUT,
            path: "/mqtt".into(),
        }
    }
}

/// One MQTT-over-secure-WebSocket listener (`[listeners.wss.NAME]`): the `ws` keys plus
/// the `ssl` ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WssListenerConfig {
    pub bind: SocketAddr,
    pub max_connections: usize,
    /// New connections accepted per second on this listener (0: no limit); more wait
    /// in the backlog.
    pub max_conn_rate: u64,
    /// Overrides `[authentication] allow_anonymous` for this listener's clients.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_anonymous: Option<bool>,
    pub proxy_protocol: bool,
    pub proxy_protocol_timeout: u64,
    pub path: String,
    pub certfile: PathBuf,
    pub keyfile: PathBuf,
    pub cacertfile: Option<PathBuf>,
    pub verify: Verify,
    pub fail_if_no_peer_cert: bool,
    pub peer_cert_as_username: Option<PeerCertField>,
    pub peer_cert_as_clientid: Option<PeerCertField>,
}

impl Default for WssListenerConfig {
    fn default() -> Self {
        WssListenerConfig {
            bind: any(8084),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_conn_rate: 0,
            allow_anonymous: None,
            proxy_protocol: false,
            proxy_protocol_timeout: DEFAULT_PROXY_TIMEOUT,
            path: "/mqtt".into(),
            certfile: PathBuf::new(),
            keyfile: PathBuf::new(),
            cacertfile: None,
            verify: Verify::VerifyNone,
            fail_if_no_peer_cert: false,
            peer_cert_as_username: None,
            peer_cert_as_clientid: None,
        }
    }
}

/// The TLS keys of an ssl or wss listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOptions {
    pub certfile: PathBuf,
    pub keyfile: PathBuf,
    pub cacertfile: Option<PathBuf>,
    pub verify: Verify,
    pub fail_if_no_peer_cert: bool,
    pub peer_cert_as_username: Option<PeerCertField>,
    pub peer_cert_as_clientid: Option<PeerCertField>,
}

/// The WebSocket keys of a ws or wss listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsOptions {
    pub path: String,
}

/// The keys every listener type has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Common {
    pub bind: SocketAddr,
    pub max_connections: usize,
    /// New connections per second (0: no limit).
    pub max_conn_rate: u64,
    /// Overrides `[authentication] allow_anonymous`.
    pub allow_anonymous: Option<bool>,
    /// `Some(timeout)` when the PROXY protocol is on.
    pub proxy: Option<Duration>,
}

fn common(
    bind: SocketAddr,
    max: usize,
    (rate, allow_anonymous): (u64, Option<bool>),
    proxy: bool,
    timeout: u64,
) -> Common {
    Common {
        bind,
        max_connections: max,
        max_conn_rate: rate,
        allow_anonymous,
        proxy: proxy.then(|| Duration::from_secs(timeout)),
    }
}

impl TcpListenerConfig {
    pub fn common(&self) -> Common {
        common(
            self.bind,
            self.max_connections,
            (self.max_conn_rate, self.allow_anonymous),
            self.proxy_protocol,
            self.proxy_protocol_timeout,
        )
    }
}

impl WsListenerConfig {
    pub fn common(&self) -> Common {
        common(
            self.bind,
            self.max_connections,
            (self.max_conn_rate, self.allow_anonymous),
            self.proxy_protocol,
            self.proxy_protocol_timeout,
        )
    }
    pub fn ws(&self) -> WsOptions {
        WsOptions {
            path: self.path.clone(),
        }
    }
}

macro_rules! tls_keys {
    ($t:ty) => {
        impl $t {
            pub fn common(&self) -> Common {
                common(
                    self.bind,
                    self.max_connections,
                    (self.max_conn_rate, self.allow_anonymous),
                    self.proxy_protocol,
                    self.proxy_protocol_timeout,
                )
            }
            pub fn tls(&self) -> TlsOptions {
                TlsOptions {
                    certfile: self.certfile.clone(),
                    keyfile: self.keyfile.clone(),
                    cacertfile: self.cacertfile.clone(),
                    verify: self.verify,
                    fail_if_no_peer_cert: self.fail_if_no_peer_cert,
                    peer_cert_as_username: self.peer_cert_as_username,
                    peer_cert_as_clientid: self.peer_cert_as_clientid,
                }
            }
        }
    };
}
tls_keys!(SslListenerConfig);
tls_keys!(WssListenerConfig);

impl WssListenerConfig {
    pub fn ws(&self) -> WsOptions {
        WsOptions {
            path: self.path.clone(),
        }
    }
}

/// Problems with the keys every listener has and with the WebSocket path (the TLS files
/// are checked by [`crate::tls::TlsConfig::load`]), each prefixed with `key` (e.g.
/// "listeners.ws.default").
pub fn check_common(key: &str, c: &Common, ws: Option<&WsOptions>) -> Vec<String> {
    let mut problems = Vec::new();
    if c.max_connections == 0 {
        problems.push(format!("{key}.max_connections: must be at least 1"));
    }
    if let Some(t) = c.proxy
        && t.is_zero()
    {
        problems.push(format!("{key}.proxy_protocol_timeout: must be at least 1"));
    }
    if let Some(ws) = ws
        && !ws.path.starts_with('/')
    {
        problems.push(format!("{key}.path: {:?} must start with \"/\"", ws.path));
    }
    problems
}
