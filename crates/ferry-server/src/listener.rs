//! Accept loops: one per listener, one task per connection. A connection first goes
//! through its listener's [`Transport`] (PROXY header, TLS handshake, WebSocket upgrade,
//! each within a deadline) and then into `connection::open` and `Live::run`, generic over the
//! resulting stream type.
//!
//! A failed handshake closes that connection only; it is counted in
//! `listener_handshake_failures_total{reason}`, logged at debug level each time and at warn
//! level at most once a minute per listener, so a scanner cannot flood the log.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ferry_broker::{Broker, BrokerMetric};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, timeout};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{
    SslListenerConfig, TcpListenerConfig, WsListenerConfig, WsOptions, WssListenerConfig,
};
use crate::connection::{self, Live, Peer};
use crate::tls::{TlsConfig, TlsError, peer_cert_field};
use crate::{proxy, ws};

/// How long the accept loop waits for its connections to finish after shutdown starts.
const DRAIN_DEADLINE: Duration = Duration::from_secs(5);
/// How often ssl/wss listeners look at their files' modification times.
pub const CERT_POLL_INTERVAL: Duration = Duration::from_secs(2);
const WARN_EVERY: Duration = Duration::from_secs(60);

/// What a listener speaks on top of TCP.
#[derive(Debug, Clone)]
pub enum Transport {
    Tcp,
    Ssl(Arc<TlsConfig>),
    Ws(WsOptions),
    Wss(Arc<TlsConfig>, WsOptions),
}

/// One configured listener, ready to [`serve`].
#[derive(Debug)]
pub struct Endpoint {
    /// "TYPE.NAME", e.g. "ssl.default" (for logs).
    pub name: String,
    pub transport: Transport,
    pub max_connections: usize,
    /// New connections per second (0: no limit).
    pub max_conn_rate: u64,
    /// Overrides `[authentication] allow_anonymous` for this listener.
    pub allow_anonymous: Option<bool>,
    /// `Some(timeout)`: every connection starts with a PROXY v1/v2 header.
    pub proxy: Option<Duration>,
    started: Instant,
    /// Seconds after `started` (plus one) of the last handshake warning; 0 = none yet.
    last_warn: AtomicU64,
}

impl Endpoint {
    pub fn new(
        name: String,
        transport: Transport,
        max_connections: usize,
        proxy: Option<Duration>,
    ) -> Endpoint {
        Endpoint {
            name,
            transport,
            max_connections,
            max_conn_rate: 0,
            allow_anonymous: None,
            proxy,
            started: Instant::now(),
            last_warn: AtomicU64::new(0),
        }
    }

    pub fn tcp(name: &str, c: &TcpListenerConfig) -> Endpoint {
        let k = c.common();
        Endpoint::new(
            format!("tcp.{name}"),
            Transport::Tcp,
            k.max_connections,
            k.proxy,
        )
        .with_common(&k)
    }

    /// Loads the certificate files: the error names the key and the file.
    pub fn ssl(name: &str, c: &SslListenerConfig) -> Result<Endpoint, TlsError> {
        let k = c.common();
        let tls = Arc::new(TlsConfig::load(c.tls())?);
        Ok(Endpoint::new(
            format!("ssl.{name}"),
            Transport::Ssl(tls),
            k.max_connections,
            k.proxy,
        )
        .with_common(&k))
    }

    pub fn ws(name: &str, c: &WsListenerConfig) -> Endpoint {
        let k = c.common();
        Endpoint::new(
            format!("ws.{name}"),
            Transport::Ws(c.ws()),
            k.max_connections,
            k.proxy,
        )
        .with_common(&k)
    }

    pub fn wss(name: &str, c: &WssListenerConfig) -> Result<Endpoint, TlsError> {
        let k = c.common();
        let tls = Arc::new(TlsConfig::load(c.tls())?);
        Ok(Endpoint::new(
            format!("wss.{name}"),
            Transport::Wss(tls, c.ws()),
            k.max_connections,
            k.proxy,
        )
        .with_common(&k))
    }

    /// With the listener-level limits and overrides of `c`.
    pub fn with_common(mut self, c: &crate::config::Common) -> Endpoint {
        self.max_conn_rate = c.max_conn_rate;
        self.allow_anonymous = c.allow_anonymous;
        self
    }

    /// The TLS side, for reloading on SIGHUP.
    pub fn tls(&self) -> Option<Arc<TlsConfig>> {
        match &self.transport {
            Transport::Ssl(t) | Transport::Wss(t, _) => Some(t.clone()),
            Transport::Tcp | Transport::Ws(_) => None,
        }
    }

    /// Counts a failed handshake and logs it (warn at most once a minute).
    fn handshake_failed(&self, broker: &Broker, m: BrokerMetric, peer: SocketAddr, why: &str) {
        broker.metrics().inc(m);
        tracing::debug!(listener = %self.name, %peer, "handshake failed: {why}");
        let now = self.started.elapsed().as_secs() + 1;
        let last = self.last_warn.load(Ordering::Relaxed);
        if (last == 0 || now >= last + WARN_EVERY.as_secs())
            && self
                .last_warn
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(listener = %self.name, %peer,
                "handshake failed: {why} (further failures in the next minute are logged at debug level only; see listener_handshake_failures_total)");
        }
    }
}

