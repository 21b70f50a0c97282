//! Subscribing and unsubscribing: the session's subscription map and the tries (normal and
//! shared), quotas, and the retained messages a new subscription receives.

use super::*;

impl Broker {
    /// Adds or replaces one subscription of `session` and queues the retained messages its
    /// Retain Handling asks for (never for shared subscriptions).
    pub fn subscribe(
        &self,
        session: &Arc<Session>,
        raw_filter: &str,
        opts: SubOptions,
        sub_id: Option<u32>,
    ) -> Result<Subscribed, SubscribeError> {
        let client = session.lock().client().clone();
        if !client.is_internal()
            && !self
                .authorize(&client, AuthzAction::Subscribe, raw_filter, opts.qos, false)
                .allow
        {
            return Err(SubscribeError {
                code: self.acl().subscribe_deny_code.code(),
                what: "not authorized".into(),
            });
        }
        let existed = self.subscribe_quiet(session, raw_filter, opts, sub_id)?;
        session.lock().changes += 1;
        let parsed = parse_subscription(raw_filter)?;
        let send_retained = parsed.group.is_none()
            && match opts.retain_handling {
                0 => true,
                1 => !existed,
                _ => false,
            };
        if send_retained {
            let retained = lock(&self.retained).matching(parsed.filter);
            let now = Instant::now();
            for msg in retained {
                if msg.expiry(now) == Expiry::Expired {
                    continue;
                }
                let d = Delivery {
                    qos: msg.qos.min(opts.qos),
                    retain: true,
                    sub_ids: sub_id.into_iter().collect(),
                    msg,
                    shared: None,
                    // Retained copies are not part of the original publish's delivery.
                    ticket: None,
                    seq: 0,
                };
                self.enqueue(session, d);
            }
        }
        Ok(Subscribed {
            granted: opts.qos,
            existed,
        })
    }

    /// Adds or replaces one subscription in the session and the tries, without retained
    /// messages and without recording a change; `true` if it existed.
    pub(crate) fn subscribe_quiet(
        &self,
        session: &Arc<Session>,
        raw_filter: &str,
        opts: SubOptions,
        sub_id: Option<u32>,
    ) -> Result<bool, SubscribeError> {
        let parsed = parse_subscription(raw_filter)?;
        if parsed.group.is_some() && !self.config.shared_subscription {
            return Err(SubscribeError {
                code: reason::SHARED_SUBSCRIPTIONS_NOT_SUPPORTED,
                what: "shared subscriptions are disabled".into(),
            });
        }
        let entry = SubEntry {
            session: session.clone(),
            opts,
            sub_id,
        };
        // Locks in the broker's order, held until the entry is in the trie: a session that
        // a takeover, an expiry or a kick discarded (under `sessions`) gets no entry that
        // nobody would ever remove.
        let sessions = lock(&self.sessions);
        if !sessions
            .get(&session.client_id)
            .is_some_and(|s| Arc::ptr_eq(s, session))
        {
            return Err(SubscribeError {
                code: reason::UNSPECIFIED_ERROR,
                what: "the session has ended".into(),
            });
        }
        let mut subs = self.subs.write().unwrap_or_else(|e| e.into_inner());
        let existed = {
            let mut st = session.lock();
            let max = self.config.max_subscriptions;
            if max > 0
                && st.subscriptions.len() >= max
                && !st.subscriptions.contains_key(raw_filter)
            {
                drop(st);
                self.metrics().inc(BrokerMetric::SubscriptionsRefusedQuota);
                return Err(SubscribeError {
                    code: reason::QUOTA_EXCEEDED,
                    what: format!("the client holds mqtt.max_subscriptions ({max}) already"),
                });
            }
            st.subscriptions
                .insert(raw_filter.to_owned(), Subscription { opts, sub_id })
                .is_some()
        };
        match parsed.group {
            None => {
                subs.normal
                    .insert(parsed.filter, session.client_id.clone(), entry);
            }
            Some(group) => {
                let group: Arc<str> = group.into();
                match subs.shared.get_mut(parsed.filter, &group) {
                    Some(g) => {
                        g.members.retain(|m| !Arc::ptr_eq(&m.session, session));
                        g.members.push(entry);
                    }
                    None => {
                        let g = SharedGroup {
                            name: group.clone(),
                            filter: parsed.filter.into(),
                            members: vec![entry],
                            next: AtomicUsize::new(0),
                        };
                        subs.shared.insert(parsed.filter, group, g);
                    }
                }
            }
        }
        drop(subs);
        drop(sessions);
        Ok(existed)
    }

    /// Removes one subscription; `false` if it did not exist.
    pub fn unsubscribe(&self, session: &Arc<Session>, raw_filter: &str) -> bool {
        {
            let mut st = session.lock();
            if st.subscriptions.remove(raw_filter).is_none() {
                return false;
            }
            st.changes += 1;
        }
        let mut subs = self.subs.write().unwrap_or_else(|e| e.into_inner());
        Self::remove_sub(&mut subs, raw_filter, session);
        true
    }

    /// Removes the trie entry of `session` for `raw_filter`; an entry of another session
    /// with the same client id (one that took over) stays.
    pub(crate) fn remove_sub(subs: &mut Subs, raw_filter: &str, session: &Arc<Session>) {
        let Ok(parsed) = parse_subscription(raw_filter) else {
            return;
        };
        let client_id = &session.client_id;
        match parsed.group {
            None => {
                if subs
                    .normal
                    .get(parsed.filter, client_id)
                    .is_some_and(|e| Arc::ptr_eq(&e.session, session))
                {
                    subs.normal.remove(parsed.filter, client_id);
                }
            }
            Some(group) => {
                let group: Arc<str> = group.into();
                let empty = match subs.shared.get_mut(parsed.filter, &group) {
                    Some(g) => {
                        g.members.retain(|m| !Arc::ptr_eq(&m.session, session));
                        g.members.is_empty()
                    }
                    None => false,
                };
                if empty {
                    subs.shared.remove(parsed.filter, &group);
                }
            }
        }
    }
}
