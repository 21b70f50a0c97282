//! Runtime configuration: the config file is the base, and changes made through the API are
//! an overlay kept in `DATA/config/overlay.json`. The effective config is the file with every
//! overlay entry applied: an entry replaces the object of that name (or adds it), a `null`
//! entry deletes it. Only rules, Kafka connectors, actions and sources are in the overlay;
//! everything else comes from the file alone. `ferry config show` prints the effective
//! config. See docs/adr/0006-runtime-configuration.md.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use ferry_engine::RuleConfig;
use ferry_kafka::ProducerConfig;
use ferry_kafka::config::ConnectorConfig;
use ferry_kafka::source::SourceConfig;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Config;

/// What the API changed, by object: `Some` replaces or adds, `None` deletes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Overlay {
    pub rules: BTreeMap<String, Option<RuleConfig>>,
    pub connectors: BTreeMap<String, Option<ConnectorConfig>>,
    pub actions: BTreeMap<String, Option<ProducerConfig>>,
    pub sources: BTreeMap<String, Option<SourceConfig>>,
}

/// The kinds of objects the overlay holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Rule,
    Connector,
    Action,
    Source,
}

impl Kind {
    /// The config file key of the object's section.
    pub fn key(self, name: &str) -> String {
        match self {
            Kind::Rule => format!("rules.{name}"),
            Kind::Connector => format!("connectors.kafka.{name}"),
            Kind::Action => format!("actions.kafka.{name}"),
            Kind::Source => format!("sources.kafka.{name}"),
        }
    }
}

fn apply<T: Clone>(base: &mut BTreeMap<String, T>, over: &BTreeMap<String, Option<T>>) {
    for (name, v) in over {
        match v {
            Some(v) => {
                base.insert(name.clone(), v.clone());
            }
            None => {
                base.remove(name);
            }
        }
    }
}

fn json_of<T: Serialize>(v: Option<&T>) -> Option<Value> {
    v.and_then(|v| serde_json::to_value(v).ok())
}

/// Parses `v` as `T`, naming `key` in the error.
fn parse<T: for<'de> Deserialize<'de>>(key: &str, v: Value) -> Result<T, String> {
    serde_json::from_value(v).map_err(|e| format!("{key}: {e}"))
}

impl Overlay {
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join("config").join("overlay.json")
    }

    /// Reads the overlay of `data_dir` (empty if there is none).
    pub fn load(data_dir: &Path) -> Result<Overlay, String> {
        let path = Overlay::path(data_dir);
        match std::fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Overlay::default()),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    /// Writes the overlay atomically: a temporary file, fsync, rename, fsync of the dir.
    pub fn save(&self, data_dir: &Path) -> std::io::Result<()> {
        let path = Overlay::path(data_dir);
        let dir = path.parent().unwrap_or(data_dir);
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join("overlay.json.tmp");
        let text = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&text)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(dir)?.sync_all()
    }

    /// `base` with this overlay applied.
    pub fn apply_to(&self, base: &Config) -> Config {
        let mut c = base.clone();
        apply(&mut c.rules, &self.rules);
        apply(&mut c.connectors.kafka, &self.connectors);
        apply(&mut c.actions.kafka, &self.actions);
        apply(&mut c.sources.kafka, &self.sources);
        c
    }

    /// Sets (`Some`) or deletes (`None`) one object; `config` is its section as JSON.
    pub fn set(&mut self, kind: Kind, name: &str, config: Option<Value>) -> Result<(), String> {
        let key = kind.key(name);
        let n = name.to_owned();
        match kind {
            Kind::Rule => {
                let v = config.map(|c| parse(&key, c)).transpose()?;
                self.rules.insert(n, v);
            }
            Kind::Connector => {
                let v = config.map(|c| parse(&key, c)).transpose()?;
                self.connectors.insert(n, v);
            }
            Kind::Action => {
                let v = config.map(|c| parse(&key, c)).transpose()?;
                self.actions.insert(n, v);
            }
            Kind::Source => {
                let v = config.map(|c| parse(&key, c)).transpose()?;
                self.sources.insert(n, v);
            }
        }
        Ok(())
    }
}