/// Accepts plain MQTT over TCP on `listener` until `shutdown` is cancelled (see [`serve`]).
pub async fn run(
    listener: TcpListener,
    broker: Arc<Broker>,
    max_connections: usize,
    shutdown: CancellationToken,
) {
    let ep = Endpoint::new("tcp".into(), Transport::Tcp, max_connections, None);
    serve(listener, ep, broker, shutdown).await;
}

/// Accepts connections on `listener` for `endpoint` until `shutdown` is cancelled, then
/// has the broker tell every connection to close (`Broker::close_connections`: DISCONNECT
/// 0x8B to MQTT 5 clients) and waits for them, up to a deadline. ssl/wss listeners reload their certificate when its files change.
pub async fn serve(
    listener: TcpListener,
    endpoint: Endpoint,
    broker: Arc<Broker>,
    shutdown: CancellationToken,
) {
    let ep = Arc::new(endpoint);
    let poller = ep.tls().map(|tls| {
        let (stop, broker, name) = (shutdown.clone(), broker.clone(), ep.name.clone());
        tokio::spawn(async move {
            let mut every = tokio::time::interval(CERT_POLL_INTERVAL);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = every.tick() => {}
                }
                match tls.reload_if_changed() {
                    None => {}
                    Some(Ok(())) => {
                        broker.metrics().inc(BrokerMetric::CertReloaded);
                        tracing::info!(listener = %name, "certificate files changed: reloaded");
                    }
                    Some(Err(e)) => {
                        broker.metrics().inc(BrokerMetric::CertReloadFailed);
                        tracing::warn!(listener = %name, "certificate files changed but cannot be used (keeping the previous ones): {e}");
                    }
                }
            }
        })
    });
    let permits = Arc::new(Semaphore::new(
        ep.max_connections.clamp(1, Semaphore::MAX_PERMITS),
    ));
    // Tracked, not joined: a JoinSet would keep an entry per connection.
    let conns = TaskTracker::new();
    let mut rate = (ep.max_conn_rate > 0)
        .then(|| ferry_broker::limits::Bucket::new(ep.max_conn_rate, std::time::Instant::now()));
    loop {
        // Over max_conn_rate: the next connection waits in the backlog.
        if let Some(wait) = rate
            .as_mut()
            .and_then(|b| b.take(1, std::time::Instant::now()))
        {
            broker.metrics().inc(BrokerMetric::ConnRateLimited);
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
            }
        }
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let accepted = Box::new(Accepted {
                    ep: ep.clone(),
                    stream,
                    addr: peer,
                    broker: broker.clone(),
                    slot: permit,
                });
                conns.spawn(connection_task(accepted));
            }
            Err(e) => {
                // Usually out of file descriptors: back off instead of spinning.
                tracing::warn!(listener = %ep.name, "accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    if let Some(p) = poller {
        p.abort();
    }
    // Connections wait on their sessions, not on `shutdown`: the broker tells them.
    broker.close_connections();
    conns.close();
    if timeout(DRAIN_DEADLINE, conns.wait()).await.is_err() {
        // Each ends within its own bounds (a goodbye write gets 5 seconds).
        tracing::warn!(
            listener = %ep.name,
            "{} connections did not close in time; not waiting for them",
            conns.len()
        );
    }
}

/// A connection just accepted. Boxed: the connection's task holds only a pointer to it
/// until its handshakes are done.
struct Accepted {
    ep: Arc<Endpoint>,
    stream: TcpStream,
    addr: SocketAddr,
    broker: Arc<Broker>,
    slot: OwnedSemaphorePermit,
}

/// A connection past CONNECT, over one of the transports. TLS and WebSocket streams are
/// large (buffers, session state): boxed, so a plain TCP connection's task is not as big.
#[allow(
    clippy::large_enum_variant,
    reason = "the TCP variant is held inline on purpose: it is most connections"
)]
enum Opened {
    Tcp(Live<TcpStream>),
    Tls(Box<Live<TlsStream<TcpStream>>>),
    Ws(Box<Live<ws::WsStream<TcpStream>>>),
    Wss(Box<Live<ws::WsStream<TlsStream<TcpStream>>>>),
}

/// One connection's task. Its future is what an idle connection costs, so the handshakes
/// (PROXY header, TLS, WebSocket, CONNECT) run in a boxed future freed when they are done,
/// and what the MQTT loop needs is held once, in [`Live`] (an async fn's arguments keep
/// their space for as long as it runs, so nothing large is passed down through layers).
async fn connection_task(accepted: Box<Accepted>) {
    let Some(mut opened) = Box::pin(open(accepted)).await else {
        return;
    };
    // By reference: a `Live` moved into the arm would be held twice.
    match &mut opened {
        Opened::Tcp(l) => l.run().await,
        Opened::Tls(l) => l.run().await,
        Opened::Ws(l) => l.run().await,
        Opened::Wss(l) => l.run().await,
    }
}

