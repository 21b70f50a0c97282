//! The metrics reference, `docs/metrics.md`, rendered from the registry itself: a registry
//! with one rule, action and source is encoded exactly as a scrape would be, and the table is
//! read back from that text (name, type, labels, help), so it cannot drift from what Ferry
//! serves. The EMQX JSON names come from the definitions in [`crate::names`].
//!
//! The gauges the `ferry` binary computes at scrape time (crates/ferry/src/monitor.rs) are not
//! in this crate's registry; [`binary_gauges`] lists them, and the Prometheus integration test
//! of the `ferry` crate checks that every family a running Ferry serves is in the document.
//!
//! Regenerate with `FERRY_BLESS=1 cargo test -p ferry-metrics docs`.

use std::collections::BTreeMap;

use crate::names::MetricSet;
use crate::{
    ActionMetric, BrokerMetric, PersistMetric, Registry, RuleMetric, Sample, SourceMetric,
};

/// The name given to the one rule, action, source and connector of the rendered registry;
/// rendered as "configured name".
const OBJECT: &str = "NAME";

/// The `/stats` gauges `ferry` adds at scrape time: (Prometheus name, EMQX JSON name).
const STATS: [(&str, &str); 6] = [
    ("connections", "connections.count"),
    ("live_connections", "live_connections.count"),
    ("retained_messages", "retained.count"),
    ("sessions", "sessions.count"),
    ("subscriptions", "subscriptions.count"),
    ("topics", "topics.count"),
];

/// The gauges `ferry` adds at scrape time (crates/ferry/src/monitor.rs), with the help
/// text it uses.
pub fn binary_gauges() -> Vec<Sample> {
    let mut out: Vec<Sample> = STATS
        .iter()
        .map(|(n, _)| Sample::gauge(n, "Current count (EMQX /stats).", 0.0))
        .collect();
    for (metric, label, help) in [
        (
            "connector_state",
            "connector",
            "1 for the connector's current state, 0 for the others.",
        ),
        (
            "action_state",
            "action",
            "1 for the action's current state, 0 for the others.",
        ),
        (
            "source_state",
            "source",
            "1 for the source's current state, 0 for the others.",
        ),
    ] {
        for state in ["connected", "connecting", "disconnected", "stopped"] {
            out.push(
                Sample::gauge(metric, help, 0.0)
                    .label(label, OBJECT)
                    .label("state", state),
            );
        }
    }
    out
}

/// One family as read back from the exposition.
#[derive(Debug, Default)]
struct Family {
    name: String,
    kind: String,
    help: String,
    /// Label key → values seen, in first-seen order (`le` left out).
    labels: Vec<(String, Vec<String>)>,
}

fn parse(text: &str) -> Vec<Family> {
    let mut out: Vec<Family> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            out.push(Family {
                name: name.to_owned(),
                help: help.replace("\\\\", "\\").replace("\\n", " "),
                ..Family::default()
            });
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            if let (Some(f), Some((_, kind))) = (out.last_mut(), rest.split_once(' ')) {
                kind.clone_into(&mut f.kind);
            }
        } else if line.starts_with('#') || line.is_empty() {
            continue;
        } else if let Some(f) = out.last_mut() {
            let Some((_, rest)) = line.split_once('{') else {
                continue;
            };
            let Some((labels, _)) = rest.rsplit_once('}') else {
                continue;
            };
            // Values here are configured names and closed enums: no quotes or commas inside.
            for pair in labels.split(',').filter(|p| !p.is_empty()) {
                let Some((k, v)) = pair.split_once('=') else {
                    continue;
                };
                if k == "le" {
                    continue;
                }
                let v = v.trim_matches('"').to_owned();
                match f.labels.iter_mut().find(|(key, _)| key == k) {
                    Some((_, vs)) => {
                        if !vs.contains(&v) {
                            vs.push(v);
                        }
                    }
                    None => f.labels.push((k.to_owned(), vec![v])),
                }
            }
        }
    }
    out
}

