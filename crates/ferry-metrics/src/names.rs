//! Every metric Ferry counts, in one place: one enum per scope, each variant with its
//! Prometheus family (without the `ferry_` prefix), its closed-enum labels, its EMQX JSON
//! name and its help text. Several variants may share one family with different label
//! values: that is how "dropped by reason" and "received by QoS" work.
//!
//! Labels here are closed sets written in this file. The only open label is the scope's
//! (`rule`, `action`, `source`), whose values are configured object names; nothing takes a
//! client id, username or topic as a label.

/// How a metric is stored and exposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (until a reset); `inc`/`add`.
    Counter,
    /// A value that is `set` from time to time (not on the hot path).
    Gauge,
}

/// The definition of one metric (one series within its scope).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Def {
    /// Prometheus family without the `ferry_` prefix, e.g. `messages_dropped_total`.
    pub name: &'static str,
    /// Closed-enum labels of this series, e.g. `[("reason", "queue_full")]`.
    pub labels: &'static [(&'static str, &'static str)],
    /// EMQX JSON name, e.g. `messages.dropped.queue_full`.
    pub json: &'static str,
    pub help: &'static str,
    pub kind: Kind,
}

/// A gauge derived from paired counters: `sum(plus) - sum(minus)`, so nothing decrements
/// racily (e.g. `queuing = enqueued - dequeued`).
#[derive(Debug, Clone, Copy)]
pub struct Derived<M: 'static> {
    pub name: &'static str,
    pub json: &'static str,
    pub help: &'static str,
    pub plus: &'static [M],
    pub minus: &'static [M],
}

/// A JSON-only sum over the series of one family (EMQX's `messages.dropped` next to its
/// reasons). Prometheus users `sum()` the family instead.
#[derive(Debug, Clone, Copy)]
pub struct Total<M: 'static> {
    pub json: &'static str,
    pub of: &'static [M],
}

/// A closed set of metrics of one scope.
pub trait MetricSet: Copy + Eq + std::fmt::Debug + Send + Sync + 'static {
    /// Every variant, in index order.
    const ALL: &'static [Self];
    /// Gauges computed from paired counters.
    const DERIVED: &'static [Derived<Self>] = &[];
    /// JSON totals over label values.
    const TOTALS: &'static [Total<Self>] = &[];
    /// The scope label (`rule`, `action`, `source`), or `None` for broker-wide metrics.
    const SCOPE: Option<&'static str>;
    fn def(self) -> Def;
    /// Position in [`Self::ALL`].
    fn index(self) -> usize;
}

