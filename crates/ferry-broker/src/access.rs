//! Connection-level decisions and what hooks hear of them: authentication of a CONNECT,
//! authorization of a PUBLISH or SUBSCRIBE, the CONNACK, and a message dropped for one
//! subscriber. Ferry has no authenticator or ACL yet: every client is anonymous and every
//! action is allowed by the `default` source, as EMQX does with authentication and
//! authorization disabled. These are the points a future ACL fills; each runs the hooks
//! (the rule engine checks one atomic to know whether any rule listens).

use std::sync::Arc;

use ferry_mqtt::reason;
use tokio::time::Instant;

use crate::Broker;
use crate::hook::{Authn, Authz, AuthzAction, ClientInfo, DeliveryDropReason};
use crate::message::{Delivery, Message};
use crate::session::{Outgoing, Session};

impl Broker {
    /// Authenticates a CONNECT (before its session is attached).
    pub fn authenticate(&self, client: &ClientInfo) -> Authn {
        let authn = Authn {
            reason_code: reason::SUCCESS,
            is_superuser: false,
            is_anonymous: true,
        };
        for h in self.hooks() {
            h.client_check_authn_complete(client, &authn);
        }
        authn
    }

    /// Decides whether `client` may publish to or subscribe to `topic`.
    pub fn authorize(&self, client: &ClientInfo, action: AuthzAction, topic: &str) -> Authz {
        let authz = Authz {
            allow: true,
            source: "default",
        };
        for h in self.hooks() {
            h.client_check_authz_complete(client, action, topic, &authz);
        }
        authz
    }

    /// Tells hooks a CONNACK with `reason_code` (MQTT 5) is being sent to `client`.
    pub fn connack(&self, client: &ClientInfo, reason_code: u8) {
        for h in self.hooks() {
            h.client_connack(client, reason_code);
        }
    }

    /// Tells hooks a message for `to` was dropped before it reached it.
    pub fn delivery_dropped(&self, to: &ClientInfo, msg: &Arc<Message>, why: DeliveryDropReason) {
        for h in self.hooks() {
            h.delivery_dropped(to, msg, why);
        }
    }

    /// [`crate::SessionState::next_batch`] on `session`, telling hooks about the messages
    /// that expired in the queue (after the session lock is released).
    pub fn next_batch(
        &self,
        session: &Session,
        conn_id: u64,
        window: usize,
        limit: usize,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) {
        let mut expired: Vec<Delivery> = Vec::new();
        let client = {
            let mut st = session.lock();
            st.next_batch_reporting(
                conn_id,
                window,
                limit,
                now,
                self.metrics(),
                out,
                &mut expired,
            );
            if expired.is_empty() {
                return;
            }
            st.client().clone()
        };
        for d in &expired {
            self.delivery_dropped(&client, &d.msg, DeliveryDropReason::Expired);
        }
    }
}
