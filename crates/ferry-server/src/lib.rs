//! ferry-server: the network edge.
//!
//! Owns: TCP listeners, one task per connection, the per-connection MQTT state machine
//! (handshake, keep alive, topic aliases, flow control, reason codes), connection limits and
//! graceful shutdown of connections.
//!
//! Must not: keep session or routing state (that is `ferry-broker`'s), parse config files,
//! install signal handlers or a tracing subscriber (that is the `ferry` binary's).

mod connection;

use std::sync::Arc;
use std::time::Duration;

use ferry_broker::Broker;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// One TCP listener (`[listeners.tcp.NAME]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TcpListenerConfig {
    /// Address to listen on, e.g. "0.0.0.0:1883".
    pub bind: std::net::SocketAddr,
    /// Connections accepted at once on this listener; further ones wait in the backlog.
    pub max_connections: usize,
}

impl Default for TcpListenerConfig {
    fn default() -> Self {
        TcpListenerConfig {
            bind: std::net::SocketAddr::from(([0, 0, 0, 0], 1883)),
            max_connections: 1_000_000,
        }
    }
}

/// How long connections get to finish after shutdown starts, before they are aborted.
const DRAIN_DEADLINE: Duration = Duration::from_secs(5);

/// Accepts MQTT connections on `listener` until `shutdown` is cancelled, then tells every
/// connection to close (DISCONNECT 0x8B to MQTT 5 clients) and waits for them, up to a
/// deadline.
pub async fn run(
    listener: TcpListener,
    broker: Arc<Broker>,
    max_connections: usize,
    shutdown: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(
        max_connections.clamp(1, Semaphore::MAX_PERMITS),
    ));
    let mut conns = JoinSet::new();
    loop {
        while conns.try_join_next().is_some() {}
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
                let local = stream.local_addr().ok();
                let broker = broker.clone();
                let shutdown = shutdown.clone();
                conns.spawn(async move {
                    connection::serve(stream, peer, local, broker, shutdown).await;
                    drop(permit);
                });
            }
            Err(e) => {
                // Usually out of file descriptors: back off instead of spinning.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    let drained = tokio::time::timeout(DRAIN_DEADLINE, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            "{} connections did not close in time; aborting them",
            conns.len()
        );
        conns.shutdown().await;
    }
}
