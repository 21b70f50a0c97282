//! ferry-server: the network edge.
//!
//! Owns: the listeners (`tcp`, `ssl`, `ws`, `wss`, each optionally behind the PROXY
//! protocol) and their config types, the transports (TLS with rustls and certificate
//! reload, WebSocket framing), one task per connection, the per-connection MQTT state
//! machine (handshake, keep alive, topic aliases, flow control, reason codes), generic over
//! the stream so every transport runs the same code, connection limits and graceful
//! shutdown of connections.
//!
//! Must not: keep session or routing state (that is `ferry-broker`'s), parse config files,
//! install signal handlers or a tracing subscriber (that is the `ferry` binary's: it calls
//! [`TlsConfig::reload`] on SIGHUP).

pub mod config;
mod connection;
mod listener;
mod proxy;
pub mod tls;
mod ws;

pub use config::{
    PeerCertField, SslListenerConfig, TcpListenerConfig, TlsOptions, Verify, WsListenerConfig,
    WsOptions, WssListenerConfig,
};
pub use listener::{CERT_POLL_INTERVAL, Endpoint, Transport, run, serve};
pub use tls::{TlsConfig, TlsError};
