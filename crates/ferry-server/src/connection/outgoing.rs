//! Outgoing deliveries: the session queue drained into the write buffer within the inflight
//! window, PUBLISH built per subscriber (expiry, subscription ids, topic aliases), and the
//! write buffer written without ever waiting outside the connection's `select!`.

use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::Buf;

use super::*;

/// A write buffer that grew past this is given back once empty.
const WBUF_KEEP: usize = 16 * 1024;

impl Conn {
    /// Is there something to write or flush?
    pub(super) fn writing(&self) -> bool {
        !self.wbuf.is_empty() || self.unflushed
    }

    /// `n` bytes left (`n > 0`), or the flush completed (`n == 0`).
    pub(super) fn wrote(&mut self, n: usize) {
        if n == 0 {
            self.unflushed = false;
            return;
        }
        self.unflushed = true;
        self.broker.metrics().add(BrokerMetric::BytesSent, n as u64);
        ClientCounters::add(&self.session.counters().send_oct, n as u64);
        self.wbuf.advance(n);
        if self.wbuf.is_empty() && self.wbuf.capacity() > WBUF_KEEP {
            self.wbuf = BytesMut::new();
        }
    }

    /// Writes and flushes what the socket takes now, without waiting (the rest is written
    /// by the `select!` branch when the socket is writable).
    pub(super) fn write_ready<W: AsyncWrite + Unpin>(&mut self, wr: &mut W) -> std::io::Result<()> {
        let mut cx = Context::from_waker(Waker::noop());
        while self.writing() {
            match io::poll_write_some(Pin::new(&mut *wr), &mut cx, &self.wbuf) {
                Poll::Pending => break,
                Poll::Ready(r) => self.wrote(r?),
            }
        }
        Ok(())
    }

    /// Moves queued deliveries into the write buffer, within the inflight window, until the
    /// buffer holds `WRITE_HIGH` bytes. `true` if it stopped for that (more may be queued:
    /// the caller pumps again once the buffer has room, with no wake-up to wait for).
    pub(super) fn pump(&mut self) -> bool {
        let window = usize::from(
            self.client_receive_max
                .min(self.broker.config().max_inflight),
        );
        // Allocated only when there is something to send, not kept while idle.
        let mut batch = Vec::new();
        while self.wbuf.len() < WRITE_HIGH {
            let now = Instant::now();
            // At most the room left in bytes too, so large messages do not overshoot it.
            let room = WRITE_HIGH - self.wbuf.len();
            self.broker.next_batch_within(
                &self.session,
                self.conn_id,
                window,
                (BATCH, room),
                now,
                &mut batch,
            );
            if batch.is_empty() {
                return false;
            }
            for o in batch.drain(..) {
                self.write_outgoing(o);
            }
        }
        true
    }

    /// Writes what the socket takes and refills from the session queue until the queue is
    /// drained (or the window full) or the socket takes no more.
    pub(super) fn drain_out<W: AsyncWrite + Unpin>(&mut self, wr: &mut W) -> std::io::Result<()> {
        loop {
            self.write_ready(wr)?;
            if self.wbuf.len() >= WRITE_HIGH || !self.pump() {
                // Written what could be: the rest when the socket is writable.
                return self.write_ready(wr);
            }
        }
    }

    pub(super) fn write_outgoing(&mut self, o: Outgoing) {
        match o {
            Outgoing::Release(id) => self.send(&Packet::PubRel(Ack::new(id, reason::SUCCESS))),
            Outgoing::Publish {
                packet_id,
                delivery,
                dup,
            } => {
                let Some(p) = self.build_publish(packet_id, &delivery, dup) else {
                    self.session.lock().forget(packet_id);
                    return;
                };
                let mut p = Packet::Publish(p);
                if ferry_mqtt::encoded_len(&p, self.version) > self.client_max_packet as usize {
                    // MQTT 5 3.1.2.11.4: discard, as if it had been delivered.
                    self.broker.metrics().inc(BrokerMetric::DroppedTooLarge);
                    if packet_id != 0 {
                        self.session.lock().forget(packet_id);
                    }
                    return;
                }
                if self.client_alias_max > 0
                    && let Packet::Publish(p) = &mut p
                {
                    self.apply_out_alias(p);
                }
                self.broker.metrics().inc(metrics::sent(delivery.qos));
                self.send(&p);
                self.traffic.send_msg += 1;
                for h in self.broker.hooks() {
                    h.message_delivered(&self.client, &delivery.msg);
                }
            }
        }
    }

    pub(super) fn build_publish(&self, packet_id: u16, d: &Delivery, dup: bool) -> Option<Publish> {
        let msg = &d.msg;
        let properties = if self.version.is_v5() {
            let mut props = msg.properties.clone();
            match msg.expiry(Instant::now()) {
                Expiry::Never => {}
                Expiry::Remaining(left) => props.message_expiry_interval = Some(left),
                // An unacknowledged message is still completed (dup) after its expiry.
                Expiry::Expired if dup => {}
                Expiry::Expired => {
                    self.broker.metrics().inc(BrokerMetric::DroppedExpired);
                    self.broker.delivery_dropped(
                        &self.client,
                        msg,
                        ferry_broker::DeliveryDropReason::Expired,
                    );
                    return None;
                }
            }
            props.subscription_identifiers.clone_from(&d.sub_ids);
            props
        } else {
            Properties::default()
        };
        Some(Publish {
            dup,
            qos: d.qos,
            retain: d.retain,
            topic: msg.topic.clone(),
            packet_id,
            properties,
            payload: msg.payload.clone(),
        })
    }

    pub(super) fn apply_out_alias(&mut self, p: &mut Publish) {
        let max = usize::from(self.client_alias_max);
        let out = &mut self.aliases.get_or_insert_with(Default::default).outbound;
        if let Some(&alias) = out.get(&p.topic) {
            p.properties.topic_alias = Some(alias);
            p.topic.clear();
        } else if out.len() < max {
            let alias = out.len() as u16 + 1;
            out.insert(p.topic.clone(), alias);
            p.properties.topic_alias = Some(alias);
        }
    }
}
