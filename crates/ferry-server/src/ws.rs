//! MQTT over WebSocket: the HTTP upgrade (path, subprotocol `mqtt`) and [`WsStream`], an
//! `AsyncRead + AsyncWrite` over binary WebSocket messages, so the one connection state
//! machine serves ws and wss like TCP. MQTT packets are not aligned on frames (MQTT 5
//! section 6): reads hand out the bytes of binary messages in order; each write is one
//! binary message.
//!
//! A text frame, a frame over the limit or another protocol violation closes that
//! connection (an `InvalidData` read error) and is counted once, by reason.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use ferry_broker::{Broker, BrokerMetric};
use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// Subprotocols accepted, in order of preference. `mqtt` is the standard's (MQTT 5 section
/// 6); the others are offered by older Paho and Mosquitto clients.
const SUBPROTOCOLS: [&str; 3] = ["mqtt", "mqttv3.1", "mqttv3.1.1"];

fn refuse(status: StatusCode, why: &str) -> ErrorResponse {
    let mut r = ErrorResponse::new(Some(why.to_owned()));
    *r.status_mut() = status;
    r
}

/// Frames (and messages) larger than this close the connection: the MQTT packet limit plus
/// room for a fixed header, at least 64 KiB.
fn frame_limit(max_packet_size: u32) -> usize {
    (max_packet_size as usize).saturating_add(8).max(64 * 1024)
}

/// Answers the HTTP upgrade on `path` and returns the WebSocket.
pub(crate) async fn accept<S>(
    stream: S,
    path: &str,
    max_packet_size: u32,
) -> Result<WebSocketStream<S>, WsError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let limit = frame_limit(max_packet_size);
    let config = WebSocketConfig::default()
        .max_frame_size(Some(limit))
        .max_message_size(Some(limit));
    #[allow(clippy::result_large_err, reason = "tungstenite's callback type")]
    let callback = |req: &Request, mut resp: Response| -> Result<Response, ErrorResponse> {
        if req.uri().path() != path {
            return Err(refuse(StatusCode::NOT_FOUND, "no MQTT endpoint here"));
        }
        let offered = req
            .headers()
            .get_all("sec-websocket-protocol")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>();
        if offered.is_empty() {
            // Some clients offer none; the subprotocol is implied by the path.
            return Ok(resp);
        }
        let chosen = SUBPROTOCOLS
            .iter()
            .find(|s| offered.iter().any(|o| o.eq_ignore_ascii_case(s)));
        match chosen {
            Some(p) => {
                resp.headers_mut()
                    .insert("sec-websocket-protocol", HeaderValue::from_static(p));
                Ok(resp)
            }
            None => Err(refuse(
                StatusCode::BAD_REQUEST,
                "unsupported subprotocol (want mqtt)",
            )),
        }
    };
    tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config)).await
}

/// A WebSocket as a byte stream of MQTT.
pub(crate) struct WsStream<S> {
    ws: WebSocketStream<S>,
    read: Bytes,
    broker: Arc<Broker>,
}

impl<S> WsStream<S> {
    pub(crate) fn new(ws: WebSocketStream<S>, broker: Arc<Broker>) -> Self {
        WsStream {
            ws,
            read: Bytes::new(),
            broker,
        }
    }

    fn fail(&self, m: BrokerMetric, why: String) -> io::Error {
        self.broker.metrics().inc(m);
        tracing::debug!("closing WebSocket connection: {why}");
        io::Error::new(io::ErrorKind::InvalidData, why)
    }
}

fn to_io(e: WsError) -> io::Error {
    match e {
        WsError::Io(e) => e,
        e => io::Error::other(e),
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.read.is_empty() {
                let n = this.read.len().min(buf.remaining());
                buf.put_slice(&this.read.split_to(n));
                return Poll::Ready(Ok(()));
            }
            let msg = match ready!(Pin::new(&mut this.ws).poll_next(cx)) {
                None => return Poll::Ready(Ok(())),
                Some(m) => m,
            };
            match msg {
                Ok(Message::Binary(b)) => this.read = b,
                Ok(Message::Close(_)) => return Poll::Ready(Ok(())),
                Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => {}
                Ok(Message::Text(_)) => {
                    let e = this.fail(
                        BrokerMetric::WebsocketNotBinary,
                        "a text frame (MQTT needs binary frames)".into(),
                    );
                    return Poll::Ready(Err(e));
                }
                Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => {
                    return Poll::Ready(Ok(()));
                }
                Err(WsError::Io(e)) => return Poll::Ready(Err(e)),
                Err(WsError::Capacity(e)) => {
                    let e = this.fail(BrokerMetric::WebsocketFrameTooLarge, e.to_string());
                    return Poll::Ready(Err(e));
                }
                Err(e) => {
                    let e = this.fail(BrokerMetric::WebsocketProtocol, e.to_string());
                    return Poll::Ready(Err(e));
                }
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(Pin::new(&mut this.ws).poll_ready(cx)).map_err(to_io)?;
        Pin::new(&mut this.ws)
            .start_send(Message::Binary(Bytes::copy_from_slice(buf)))
            .map_err(to_io)?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().ws)
            .poll_flush(cx)
            .map_err(to_io)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match ready!(Pin::new(&mut self.get_mut().ws).poll_close(cx)) {
            Ok(()) | Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => Poll::Ready(Ok(())),
            Err(e) => Poll::Ready(Err(to_io(e))),
        }
    }
}