macro_rules! metric_set {
    (
        $(#[$meta:meta])*
        $name:ident, scope = $scope:expr, derived = $derived:expr, totals = $totals:expr;
        $( $(#[$vmeta:meta])* $v:ident => ($fam:literal, [$(($lk:literal, $lv:literal)),*], $json:literal, $kind:ident, $help:literal), )*
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $( $(#[$vmeta])* $v, )* }

        impl $name {
            const DEFS: &'static [Def] = &[ $( Def {
                name: $fam,
                labels: &[$(($lk, $lv)),*],
                json: $json,
                help: $help,
                kind: Kind::$kind,
            }, )* ];
        }

        impl MetricSet for $name {
            const ALL: &'static [Self] = &[ $( $name::$v, )* ];
            const SCOPE: Option<&'static str> = $scope;
            const DERIVED: &'static [Derived<Self>] = $derived;
            const TOTALS: &'static [Total<Self>] = $totals;
            fn def(self) -> Def {
                Self::DEFS[self as usize]
            }
            fn index(self) -> usize {
                self as usize
            }
        }
    };
}

metric_set! {
    /// Broker-wide counters.
    BrokerMetric, scope = None, derived = &[], totals = &[
        Total { json: "messages.received", of: &BrokerMetric::RECEIVED },
        Total { json: "messages.sent", of: &BrokerMetric::SENT },
        Total { json: "messages.dropped", of: &[
            BrokerMetric::DroppedQueueFull,
            BrokerMetric::DroppedExpired,
            BrokerMetric::DroppedTooLarge,
            BrokerMetric::DroppedNoSubscribers,
        ] },
        Total { json: "authentication.failure", of: &[
            BrokerMetric::AuthnBadCredentials,
            BrokerMetric::AuthnNotAuthorized,
        ] },
    ];
    ConnectionsOpened => ("connections_opened_total", [], "client.connected", Counter, "Connections accepted (CONNECT answered with success)."),
    ConnectionsClosed => ("connections_closed_total", [], "client.disconnected", Counter, "Connections closed."),
    ReceivedQos0 => ("messages_received_total", [("qos", "0")], "messages.qos0.received", Counter, "PUBLISH messages received from clients and in-process publishers, by QoS."),
    ReceivedQos1 => ("messages_received_total", [("qos", "1")], "messages.qos1.received", Counter, "PUBLISH messages received from clients and in-process publishers, by QoS."),
    ReceivedQos2 => ("messages_received_total", [("qos", "2")], "messages.qos2.received", Counter, "PUBLISH messages received from clients and in-process publishers, by QoS."),
    SentQos0 => ("messages_sent_total", [("qos", "0")], "messages.qos0.sent", Counter, "PUBLISH messages sent to subscribers, by QoS."),
    SentQos1 => ("messages_sent_total", [("qos", "1")], "messages.qos1.sent", Counter, "PUBLISH messages sent to subscribers, by QoS."),
    SentQos2 => ("messages_sent_total", [("qos", "2")], "messages.qos2.sent", Counter, "PUBLISH messages sent to subscribers, by QoS."),
    DroppedQueueFull => ("messages_dropped_total", [("reason", "queue_full")], "messages.dropped.queue_full", Counter, "Messages dropped, by reason."),
    DroppedExpired => ("messages_dropped_total", [("reason", "expired")], "messages.dropped.expired", Counter, "Messages dropped, by reason."),
    DroppedTooLarge => ("messages_dropped_total", [("reason", "too_large")], "messages.dropped.too_large", Counter, "Messages dropped, by reason."),
    DroppedNoSubscribers => ("messages_dropped_total", [("reason", "no_subscribers")], "messages.dropped.no_subscribers", Counter, "Messages dropped, by reason."),
    BytesReceived => ("bytes_received_total", [], "bytes.received", Counter, "Bytes read from MQTT connections."),
    BytesSent => ("bytes_sent_total", [], "bytes.sent", Counter, "Bytes written to MQTT connections."),
    PacketsReceived => ("packets_received_total", [], "packets.received", Counter, "MQTT packets read."),
    PacketsSent => ("packets_sent_total", [], "packets.sent", Counter, "MQTT packets written."),
    ProtocolErrors => ("protocol_errors_total", [], "packets.protocol_error", Counter, "Connections closed for a protocol error."),
    HandshakeFailedTls => ("listener_handshake_failures_total", [("reason", "tls")], "listener.handshake_failed.tls", Counter, "Connections closed before MQTT began, by reason: TLS handshake (wrong or missing certificate, not TLS), WebSocket upgrade (bad request, path or subprotocol), PROXY header, timeout."),
    HandshakeFailedWebsocket => ("listener_handshake_failures_total", [("reason", "websocket")], "listener.handshake_failed.websocket", Counter, "Connections closed before MQTT began, by reason: TLS handshake (wrong or missing certificate, not TLS), WebSocket upgrade (bad request, path or subprotocol), PROXY header, timeout."),
    HandshakeFailedProxy => ("listener_handshake_failures_total", [("reason", "proxy_protocol")], "listener.handshake_failed.proxy_protocol", Counter, "Connections closed before MQTT began, by reason: TLS handshake (wrong or missing certificate, not TLS), WebSocket upgrade (bad request, path or subprotocol), PROXY header, timeout."),
    HandshakeFailedTimeout => ("listener_handshake_failures_total", [("reason", "timeout")], "listener.handshake_failed.timeout", Counter, "Connections closed before MQTT began, by reason: TLS handshake (wrong or missing certificate, not TLS), WebSocket upgrade (bad request, path or subprotocol), PROXY header, timeout."),
    WebsocketNotBinary => ("websocket_errors_total", [("reason", "not_binary")], "listener.websocket_error.not_binary", Counter, "WebSocket connections closed for a bad frame, by reason (a text frame, a frame larger than the limit, another protocol violation)."),
    WebsocketFrameTooLarge => ("websocket_errors_total", [("reason", "frame_too_large")], "listener.websocket_error.frame_too_large", Counter, "WebSocket connections closed for a bad frame, by reason (a text frame, a frame larger than the limit, another protocol violation)."),
    WebsocketProtocol => ("websocket_errors_total", [("reason", "protocol")], "listener.websocket_error.protocol", Counter, "WebSocket connections closed for a bad frame, by reason (a text frame, a frame larger than the limit, another protocol violation)."),
    CertReloaded => ("listener_cert_reloads_total", [("result", "ok")], "listener.cert_reload.ok", Counter, "Certificate reloads of ssl/wss listeners (files changed or SIGHUP), by result; a failed reload keeps the previous certificate."),
    ConnRateLimited => ("listener_conn_rate_limited_total", [], "listener.conn_rate_limited", Counter, "Times a listener waited before accepting the next connection because of its max_conn_rate."),
    RefusedBanned => ("connections_refused_total", [("reason", "banned")], "client.refused.banned", Counter, "CONNECTs refused by the broker's limits, by reason (banned client id, username or address)."),
    Throttled => ("clients_throttled_total", [], "client.throttled", Counter, "Times a connection was not read for a while because its client went over client_message_rate or client_byte_rate."),
    PublishersHeld => ("publishers_held_total", [], "messages.publisher_held", Counter, "PUBLISH packets whose publisher was held (not read, not acknowledged) because a subscriber's queue was full (mqtt.queue_full = backpressure)."),
    SlowSubscribersDisconnected => ("slow_subscribers_disconnected_total", [], "client.slow_disconnected", Counter, "Subscribers disconnected (0x97) because their queue stayed full for mqtt.slow_subscriber_timeout."),
    SubscriptionsRefusedQuota => ("subscriptions_refused_total", [("reason", "quota")], "subscriptions.refused.quota", Counter, "Subscriptions refused, by reason (the client holds max_subscriptions already)."),
    RetainedNotKeptCount => ("retained_not_kept_total", [("reason", "max_count")], "retained.not_kept.max_count", Counter, "Retained messages delivered but not kept, by reason (max_retained_messages or max_retained_bytes reached, payload above max_retained_payload_size)."),
    RetainedNotKeptSize => ("retained_not_kept_total", [("reason", "payload_too_large")], "retained.not_kept.payload_too_large", Counter, "Retained messages delivered but not kept, by reason (max_retained_messages or max_retained_bytes reached, payload above max_retained_payload_size)."),
    RetainedNotKeptBytes => ("retained_not_kept_total", [("reason", "max_bytes")], "retained.not_kept.max_bytes", Counter, "Retained messages delivered but not kept, by reason (max_retained_messages or max_retained_bytes reached, payload above max_retained_payload_size)."),
    RetainedExpiredPurged => ("retained_expired_purged_total", [], "retained.expired_purged", Counter, "Expired retained messages removed from the store (when a bound is reached, and every 4,096 stores)."),
    CertReloadFailed => ("listener_cert_reloads_total", [("result", "failed")], "listener.cert_reload.failed", Counter, "Certificate reloads of ssl/wss listeners (files changed or SIGHUP), by result; a failed reload keeps the previous certificate."),
    AuthnSuccess => ("authentication_total", [("result", "success")], "authentication.success", Counter, "CONNECTs authenticated, by result: accepted by a method, accepted as anonymous, refused by reason."),
    AuthnAnonymous => ("authentication_total", [("result", "anonymous")], "authentication.success.anonymous", Counter, "CONNECTs authenticated, by result: accepted by a method, accepted as anonymous, refused by reason."),
    AuthnBadCredentials => ("authentication_total", [("result", "bad_username_or_password")], "authentication.failure.bad_username_or_password", Counter, "CONNECTs authenticated, by result: accepted by a method, accepted as anonymous, refused by reason."),
    AuthnNotAuthorized => ("authentication_total", [("result", "not_authorized")], "authentication.failure.not_authorized", Counter, "CONNECTs authenticated, by result: accepted by a method, accepted as anonymous, refused by reason."),
    /// An HTTP authentication service timed out, was unreachable or answered badly: the
    /// method ignored the client.
    AuthnHttpUnavailable => ("authentication_backend_errors_total", [("method", "http")], "authentication.http.unavailable", Counter, "Authentication methods that could not answer (timeout, unreachable, bad answer) and ignored the client, by method."),
    AuthnJwksRefreshed => ("authentication_jwks_refreshes_total", [("result", "ok")], "authentication.jwks_refresh.ok", Counter, "Fetches of JWT key sets from a JWKS URL (at start, periodic, early for an unknown kid), by result; a failed fetch keeps the last good key set."),
    AuthnJwksRefreshFailed => ("authentication_jwks_refreshes_total", [("result", "failed")], "authentication.jwks_refresh.failed", Counter, "Fetches of JWT key sets from a JWKS URL (at start, periodic, early for an unknown kid), by result; a failed fetch keeps the last good key set."),
    AuthzAllow => ("authorization_total", [("result", "allow")], "authorization.allow", Counter, "Authorization checks (PUBLISH, SUBSCRIBE), by result."),
    AuthzDeny => ("authorization_total", [("result", "deny")], "authorization.deny", Counter, "Authorization checks (PUBLISH, SUBSCRIBE), by result."),
    AuthzCacheHit => ("authorization_cache_hits_total", [], "authorization.cache_hit", Counter, "Authorization checks answered from the connection's cache."),
    AuthzSuperuser => ("authorization_superuser_total", [], "authorization.superuser", Counter, "Authorization checks skipped for a superuser."),
}

impl BrokerMetric {
    /// Messages received, by QoS 0, 1, 2.
    pub const RECEIVED: [BrokerMetric; 3] =
        [Self::ReceivedQos0, Self::ReceivedQos1, Self::ReceivedQos2];
    /// Messages sent, by QoS 0, 1, 2.
    pub const SENT: [BrokerMetric; 3] = [Self::SentQos0, Self::SentQos1, Self::SentQos2];
}

metric_set! {
    /// Per-rule counters (EMQX's rule metrics).
    RuleMetric, scope = Some("rule"), derived = &[], totals = &[
        Total { json: "failed", of: &[RuleMetric::FailedException, RuleMetric::FailedNoResult] },
    ];
    Matched => ("rule_matched_total", [], "matched", Counter, "Inputs whose FROM matched the rule."),
    Passed => ("rule_passed_total", [], "passed", Counter, "Inputs that passed WHERE and produced output."),
    FailedException => ("rule_failed_total", [("reason", "exception")], "failed.exception", Counter, "Inputs the rule failed on, by reason."),
    FailedNoResult => ("rule_failed_total", [("reason", "no_result")], "failed.no_result", Counter, "Inputs the rule failed on, by reason."),
    ActionsTotal => ("rule_actions_total", [], "actions.total", Counter, "Action runs started by the rule."),
    ActionsSuccess => ("rule_actions_success_total", [], "actions.success", Counter, "Action runs that succeeded."),
    ActionsFailed => ("rule_actions_failed_total", [], "actions.failed", Counter, "Action runs that failed."),
    /// `payload.…` paths that met a payload that is not JSON.
    PayloadNotJson => ("rule_payload_not_json_total", [], "payload_not_json", Counter, "Inputs whose payload was read as JSON but was not JSON."),
}

metric_set! {
    /// Per-action counters (Kafka producer actions; EMQX's action metrics).
    ActionMetric, scope = Some("action"), derived = &[
        Derived {
            name: "action_queuing",
            json: "queuing",
            help: "Records waiting in the action's queue.",
            plus: &[ActionMetric::Enqueued],
            minus: &[ActionMetric::Dequeued],
        },
        Derived {
            name: "action_inflight",
            json: "inflight",
            help: "Records handed to the Kafka producer and not yet acknowledged.",
            plus: &[ActionMetric::InflightSent],
            minus: &[ActionMetric::InflightDone],
        },
    ], totals = &[
        Total { json: "dropped", of: &[
            ActionMetric::DroppedQueueFull,
            ActionMetric::DroppedBufferOldest,
            ActionMetric::DroppedBufferNewest,
            ActionMetric::DroppedResourceStopped,
            ActionMetric::DroppedRetryQueueFull,
        ] },
    ];
    Matched => ("action_matched_total", [], "matched", Counter, "Records handed to the action."),
    Success => ("action_success_total", [], "success", Counter, "Records Kafka acknowledged."),
    Failed => ("action_failed_total", [], "failed", Counter, "Records that failed (not rendered, rejected, retries exhausted)."),
    DroppedQueueFull => ("action_dropped_total", [("reason", "queue_full")], "dropped.queue_full", Counter, "Records dropped, by reason."),
    Retried => ("action_retried_total", [], "retried", Counter, "Sends retried after a retryable failure."),
    Enqueued => ("action_enqueued_total", [], "enqueued", Counter, "Records put into the action's queue (async mode)."),
    Dequeued => ("action_dequeued_total", [], "dequeued", Counter, "Records taken out of the action's queue."),
    InflightSent => ("action_sent_total", [], "sent", Counter, "Records handed to the Kafka producer."),
    InflightDone => ("action_completed_total", [], "completed", Counter, "Records the Kafka producer finished with (acknowledged or failed)."),
    /// Disk buffer: the oldest records acknowledged without delivery to make room.
    DroppedBufferOldest => ("action_dropped_total", [("reason", "buffer_full_oldest")], "dropped.buffer_full_oldest", Counter, "Records dropped, by reason."),
    /// Disk buffer: the new record not stored (when_full = "drop_newest").
    DroppedBufferNewest => ("action_dropped_total", [("reason", "buffer_full_newest")], "dropped.buffer_full_newest", Counter, "Records dropped, by reason."),
    /// A graceful stop (or a reconfiguration) could neither deliver the record within the
    /// drain deadline nor write it to a disk buffer.
    DroppedResourceStopped => ("action_dropped_total", [("reason", "resource_stopped")], "dropped.resource_stopped", Counter, "Records dropped, by reason."),
    /// Disk buffer full with when_full = "backpressure" and too many records held: the
    /// PUBLISH was refused (0x97).
    RefusedBufferFull => ("action_refused_total", [("reason", "buffer_full")], "refused.buffer_full", Counter, "Records refused to the publisher (reason code 0x97), by reason."),
    /// Disk buffer: the hand-over channel to the buffer thread was full: refused (0x97).
    RefusedBufferBusy => ("action_refused_total", [("reason", "buffer_busy")], "refused.buffer_busy", Counter, "Records refused to the publisher (reason code 0x97), by reason."),
    BufferBytes => ("action_buffer_bytes", [], "buffer.bytes", Gauge, "Disk buffer: bytes of unacknowledged records."),
    BufferRecords => ("action_buffer_records", [], "buffer.records", Gauge, "Disk buffer: unacknowledged records."),
    BufferSegments => ("action_buffer_segments", [], "buffer.segments", Gauge, "Disk buffer: segment files."),
    BufferHeld => ("action_buffer_held", [], "buffer.held", Gauge, "Disk buffer full with when_full = \"backpressure\": records (and their publishers' PUBACKs) waiting for room."),
    BufferMemoryRecords => ("action_buffer_memory_records", [], "buffer.memory_records", Gauge, "Hybrid buffer: records kept in memory (acknowledged, not yet delivered)."),
    BufferMemoryBytes => ("action_buffer_memory_bytes", [], "buffer.memory_bytes", Gauge, "Hybrid buffer: bytes of the records kept in memory."),
    BufferSpilled => ("action_buffer_spilled_total", [], "buffer.spilled", Counter, "Hybrid buffer: records written to disk (memory over buffer_memory_bytes, or saved at a graceful stop)."),
    BufferOldestAgeMs => ("action_buffer_oldest_age_milliseconds", [], "buffer.oldest_age_ms", Gauge, "Disk buffer: age of the oldest unacknowledged record (since this process read or wrote it)."),
    BufferCommits => ("action_buffer_commits_total", [], "buffer.commits", Counter, "Disk buffer: group commits (one write and one fdatasync each)."),
    BufferErrors => ("action_buffer_errors_total", [], "buffer.errors", Counter, "Disk buffer: I/O errors (the records of a failed commit are refused with 0x80)."),
    BufferRecovered => ("action_buffer_recovered_total", [], "buffer.recovered", Counter, "Disk buffer: unacknowledged records found at start (sent to Kafka again)."),
    BufferRecoveryDropped => ("action_buffer_recovery_dropped_total", [], "buffer.recovery_dropped", Counter, "Disk buffer: records cut off at start (torn tail never acknowledged, or corrupt)."),
    Resent => ("action_resent_total", [], "resent", Counter, "Disk buffer: records sent to Kafka again after a restart (possible duplicates)."),
    /// Async mode: a record coming back for a retry found the retry queue full.
    DroppedRetryQueueFull => ("action_dropped_total", [("reason", "retry_queue_full")], "dropped.retry_queue_full", Counter, "Records dropped, by reason."),
    /// Topics whose partition count the action stopped keeping: not rendered for a while,
    /// or the cache full (the least recently used goes).
    PartitionCountsEvicted => ("action_partition_counts_evicted_total", [], "partition_counts.evicted", Counter, "Topics whose partition count the action stopped keeping (not rendered for a while, or the cache full: the least recently used goes)."),
}

metric_set! {
    /// Per-source counters (Kafka consumer sources).
    SourceMetric, scope = Some("source"), derived = &[
        Derived {
            name: "source_inflight",
            json: "inflight",
            help: "Records read and not yet delivered, failed or released.",
            plus: &[SourceMetric::Received],
            minus: &[SourceMetric::Delivered, SourceMetric::Failed, SourceMetric::Released],
        },
    ], totals = &[];
    Received => ("source_received_total", [], "received", Counter, "Records read from Kafka."),
    Delivered => ("source_delivered_total", [], "delivered", Counter, "Records delivered (published, and acknowledged by every QoS 1/2 subscriber or, with persistence, durably queued for it while it is offline)."),
    Failed => ("source_failed_total", [], "failed", Counter, "Records that could not be mapped to an MQTT message (skipped)."),
    Released => ("source_released_total", [], "released", Counter, "Records given back unsettled (partition revoked or source stopped); the next owner reads them again."),
    Commits => ("source_commits_total", [], "commits", Counter, "Offset commits that succeeded."),
    /// Records a revocation is waiting for (0 when no rebalance is draining).
    Draining => ("source_draining", [], "draining", Gauge, "Records a partition revocation is waiting for."),
    /// Sum over partitions of high watermark − next offset (every 5 s).
    Lag => ("source_lag", [], "lag", Gauge, "Consumer lag summed over the source's partitions (updated every 5 s)."),
}

metric_set! {
    /// MQTT state persistence (`[node] persistence`, ADR 0007): the sync task's work and
    /// what the restore at start found. All zero when persistence is off.
    PersistMetric, scope = None, derived = &[], totals = &[
        Total { json: "state.restore_dropped", of: &[
            PersistMetric::DroppedExpiredSessions,
            PersistMetric::DroppedInvalidSubscriptions,
            PersistMetric::DroppedExpiredRetained,
        ] },
    ];
    Syncs => ("state_syncs_total", [], "state.syncs", Counter, "MQTT state syncs run (every state_sync_interval, on demand in strict mode, at stop), including those with nothing to write."),
    Commits => ("state_commits_total", [], "state.commits", Counter, "MQTT state store transactions committed (syncs with something to write)."),
    CommitErrors => ("state_commit_errors_total", [], "state.commit_errors", Counter, "MQTT state commits that failed (their changes are retried by the next sync)."),
    Changes => ("state_changes_written_total", [], "state.changes_written", Counter, "Records written to the MQTT state store (session puts and deletes, retained sets and deletes)."),
    Marked => ("state_sessions_marked_total", [], "state.sessions_marked", Counter, "Times a persistent session was marked for writing by the next sync."),
    /// Queued deliveries of in-process publishers (Kafka sources) settled because their
    /// offline persistent session's queue was committed.
    DurablyQueued => ("state_durably_queued_total", [], "state.durably_queued", Counter, "Deliveries of in-process publishers (Kafka sources) to offline persistent sessions counted as delivered once committed to the store."),
    LastCommitMicros => ("state_last_commit_duration_microseconds", [], "state.last_commit_us", Gauge, "Duration of the last MQTT state commit (snapshot and store transaction)."),
    RestoredSessions => ("state_restored", [("what", "sessions")], "state.restored.sessions", Gauge, "MQTT state restored from the store at start, by kind."),
    RestoredSubscriptions => ("state_restored", [("what", "subscriptions")], "state.restored.subscriptions", Gauge, "MQTT state restored from the store at start, by kind."),
    RestoredQueued => ("state_restored", [("what", "queued_messages")], "state.restored.queued_messages", Gauge, "MQTT state restored from the store at start, by kind."),
    RestoredInflight => ("state_restored", [("what", "inflight_messages")], "state.restored.inflight_messages", Gauge, "MQTT state restored from the store at start, by kind."),
    RestoredRetained => ("state_restored", [("what", "retained_messages")], "state.restored.retained_messages", Gauge, "MQTT state restored from the store at start, by kind."),
    DroppedExpiredSessions => ("state_restore_dropped", [("reason", "session_expired")], "state.restore_dropped.session_expired", Gauge, "Stored MQTT state dropped at start, by reason."),
    DroppedInvalidSubscriptions => ("state_restore_dropped", [("reason", "subscription_invalid")], "state.restore_dropped.subscription_invalid", Gauge, "Stored MQTT state dropped at start, by reason."),
    DroppedExpiredRetained => ("state_restore_dropped", [("reason", "retained_expired")], "state.restore_dropped.retained_expired", Gauge, "Stored MQTT state dropped at start, by reason."),
}
