//! Broker counters: the broker's scope of the one metrics registry (`ferry-metrics`).
//! Relaxed atomics indexed by [`BrokerMetric`]; gauges are paired counters
//! (opened/closed) or computed at scrape time, so nothing decrements racily.

pub use ferry_metrics::BrokerMetric;
use ferry_mqtt::QoS;

/// The broker-wide counters (`Broker::metrics`).
pub type Metrics = ferry_metrics::Counters<BrokerMetric>;

/// Messages received with QoS `q`.
pub fn received(q: QoS) -> BrokerMetric {
    BrokerMetric::RECEIVED[qos_index(q)]
}

/// Messages sent with QoS `q`.
pub fn sent(q: QoS) -> BrokerMetric {
    BrokerMetric::SENT[qos_index(q)]
}

fn qos_index(q: QoS) -> usize {
    match q {
        QoS::AtMostOnce => 0,
        QoS::AtLeastOnce => 1,
        QoS::ExactlyOnce => 2,
    }
}
