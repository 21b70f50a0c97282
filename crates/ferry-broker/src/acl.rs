//! Authorization rules (the ACL): `[authorization]` and its `[[authorization.rules]]`, compiled
//! at load time, matched in order (first match wins, then `no_match`). Pure logic: no I/O.
//! Per-client rules (from a JWT `acl` claim or an HTTP authentication answer) use the same
//! [`AclRule`] and are tried before the configured ones.
//!
//! A topic in a rule is a filter with `%u` (username) and `%c` (client id) placeholders, or
//! `eq TOPIC` for a literal filter. A placeholder's value is compared literally, never as a
//! wildcard: a client named `#` gets no more than a client named `x`.

use std::net::IpAddr;

use ferry_mqtt::QoS;
use ferry_mqtt::topic::validate_filter;
use serde::{Deserialize, Serialize};

use crate::hook::{AuthzAction, ClientInfo};

/// `allow` or `deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    Allow,
    Deny,
}

/// What happens to a client whose PUBLISH is denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DenyAction {
    /// The message is dropped: MQTT 5 clients get PUBACK/PUBREC 0x87, 3.x clients a normal
    /// acknowledgement (3.x cannot refuse a PUBLISH).
    #[default]
    Ignore,
    /// The connection is closed (DISCONNECT 0x87 to MQTT 5 clients).
    Disconnect,
}

/// The SUBACK code an MQTT 5 client gets for a denied subscription (3.x clients get 0x80).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscribeDenyCode {
    /// 0x87.
    #[default]
    NotAuthorized,
    /// 0x80 (what the Eclipse Paho interoperability suite expects).
    Unspecified,
}

impl SubscribeDenyCode {
    pub fn code(self) -> u8 {
        match self {
            SubscribeDenyCode::NotAuthorized => ferry_mqtt::reason::NOT_AUTHORIZED,
            SubscribeDenyCode::Unspecified => ferry_mqtt::reason::UNSPECIFIED_ERROR,
        }
    }
}

/// Which actions a rule covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionSel {
    Publish,
    Subscribe,
    #[default]
    All,
}

/// `[authorization]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthorizationConfig {
    /// What applies when no rule matches: `allow` (default) or `deny`.
    pub no_match: Permission,
    /// `ignore` (default) or `disconnect` for a denied PUBLISH.
    pub deny_action: DenyAction,
    /// `not_authorized` (0x87, default) or `unspecified` (0x80) for a denied SUBSCRIBE.
    pub subscribe_deny_code: SubscribeDenyCode,
    /// `[[authorization.rules]]`, tried in order; the first that matches decides.
    pub rules: Vec<AclRuleConfig>,
}

impl Default for AuthorizationConfig {
    fn default() -> Self {
        AuthorizationConfig {
            no_match: Permission::Allow,
            deny_action: DenyAction::Ignore,
            subscribe_deny_code: SubscribeDenyCode::NotAuthorized,
            rules: Vec::new(),
        }
    }
}

/// One `[[authorization.rules]]` entry as written. Who: `username`, `clientid`, `ipaddr`
/// (all given must match; none given: every client).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AclRuleConfig {
    pub permission: Permission,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clientid: Option<String>,
    /// An address or a CIDR range, e.g. `10.0.0.0/8`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipaddr: Option<String>,
    #[serde(default)]
    pub action: ActionSel,
    /// Only these QoS levels (default: any).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qos: Option<Vec<u8>>,
    /// Only publishes with (true) or without (false) the retain flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retain: Option<bool>,
    pub topics: Vec<String>,
}

/// An address range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (a, p) = s.split_once('/').unwrap_or((s, ""));
        let addr: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| format!("{a:?} is not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = if p.is_empty() {
            max
        } else {
            p.parse::<u8>()
                .ok()
                .filter(|n| *n <= max)
                .ok_or_else(|| format!("{p:?} is not a prefix length (0 to {max})"))?
        };
        Ok(Cidr { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match (self.addr, ip) {
            (IpAddr::V4(_), IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => return false,
            },
            _ => ip,
        };
        let (a, b, bits) = match (self.addr, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                (u128::from(a.to_bits()), u128::from(b.to_bits()), 32)
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => (a.to_bits(), b.to_bits(), 128),
            _ => return false,
        };
        let shift = bits - u32::from(self.prefix);
        shift >= 128 || (a >> shift) == (b >> shift)
    }
}

/// A topic of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RuleTopic {
    /// `eq TOPIC`: the request's topic (or filter) must be exactly this.
    Eq(String),
    /// A filter, maybe with `%u`/`%c` placeholders.
    Filter(String),
}

/// A compiled rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclRule {
    pub permission: Permission,
    username: Option<String>,
    clientid: Option<String>,
    ipaddr: Option<Cidr>,
    action: ActionSel,
    qos: Option<Vec<QoS>>,
    retain: Option<bool>,
    topics: Vec<RuleTopic>,
}

/// What is asked: an action on a topic (PUBLISH: a topic name; SUBSCRIBE: a filter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthzRequest<'a> {
    pub action: AuthzAction,
    pub topic: &'a str,
    pub qos: QoS,
    pub retain: bool,
}

