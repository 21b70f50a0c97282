//! A session's outgoing queue: deliveries waiting for the connection, bounded in messages
//! (`mqtt.max_queued_messages`) and bytes (`mqtt.max_queued_bytes`), and what happens when
//! a delivery finds it full (`mqtt.queue_full`, ADR 0010):
//!
//! - `backpressure` (the default): while the subscriber is connected, the delivery is queued
//!   anyway and its publisher gets a *holding* [`DurableAck`]: the publishing connection
//!   stops reading (TCP pushes back on the device) and its PUBACK waits until this queue has
//!   room again, for at most `mqtt.queue_full_wait` counted from when the queue became full.
//!   Past that wait (a stuck subscriber), past twice the bounds, for an offline session or a
//!   publisher that cannot wait (`Broker::publish`: wills, republish, the API), the oldest
//!   queued deliveries make room,
//!   counted, as `drop_oldest` does. A subscriber whose queue stays full for
//!   `mqtt.slow_subscriber_timeout` is disconnected (0x97), once per episode.
//! - `drop_oldest`: the oldest queued deliveries make room (EMQX's behaviour).
//! - `drop_newest`: the new delivery is dropped (Mosquitto's behaviour).
//!
//! Over-admission is bounded: a held publisher reads nothing more, so each publisher adds at
//! most one delivery past the bound per episode, and twice the bounds is a hard cap.
//!
//! Pure state, no I/O and no locking: the session holds a [`Queue`] under its lock.

use std::collections::VecDeque;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::hook::{AckSender, DurableAck};
use crate::message::Delivery;

/// What a delivery does when its subscriber's queue is full (`mqtt.queue_full`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueFull {
    /// Hold the publisher until there is room, for at most `queue_full_wait`; then as
    /// `DropOldest`.
    #[default]
    Backpressure,
    /// Drop the oldest queued deliveries to make room.
    DropOldest,
    /// Drop the new delivery.
    DropNewest,
}

/// A queue's bounds and policy, from `[mqtt]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_messages: usize,
    /// 0: no byte bound.
    pub(crate) max_bytes: usize,
    pub(crate) policy: QueueFull,
    pub(crate) wait: Duration,
    /// Zero: never disconnect a slow subscriber.
    pub(crate) slow_after: Duration,
}

/// What [`Queue::push`] did beyond queueing.
#[derive(Debug, Default)]
pub(crate) struct Pushed {
    /// Deliveries that did not make it: the oldest pushed out, or the new one.
    pub(crate) dropped: Vec<Delivery>,
    /// The publisher waits for this (backpressure).
    pub(crate) hold: Option<DurableAck>,
    /// The subscriber has been full for `slow_subscriber_timeout`: disconnect it.
    pub(crate) slow: bool,
}

/// The bytes a delivery accounts for: its topic and payload (shared with the other
/// subscribers' deliveries, but each queue bounds what it holds on to).
pub(crate) fn size(d: &Delivery) -> usize {
    d.msg.topic.len() + d.msg.payload.len()
}

#[derive(Debug, Default)]
pub struct Queue {
    items: VecDeque<Delivery>,
    bytes: usize,
    /// Since the queue became full under backpressure, until it has room again (boxed: a
    /// queue that is not full costs one pointer for it).
    full: Option<Box<Episode>>,
}

#[derive(Debug)]
struct Episode {
    since: Instant,
    /// The bounds it is full against (room below them releases the waiters).
    max_messages: usize,
    max_bytes: usize,
    /// Publishers held until the queue has room.
    waiters: Vec<AckSender>,
    /// The slow subscriber was told to go in this episode.
    slow_told: bool,
}

impl Queue {
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Bytes of topic and payload queued.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn iter(&self) -> impl Iterator<Item = &Delivery> {
        self.items.iter()
    }

    /// For changes that keep each delivery's size (taking tickets).
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut Delivery> {
        self.items.iter_mut()
    }

    pub(crate) fn front(&self) -> Option<&Delivery> {
        self.items.front()
    }

    /// Queues without a bound (restoring a stored session).
    pub(crate) fn push_back(&mut self, d: Delivery) {
        self.bytes += size(&d);
        self.items.push_back(d);
    }