/// Prometheus family (with prefix, counters with `_total`) → EMQX JSON names of its series.
fn json_names() -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    fn add<M: MetricSet>(out: &mut BTreeMap<String, Vec<String>>) {
        for m in M::ALL {
            let d = m.def();
            out.entry(format!("{}_{}", crate::PREFIX, d.name))
                .or_default()
                .push(d.json.to_owned());
        }
        for d in M::DERIVED {
            out.entry(format!("{}_{}", crate::PREFIX, d.name))
                .or_default()
                .push(d.json.to_owned());
        }
    }
    add::<BrokerMetric>(&mut out);
    add::<PersistMetric>(&mut out);
    add::<RuleMetric>(&mut out);
    add::<ActionMetric>(&mut out);
    add::<SourceMetric>(&mut out);
    for (name, json) in STATS {
        out.insert(format!("{}_{name}", crate::PREFIX), vec![json.to_owned()]);
    }
    out
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

/// The whole of `docs/metrics.md`.
pub fn markdown() -> String {
    let reg = Registry::default();
    reg.rule(OBJECT);
    reg.action(OBJECT);
    reg.source(OBJECT);
    let families = parse(&reg.encode_prometheus(&binary_gauges()));
    let json = json_names();
    let mut out = String::from(
        "# Ferry metrics reference\n\n\
         <!-- Generated from the registry by crates/ferry-metrics/src/doc.rs; do not edit.\n     \
         Regenerate: FERRY_BLESS=1 cargo test -p ferry-metrics docs -->\n\n\
         Every Prometheus metric Ferry serves at `GET /metrics` and `GET /api/v5/prometheus/stats`\n\
         on the API listener (`[api] bind`, default `0.0.0.0:18083`; no authentication unless\n\
         `[api] metrics_auth = true`). Names carry the `ferry_`\n\
         prefix; counters end in `_total`, durations are `_seconds`, sizes `_bytes`. Labels are\n\
         closed sets listed here or the configured name of a rule, action, source or connector:\n\
         never a client id, username or topic, so the number of series does not grow with clients.\n\
         The JSON column names the same number in the API's JSON (`/api/v5/metrics`, `/api/v5/stats`,\n\
         and the `metrics` of a rule, action or source).\n\
         `examples/observability/` has a Prometheus config and a Grafana dashboard over them.\n\n",
    );
    let buckets: Vec<String> = crate::BUCKETS_SECONDS
        .iter()
        .map(|b| format!("`{b}`"))
        .collect();
    out.push_str(&format!(
        "Histograms (`_bucket`, `_sum`, `_count`) have the buckets `le` = {}, `+Inf` (seconds).\n\n\
         | Name | Type | Labels | Help | JSON |\n|---|---|---|---|---|\n",
        buckets.join(", ")
    ));
    for f in families {
        let labels: Vec<String> = f
            .labels
            .iter()
            .map(|(k, vs)| {
                if vs.iter().all(|v| v == OBJECT) {
                    format!("`{k}` (configured name)")
                } else if k == "version" {
                    format!("`{k}` (Ferry's version)")
                } else {
                    let vs: Vec<String> = vs.iter().map(|v| format!("`{v}`")).collect();
                    format!("`{k}`: {}", vs.join(", "))
                }
            })
            .collect();
        let js: Vec<String> = json
            .get(&f.name)
            .map(|v| v.iter().map(|j| format!("`{j}`")).collect())
            .unwrap_or_default();
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            f.name,
            f.kind,
            cell(&labels.join("; ")),
            cell(&f.help),
            js.join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `docs/metrics.md` is what [`markdown`] renders.
    #[test]
    fn docs_metrics_md_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/metrics.md");
        let want = markdown();
        if std::env::var_os("FERRY_BLESS").is_some() {
            std::fs::write(path, &want).unwrap_or_else(|e| panic!("writing {path}: {e}"));
            return;
        }
        let have = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            have == want,
            "docs/metrics.md is out of date with the metrics registry; regenerate it with\n    \
             FERRY_BLESS=1 cargo test -p ferry-metrics docs\nand commit it"
        );
    }

    #[test]
    fn docs_cover_every_family_and_label() {
        let md = markdown();
        for name in [
            "ferry_messages_received_total",
            "ferry_action_latency_seconds",
            "ferry_source_lag",
            "ferry_state_commits_total",
            "ferry_state_commit_seconds",
            "ferry_connector_state",
            "ferry_process_cpu_seconds_total",
            "ferry_build_info",
        ] {
            assert!(md.contains(&format!("| `{name}` |")), "{name} missing");
        }
        assert!(md.contains("`qos`: `0`, `1`, `2`"), "{md}");
        assert!(md.contains("`action` (configured name)"), "{md}");
        assert!(
            md.contains(
                "| `ferry_action_latency_seconds` | histogram | `action` (configured name) |"
            ),
            "{md}"
        );
    }
}