impl AclRule {
    /// Compiles a rule; the error says what is wrong (the caller adds the key).
    pub fn compile(c: &AclRuleConfig) -> Result<AclRule, String> {
        let ipaddr = c
            .ipaddr
            .as_deref()
            .map(Cidr::parse)
            .transpose()
            .map_err(|e| format!("ipaddr: {e}"))?;
        let qos = c
            .qos
            .as_ref()
            .map(|l| {
                l.iter()
                    .map(|q| QoS::from_u8(*q).ok_or_else(|| format!("qos: {q} is not 0, 1 or 2")))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        if c.topics.is_empty() {
            return Err("topics: must not be empty".into());
        }
        let mut topics = Vec::with_capacity(c.topics.len());
        for t in &c.topics {
            let rt = match t.strip_prefix("eq ") {
                Some(lit) => RuleTopic::Eq(lit.trim_start().to_owned()),
                None => RuleTopic::Filter(t.clone()),
            };
            let (RuleTopic::Eq(f) | RuleTopic::Filter(f)) = &rt;
            validate_filter(f).map_err(|e| format!("topics: {t:?}: {e}"))?;
            topics.push(rt);
        }
        Ok(AclRule {
            permission: c.permission,
            username: c.username.clone(),
            clientid: c.clientid.clone(),
            ipaddr,
            action: c.action,
            qos,
            retain: c.retain,
            topics,
        })
    }

    /// The rule's permission if it matches `req` from `client`.
    pub fn check(&self, client: &ClientInfo, req: &AuthzRequest<'_>) -> Option<Permission> {
        self.matches(client, req).then_some(self.permission)
    }

    fn matches(&self, client: &ClientInfo, req: &AuthzRequest<'_>) -> bool {
        if let Some(u) = &self.username
            && client.username.as_deref() != Some(u.as_str())
        {
            return false;
        }
        if let Some(c) = &self.clientid
            && &*client.client_id != c.as_str()
        {
            return false;
        }
        if let Some(cidr) = &self.ipaddr
            && !client.peer.is_some_and(|p| cidr.contains(p.ip()))
        {
            return false;
        }
        match (self.action, req.action) {
            (ActionSel::All, _)
            | (ActionSel::Publish, AuthzAction::Publish)
            | (ActionSel::Subscribe, AuthzAction::Subscribe) => {}
            _ => return false,
        }
        if let Some(q) = &self.qos
            && !q.contains(&req.qos)
        {
            return false;
        }
        if let Some(r) = self.retain
            && (req.action != AuthzAction::Publish || r != req.retain)
        {
            return false;
        }
        let topic = strip_share(req.topic);
        self.topics.iter().any(|t| match t {
            RuleTopic::Eq(lit) => lit == topic,
            RuleTopic::Filter(f) => filter_matches(f, topic, client),
        })
    }
}

/// `$share/GROUP/filter` and `$queue/filter` are authorized as `filter` (as EMQX does).
fn strip_share(t: &str) -> &str {
    if let Some(rest) = t.strip_prefix("$share/") {
        return rest.split_once('/').map_or(rest, |(_, f)| f);
    }
    t.strip_prefix("$queue/").unwrap_or(t)
}

/// Does the rule filter `rule` (with placeholders) cover `topic`, a topic name or a
/// subscription filter? Wildcards in `topic` only match the same wildcard in the rule (or a
/// wider one): `a/+` is covered by `a/+`, `a/#`, `+/+`, not by `a/b`.
fn filter_matches(rule: &str, topic: &str, client: &ClientInfo) -> bool {
    if topic.starts_with('$') && (rule.starts_with('+') || rule.starts_with('#')) {
        return false;
    }
    let mut t = topic.split('/');
    for word in rule.split('/') {
        match word {
            "#" => return true,
            "+" => {
                // One level: not a request's `#`, which may be many.
                if matches!(t.next(), None | Some("#")) {
                    return false;
                }
            }
            w if w.contains("%u") || w.contains("%c") => {
                let Some(value) = substitute(w, client) else {
                    return false;
                };
                // A value with '/' spans several levels; compared literally.
                for part in value.split('/') {
                    if t.next() != Some(part) {
                        return false;
                    }
                }
            }
            w => {
                if t.next() != Some(w) {
                    return false;
                }
            }
        }
    }
    t.next().is_none()
}

/// Replaces `%u` and `%c`; `None` if the client has no username and `%u` is used.
fn substitute(word: &str, client: &ClientInfo) -> Option<String> {
    let mut out = word.replace("%c", &client.client_id);
    if out.contains("%u") {
        out = out.replace("%u", client.username.as_deref()?);
    }
    Some(out)
}

/// `[authorization]`, compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acl {
    pub no_match: Permission,
    pub deny_action: DenyAction,
    pub subscribe_deny_code: SubscribeDenyCode,
    pub rules: Vec<AclRule>,
}

impl Default for Acl {
    fn default() -> Self {
        Acl {
            no_match: Permission::Allow,
            deny_action: DenyAction::Ignore,
            subscribe_deny_code: SubscribeDenyCode::NotAuthorized,
            rules: Vec::new(),
        }
    }
}

impl AuthorizationConfig {
    /// Compiles every rule; the errors name their key (`authorization.rules[2].ipaddr: …`).
    pub fn compile(&self) -> Result<Acl, Vec<String>> {
        let mut rules = Vec::with_capacity(self.rules.len());
        let mut problems = Vec::new();
        for (i, r) in self.rules.iter().enumerate() {
            match AclRule::compile(r) {
                Ok(r) => rules.push(r),
                Err(e) => problems.push(format!("authorization.rules[{i}].{e}")),
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Acl {
            no_match: self.no_match,
            deny_action: self.deny_action,
            subscribe_deny_code: self.subscribe_deny_code,
            rules,
        })
    }
}

impl Acl {
    /// The first matching rule's permission, if any.
    pub fn check(&self, client: &ClientInfo, req: &AuthzRequest<'_>) -> Option<Permission> {
        first_match(&self.rules, client, req)
    }
}

/// The first of `rules` that matches.
pub fn first_match(
    rules: &[AclRule],
    client: &ClientInfo,
    req: &AuthzRequest<'_>,
) -> Option<Permission> {
    rules.iter().find_map(|r| r.check(client, req))
}

#[cfg(test)]
mod tests;