/// One object's section of `cfg`, as JSON.
pub fn section(cfg: &Config, kind: Kind, name: &str) -> Option<Value> {
    match kind {
        Kind::Rule => json_of(cfg.rules.get(name)),
        Kind::Connector => json_of(cfg.connectors.kafka.get(name)),
        Kind::Action => json_of(cfg.actions.kafka.get(name)),
        Kind::Source => json_of(cfg.sources.kafka.get(name)),
    }
}

/// The names of every object of `kind` in `cfg`.
pub fn names(cfg: &Config, kind: Kind) -> Vec<String> {
    match kind {
        Kind::Rule => cfg.rules.keys().cloned().collect(),
        Kind::Connector => cfg.connectors.kafka.keys().cloned().collect(),
        Kind::Action => cfg.actions.kafka.keys().cloned().collect(),
        Kind::Source => cfg.sources.kafka.keys().cloned().collect(),
    }
}

/// The objects that use `(kind, name)`: actions and sources use a connector, rules use an
/// action.
pub fn dependents(cfg: &Config, kind: Kind, name: &str) -> Vec<(Kind, String)> {
    match kind {
        Kind::Connector => cfg
            .actions
            .kafka
            .iter()
            .filter(|(_, a)| a.connector == name)
            .map(|(n, _)| (Kind::Action, n.clone()))
            .chain(
                cfg.sources
                    .kafka
                    .iter()
                    .filter(|(_, s)| s.connector == name)
                    .map(|(n, _)| (Kind::Source, n.clone())),
            )
            .collect(),
        Kind::Action => cfg
            .rules
            .iter()
            .filter(|(_, r)| r.actions.iter().any(|a| uses_action(a, name)))
            .map(|(n, _)| (Kind::Rule, n.clone()))
            .collect(),
        Kind::Rule | Kind::Source => Vec::new(),
    }
}

/// Does a rule's action reference name the Kafka action `name`?
pub fn uses_action(a: &ferry_engine::ActionRef, name: &str) -> bool {
    matches!(a, ferry_engine::ActionRef::Named(n)
        if n.strip_prefix("kafka:").or_else(|| n.strip_prefix("kafka_producer:")) == Some(name))
}

/// Prints the effective config of `base` (its overlay read from its data dir) as TOML.
pub fn effective(base: &Config) -> Result<Config, String> {
    Ok(Overlay::load(&base.node.data_dir)?.apply_to(base))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn overlay_replaces_adds_and_deletes_and_persists() {
        let base = Config::parse(
            "[rules.a]\nsql = 'SELECT * FROM \"t\"'\n[rules.b]\nsql = 'SELECT * FROM \"u\"'\n",
            "t",
        )
        .unwrap();
        let mut o = Overlay::default();
        o.set(
            Kind::Rule,
            "a",
            Some(serde_json::json!({"sql": "SELECT 1 AS x FROM \"t\""})),
        )
        .unwrap();
        o.set(Kind::Rule, "b", None).unwrap();
        o.set(
            Kind::Rule,
            "c",
            Some(serde_json::json!({"sql": "SELECT * FROM \"v\"", "enable": false})),
        )
        .unwrap();
        let eff = o.apply_to(&base);
        assert_eq!(eff.rules["a"].sql, "SELECT 1 AS x FROM \"t\"");
        assert!(!eff.rules.contains_key("b"));
        assert!(!eff.rules["c"].enable);
        let dir = tempfile::tempdir().unwrap();
        o.save(dir.path()).unwrap();
        assert_eq!(Overlay::load(dir.path()).unwrap(), o);
        let e = o
            .set(Kind::Rule, "d", Some(serde_json::json!({"sqll": "x"})))
            .unwrap_err();
        assert!(e.starts_with("rules.d: unknown field `sqll`"), "{e}");
    }
}
