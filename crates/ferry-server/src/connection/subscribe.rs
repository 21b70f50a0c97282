//! SUBSCRIBE and UNSUBSCRIBE: authorization and quotas through the broker, SUBACK held for
//! the commit in strict persistence, hooks told per filter.

use super::*;

impl Conn {
    pub(super) fn on_subscribe(&mut self, s: Subscribe) -> Option<Close> {
        let sub_id = s.properties.subscription_identifiers.first().copied();
        let mut codes = Vec::with_capacity(s.filters.len());
        for (filter, opts) in &s.filters {
            if opts.no_local && filter.starts_with("$share/") {
                return Some(err(
                    reason::PROTOCOL_ERROR,
                    "No Local on a shared subscription",
                ));
            }
            match self.broker.subscribe(&self.session, filter, *opts, sub_id) {
                Ok(ok) => {
                    codes.push(ok.granted as u8);
                    for h in self.broker.hooks() {
                        h.session_subscribed(&self.client, filter, opts, &s.properties);
                    }
                }
                Err(e) => {
                    tracing::debug!(client_id = %self.client.client_id, filter, "subscription refused: {}", e.what);
                    codes.push(e.code);
                }
            }
        }
        let suback = SubAck {
            packet_id: s.packet_id,
            codes,
            properties: Properties::default(),
        };
        // Strict state persistence: SUBACK once the subscription is committed.
        let barrier = if self.broker.is_strict() && self.session.lock().expiry_interval() > 0 {
            self.broker.commit_barrier()
        } else {
            None
        };
        match barrier {
            Some(b) => self.push_pending(PendingAck {
                read_at: self.read_at,
                qos: QoS::AtMostOnce,
                packet_id: s.packet_id,
                code: reason::SUCCESS,
                acks: vec![b],
                suback: Some(suback),
                holds: false,
            }),
            None => self.send(&Packet::SubAck(suback)),
        }
        None
    }

    pub(super) fn on_unsubscribe(&mut self, u: Unsubscribe) {
        let codes = u
            .filters
            .iter()
            .map(|f| {
                if self.broker.unsubscribe(&self.session, f) {
                    for h in self.broker.hooks() {
                        h.session_unsubscribed(&self.client, f, &u.properties);
                    }
                    reason::SUCCESS
                } else {
                    reason::NO_SUBSCRIPTION_EXISTED
                }
            })
            .collect();
        self.send(&Packet::UnsubAck(UnsubAck {
            packet_id: u.packet_id,
            codes,
            properties: Properties::default(),
        }));
    }
}