/// A connection's transport handshakes, then CONNECT; `None` if any failed.
async fn open(accepted: Box<Accepted>) -> Option<Opened> {
    let Accepted {
        ep,
        mut stream,
        addr,
        broker,
        slot,
    } = *accepted;
    let mut who = Peer {
        addr,
        local: stream.local_addr().ok(),
        username: None,
        client_id: None,
        allow_anonymous: ep.allow_anonymous,
    };
    if let Some(t) = ep.proxy {
        match timeout(t, proxy::read_header(&mut stream)).await {
            Ok(Ok(Some((src, dst)))) => {
                who.addr = src;
                who.local = Some(dst);
            }
            Ok(Ok(None)) => {}
            Ok(Err(e)) => {
                let why = format!("PROXY protocol: {e}");
                ep.handshake_failed(&broker, BrokerMetric::HandshakeFailedProxy, addr, &why);
                return None;
            }
            Err(_) => {
                let why = "no PROXY header in time";
                ep.handshake_failed(&broker, BrokerMetric::HandshakeFailedTimeout, addr, why);
                return None;
            }
        }
    }
    let deadline = Duration::from_secs(u64::from(broker.config().connect_timeout.max(1)));
    // The TLS and WebSocket paths are boxed: a future is as large as its largest state,
    // and a plain TCP connection's handshake need not carry a TLS session's worth of space.
    match &ep.transport {
        Transport::Tcp => Some(Opened::Tcp(
            connection::open(stream, who, broker, slot).await?,
        )),
        Transport::Ssl(tls) => {
            Box::pin(async {
                let s = tls_accept(&ep, tls, stream, &mut who, &broker, deadline).await?;
                Some(Opened::Tls(Box::new(
                    connection::open(s, who, broker, slot).await?,
                )))
            })
            .await
        }
        Transport::Ws(opts) => {
            Box::pin(async {
                let s = ws_accept(&ep, opts, stream, who.addr, &broker, deadline).await?;
                Some(Opened::Ws(Box::new(
                    connection::open(s, who, broker, slot).await?,
                )))
            })
            .await
        }
        Transport::Wss(tls, opts) => {
            Box::pin(async {
                let s = tls_accept(&ep, tls, stream, &mut who, &broker, deadline).await?;
                let s = ws_accept(&ep, opts, s, who.addr, &broker, deadline).await?;
                Some(Opened::Wss(Box::new(
                    connection::open(s, who, broker, slot).await?,
                )))
            })
            .await
        }
    }
}

async fn tls_accept(
    ep: &Endpoint,
    tls: &TlsConfig,
    stream: TcpStream,
    who: &mut Peer,
    broker: &Broker,
    deadline: Duration,
) -> Option<TlsStream<TcpStream>> {
    let acceptor = TlsAcceptor::from(tls.current());
    let s = match timeout(deadline, acceptor.accept(stream)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            let why = format!("TLS: {e}");
            ep.handshake_failed(broker, BrokerMetric::HandshakeFailedTls, who.addr, &why);
            return None;
        }
        Err(_) => {
            let why = "TLS handshake not done within connect_timeout";
            ep.handshake_failed(broker, BrokerMetric::HandshakeFailedTimeout, who.addr, why);
            return None;
        }
    };
    let opts = tls.options();
    if opts.peer_cert_as_username.is_some() || opts.peer_cert_as_clientid.is_some() {
        let leaf = s.get_ref().1.peer_certificates().and_then(|c| c.first());
        if let Some(leaf) = leaf {
            who.username = opts
                .peer_cert_as_username
                .and_then(|f| peer_cert_field(leaf, f));
            who.client_id = opts
                .peer_cert_as_clientid
                .and_then(|f| peer_cert_field(leaf, f));
        }
    }
    Some(s)
}

async fn ws_accept<S>(
    ep: &Endpoint,
    opts: &WsOptions,
    stream: S,
    addr: SocketAddr,
    broker: &Arc<Broker>,
    deadline: Duration,
) -> Option<ws::WsStream<S>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let max = broker.config().max_packet_size;
    match timeout(deadline, ws::accept(stream, &opts.path, max)).await {
        Ok(Ok(s)) => Some(ws::WsStream::new(s, broker.clone())),
        Ok(Err(e)) => {
            let why = format!("WebSocket upgrade: {e}");
            ep.handshake_failed(broker, BrokerMetric::HandshakeFailedWebsocket, addr, &why);
            None
        }
        Err(_) => {
            let why = "WebSocket upgrade not done within connect_timeout";
            ep.handshake_failed(broker, BrokerMetric::HandshakeFailedTimeout, addr, why);
            None
        }
    }
}