    /// Takes the oldest delivery; the queue having room again releases held publishers.
    pub(crate) fn pop_front(&mut self) -> Option<Delivery> {
        let d = self.items.pop_front()?;
        self.bytes -= size(&d);
        if let Some(e) = &self.full
            && self.items.len() < e.max_messages
            && (e.max_bytes == 0 || self.bytes < e.max_bytes)
        {
            self.release();
        }
        Some(d)
    }

    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&Delivery) -> bool) {
        let mut bytes = self.bytes;
        self.items.retain(|d| {
            let k = keep(d);
            if !k {
                bytes -= size(d);
            }
            k
        });
        self.bytes = bytes;
    }

    /// Empties the queue and releases held publishers (the session is gone).
    pub(crate) fn clear(&mut self) {
        self.items.clear();
        self.bytes = 0;
        self.release();
    }

    /// Would `extra` more bytes make the queue go past `factor` times its bounds? (A queue
    /// holding nothing always takes one delivery, however large.)
    fn over(&self, l: &Limits, extra: usize, factor: usize) -> bool {
        self.items.len() >= l.max_messages.saturating_mul(factor)
            || (l.max_bytes > 0
                && !self.items.is_empty()
                && self.bytes + extra > l.max_bytes.saturating_mul(factor))
    }

    fn release(&mut self) {
        if let Some(e) = self.full.take() {
            for w in e.waiters {
                let _ = w.send(Ok(()));
            }
        }
    }

    /// Queues `d` under `limits`. `can_hold`: the subscriber is connected and the publisher
    /// can wait (a client connection), so backpressure may hold it.
    pub(crate) fn push(
        &mut self,
        d: Delivery,
        limits: &Limits,
        can_hold: bool,
        now: Instant,
    ) -> Pushed {
        let mut out = Pushed::default();
        let extra = size(&d);
        if !self.over(limits, extra, 1) {
            self.push_back(d);
            return out;
        }
        match limits.policy {
            QueueFull::DropNewest => {
                out.dropped.push(d);
                return out;
            }
            QueueFull::DropOldest => {}
            QueueFull::Backpressure => {
                let e = self.full.get_or_insert_with(|| {
                    Box::new(Episode {
                        since: now,
                        max_messages: limits.max_messages,
                        max_bytes: limits.max_bytes,
                        waiters: Vec::new(),
                        slow_told: false,
                    })
                });
                let until = e.since + limits.wait;
                if !limits.slow_after.is_zero()
                    && now >= e.since + limits.slow_after
                    && !std::mem::replace(&mut e.slow_told, true)
                {
                    out.slow = true;
                }
                if can_hold && now < until {
                    let (tx, ack) = DurableAck::channel();
                    e.waiters.push(tx);
                    out.hold = Some(ack.holding_until(until));
                    // Within the wait: held; past twice the bounds the oldest make room.
                    self.make_room(limits, extra, 2, &mut out.dropped);
                    self.push_back(d);
                    return out;
                }
            }
        }
        self.make_room(limits, extra, 1, &mut out.dropped);
        self.push_back(d);
        out
    }

    /// Drops the oldest deliveries until `extra` more bytes fit in `factor` times the bounds.
    fn make_room(&mut self, limits: &Limits, extra: usize, factor: usize, out: &mut Vec<Delivery>) {
        while self.over(limits, extra, factor) {
            let Some(old) = self.items.pop_front() else {
                break;
            };
            self.bytes -= size(&old);
            out.push(old);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use ferry_mqtt::QoS;

    use super::*;
    use crate::message::Message;

    fn delivery(n: u8, len: usize) -> Delivery {
        let msg = Message {
            topic: format!("t/{n}"),
            payload: Bytes::from(vec![n; len]),
            qos: QoS::AtMostOnce,
            retain: false,
            dup: false,
            properties: Default::default(),
            publisher: None,
            completion: None,
            received_at: Instant::now(),
            timestamp: 0,
        };
        Delivery {
            msg: Arc::new(msg),
            qos: QoS::AtMostOnce,
            retain: false,
            sub_ids: Vec::new(),
            shared: None,
            ticket: None,
            seq: 0,
        }
    }

    fn limits(policy: QueueFull) -> Limits {
        Limits {
            max_messages: 3,
            max_bytes: 0,
            policy,
            wait: Duration::from_secs(5),
            slow_after: Duration::ZERO,
        }
    }

    fn payloads(q: &Queue) -> Vec<u8> {
        q.iter().map(|d| d.msg.payload[0]).collect()
    }

    #[test]
    fn drop_oldest_and_drop_newest_keep_the_bound() {
        let now = Instant::now();
        let mut q = Queue::default();
        let l = limits(QueueFull::DropOldest);
        for n in 1..=5 {
            let p = q.push(delivery(n, 10), &l, true, now);
            assert!(p.hold.is_none());
            assert_eq!(p.dropped.len(), usize::from(n > 3));
        }
        assert_eq!(payloads(&q), [3, 4, 5]);
        let mut q = Queue::default();
        let l = limits(QueueFull::DropNewest);
        for n in 1..=5 {
            let p = q.push(delivery(n, 10), &l, true, now);
            assert_eq!(p.dropped.len(), usize::from(n > 3));
        }
        assert_eq!(payloads(&q), [1, 2, 3]);
    }

    #[test]
    fn bytes_bound_the_queue_too() {
        let now = Instant::now();
        let mut q = Queue::default();
        let l = Limits {
            max_messages: 100,
            max_bytes: 3 * 13,
            ..limits(QueueFull::DropOldest)
        };
        for n in 1..=4 {
            q.push(delivery(n, 10), &l, true, now);
        }
        // Each is 3 bytes of topic and 10 of payload.
        assert_eq!(payloads(&q), [2, 3, 4]);
        assert_eq!(q.bytes(), 39);
        // One larger than the bound still goes through, alone.
        let p = q.push(delivery(9, 100), &l, true, now);
        assert_eq!(p.dropped.len(), 3);
        assert_eq!(payloads(&q), [9]);
        q.pop_front();
        assert_eq!(q.bytes(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn backpressure_holds_until_room_then_releases() {
        let l = limits(QueueFull::Backpressure);
        let mut q = Queue::default();
        for n in 1..=3 {
            assert!(
                q.push(delivery(n, 1), &l, true, Instant::now())
                    .hold
                    .is_none()
            );
        }
        let p = q.push(delivery(4, 1), &l, true, Instant::now());
        assert!(
            p.dropped.is_empty(),
            "nothing lost while the publisher waits"
        );
        let mut ack = p.hold.expect("held");
        assert!(ack.holds());
        assert!(ack.try_recv().is_err(), "not settled while full");
        assert_eq!(q.len(), 4);
        // One taken: still at the bound.
        q.pop_front();
        assert!(ack.try_recv().is_err());
        q.pop_front();
        assert_eq!(ack.await.expect("sent"), Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn backpressure_gives_up_after_the_wait_and_drops_the_oldest() {
        let l = Limits {
            slow_after: Duration::from_secs(10),
            ..limits(QueueFull::Backpressure)
        };
        let mut q = Queue::default();
        for n in 1..=3 {
            q.push(delivery(n, 1), &l, true, Instant::now());
        }
        let ack = q.push(delivery(4, 1), &l, true, Instant::now()).hold;
        let ack = ack.expect("held");
        // Nobody drains: the wait ends on its own.
        assert_eq!(ack.await.expect("timed out"), Ok(()));
        let p = q.push(delivery(5, 1), &l, true, Instant::now());
        assert!(
            p.hold.is_none(),
            "a stuck subscriber holds nobody past the wait"
        );
        assert_eq!(p.dropped.len(), 2, "back within the bound");
        assert_eq!(payloads(&q), [3, 4, 5]);
        assert!(!p.slow);
        tokio::time::advance(Duration::from_secs(6)).await;
        let p = q.push(delivery(6, 1), &l, true, Instant::now());
        assert!(p.slow, "full for slow_subscriber_timeout");
        let p = q.push(delivery(7, 1), &l, true, Instant::now());
        assert!(!p.slow, "told once per episode");
    }

    #[test]
    fn backpressure_without_a_waiting_publisher_drops_the_oldest() {
        let now = Instant::now();
        let l = limits(QueueFull::Backpressure);
        let mut q = Queue::default();
        for n in 1..=4 {
            let p = q.push(delivery(n, 1), &l, false, now);
            assert!(p.hold.is_none());
        }
        assert_eq!(payloads(&q), [2, 3, 4]);
    }

    #[test]
    fn backpressure_admits_at_most_twice_the_bound() {
        let now = Instant::now();
        let l = limits(QueueFull::Backpressure);
        let mut q = Queue::default();
        let mut dropped = 0;
        let held = (1..=10)
            .filter(|n| {
                let p = q.push(delivery(*n, 1), &l, true, now);
                dropped += p.dropped.len();
                p.hold.is_some()
            })
            .count();
        assert_eq!(held, 7, "every publisher past the bound waits");
        assert_eq!(dropped, 4, "the oldest go past twice the bound");
        assert_eq!(payloads(&q), [5, 6, 7, 8, 9, 10]);
    }
}
