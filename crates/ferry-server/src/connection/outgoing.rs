//! Outgoing deliveries: the session queue drained into the write buffer within the inflight
//! window, PUBLISH built per subscriber (expiry, subscription ids, topic aliases).

use super::*;

impl Conn {
    /// Moves queued deliveries into the write buffer, within the inflight window.
    pub(super) fn pump(&mut self) {
        let window = usize::from(self.client_receive_max.min(self.cfg.max_inflight));
        loop {
            let mut batch = std::mem::take(&mut self.batch);
            let now = Instant::now();
            self.broker
                .next_batch(&self.session, self.conn_id, window, BATCH, now, &mut batch);
            if batch.is_empty() {
                self.batch = batch;
                return;
            }
            for o in batch.drain(..) {
                self.write_outgoing(o);
            }
            self.batch = batch;
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
        if let Some(&alias) = self.out_aliases.get(&p.topic) {
            p.properties.topic_alias = Some(alias);
            p.topic.clear();
        } else if self.out_aliases.len() < usize::from(self.client_alias_max) {
            let alias = self.out_aliases.len() as u16 + 1;
            self.out_aliases.insert(p.topic.clone(), alias);
            p.properties.topic_alias = Some(alias);
        }
    }
}
