//! Acknowledgements held for durable consumers (`PendingAck`, in PUBLISH order) and the
//! reasons a connection stops reading: a *holding* acknowledgement (a consumer applying
//! backpressure) and the client's rate limits (`Rates`).

use std::pin::Pin;
use std::task::{Poll, ready};

use super::*;

/// A PUBACK/PUBREC held back until every durable consumer of the message said "durable",
/// or (strict state persistence) a SUBACK held back until the subscription was committed.
pub(super) struct PendingAck {
    pub(super) read_at: Instant,
    pub(super) qos: QoS,
    pub(super) packet_id: u16,
    pub(super) code: u8,
    pub(super) acks: Vec<DurableAck>,
    pub(super) suback: Option<SubAck>,
    /// A consumer applies backpressure: the connection is not read until this is settled.
    pub(super) holds: bool,
}

/// Waits for the first pending publish: `Ok(())` when all its consumers made it durable.
/// Cancel-safe: resolved acknowledgements are removed as they complete. A plain future
/// over the reference (not an async fn, which would hold more across its await).
pub(super) fn wait_front(
    pending: &mut VecDeque<PendingAck>,
) -> impl Future<Output = Result<(), NotDurable>> + '_ {
    std::future::poll_fn(move |cx| {
        let Some(front) = pending.front_mut() else {
            return Poll::Ready(Ok(()));
        };
        while let Some(rx) = front.acks.last_mut() {
            let r = ready!(Pin::new(rx).poll(cx)).unwrap_or_else(|_| {
                Err(NotDurable {
                    code: reason::UNSPECIFIED_ERROR,
                    why: "the durable consumer went away".into(),
                })
            });
            front.acks.pop();
            if r.is_err() {
                return Poll::Ready(r);
            }
        }
        Poll::Ready(Ok(()))
    })
}

/// A client's message and byte rate limits: over either, the socket is not read until the
/// buckets are out of debt.
#[derive(Debug)]
pub(super) struct Rates {
    msgs: Option<Bucket>,
    bytes: Option<Bucket>,
    /// Not read until then.
    until: Option<std::time::Instant>,
    /// `until` was set and the loop has not armed its timer yet.
    new: bool,
}

impl Rates {
    pub(super) fn new(cfg: &MqttConfig) -> Option<Box<Rates>> {
        let now = std::time::Instant::now();
        let bucket = |rate: u64| (rate > 0).then(|| Bucket::new(rate, now));
        let r = Rates {
            msgs: bucket(cfg.client_message_rate),
            bytes: bucket(cfg.client_byte_rate),
            until: None,
            new: false,
        };
        (r.msgs.is_some() || r.bytes.is_some()).then(|| Box::new(r))
    }

    /// Charges one packet; over a limit, the connection is not read (nor its buffered
    /// packets handled) until the buckets are out of debt.
    pub(super) fn charge(&mut self, msgs: u64, bytes: u64) {
        let now = std::time::Instant::now();
        let a = self.msgs.as_mut().and_then(|b| b.take(msgs, now));
        let b = self.bytes.as_mut().and_then(|b| b.take(bytes, now));
        if let Some(wait) = a.max(b) {
            self.until = Some(now + wait);
            self.new = true;
        }
    }

    /// The throttle's time is up: read again.
    pub(super) fn throttled(&self) -> bool {
        self.until.is_some()
    }

    pub(super) fn resume(&mut self) {
        self.until = None;
    }

    /// When the loop must arm its timer for a throttle that just began.
    pub(super) fn newly_throttled(&mut self) -> Option<std::time::Instant> {
        std::mem::take(&mut self.new)
            .then_some(self.until)
            .flatten()
    }
}

/// The outcome of a pending acknowledgement if every consumer has answered already (`None`
/// while one is still working on it). Answers taken are removed.
fn settled_now(p: &mut PendingAck) -> Option<Result<(), NotDurable>> {
    while let Some(a) = p.acks.last_mut() {
        let r = match a.try_recv() {
            Ok(r) => r,
            Err(tokio::sync::oneshot::error::TryRecvError::Empty) => return None,
            Err(tokio::sync::oneshot::error::TryRecvError::Closed) => Err(NotDurable {
                code: reason::UNSPECIFIED_ERROR,
                why: "the durable consumer went away".into(),
            }),
        };
        p.acks.pop();
        if r.is_err() {
            return Some(r);
        }
    }
    Some(Ok(()))
}

impl Conn {
    /// The first pending publish is settled: acknowledge it (with the failure's reason
    /// code for MQTT 5), then every following one already settled, so the
    /// acknowledgements of one group commit leave in one write.
    pub(super) fn release_front(&mut self, mut r: Result<(), NotDurable>) -> Option<Close> {
        loop {
            if let Some(close) = self.settle_front(r) {
                return Some(close);
            }
            match self.pending.front_mut().map(settled_now) {
                Some(Some(next)) => r = next,
                _ => return None,
            }
        }
    }

    pub(super) fn settle_front(&mut self, r: Result<(), NotDurable>) -> Option<Close> {
        let p = self.pop_pending()?;
        match r {
            Ok(()) => self.send_pending(p),
            // A QoS 0 message a consumer refused: dropped (the consumer counted it).
            Err(_) if p.qos == QoS::AtMostOnce && p.suback.is_none() => {}
            Err(e) if p.suback.is_some() => {
                // The subscription is in place; only its commit failed (and is retried).
                tracing::warn!(client_id = %self.client.client_id, packet_id = p.packet_id, "subscription not committed: {}", e.why);
                self.send_pending(p);
            }
            Err(e) => {
                tracing::warn!(client_id = %self.client.client_id, packet_id = p.packet_id, "publish not acknowledged: {}", e.why);
                if p.qos == QoS::ExactlyOnce {
                    self.session.lock().release_rel(p.packet_id);
                }
                if !self.version.is_v5() {
                    // 3.x cannot refuse a PUBLISH: close so the client sends it again.
                    return Some(err(
                        e.code,
                        format!("publish {} not durable: {}", p.packet_id, e.why),
                    ));
                }
                self.send_ack(p.qos, p.packet_id, e.code, p.read_at);
            }
        }
        None
    }

    /// Is the socket read (not held by backpressure, not over a rate limit, and the peer
    /// reading what it is sent: a client that sends without reading its acknowledgements
    /// stops being read once `READ_STOP` bytes wait for it)?
    pub(super) fn reading(&self) -> bool {
        self.holding == 0 && !self.throttled() && self.wbuf.len() < READ_STOP
    }

    pub(super) fn throttled(&self) -> bool {
        self.rates.as_ref().is_some_and(|r| r.throttled())
    }

    pub(super) fn pop_pending(&mut self) -> Option<PendingAck> {
        let p = self.pending.pop_front()?;
        if p.holds {
            self.holding -= 1;
        }
        Some(p)
    }

    pub(super) fn push_pending(&mut self, p: PendingAck) {
        if p.holds {
            self.holding += 1;
        }
        self.pending.push_back(p);
    }

    pub(super) fn send_pending(&mut self, p: PendingAck) {
        match p.suback {
            Some(s) => self.send(&Packet::SubAck(s)),
            None => self.send_ack(p.qos, p.packet_id, p.code, p.read_at),
        }
    }

    /// Sends PUBACK/PUBREC and observes the PUBLISH-to-PUBACK delay (from the read that
    /// brought the PUBLISH).
    pub(super) fn send_ack(&mut self, qos: QoS, packet_id: u16, code: u8, read_at: Instant) {
        if qos != QoS::AtMostOnce {
            self.broker
                .registry()
                .puback_delay()
                .record(read_at.elapsed());
        }
        match qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => self.send(&Packet::PubAck(Ack::new(packet_id, code))),
            QoS::ExactlyOnce => self.send(&Packet::PubRec(Ack::new(packet_id, code))),
        }
    }
}
