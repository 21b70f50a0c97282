//! Limits that stop one client from hurting the others: who may not connect at all
//! ([`Banned`]: client ids, usernames, address ranges) and the token bucket ([`Bucket`]) a
//! connection uses for its message and byte rates.

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// `[banned]`: clients refused at CONNECT (MQTT 5: 0x8A banned; 3.x: 5 not authorized).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BannedConfig {
    pub clientids: Vec<String>,
    pub usernames: Vec<String>,
    /// Addresses or ranges: `10.0.0.7`, `10.0.0.0/8`, `2001:db8::/32`.
    pub addresses: Vec<String>,
}

impl BannedConfig {
    /// Every problem found, each naming its key.
    pub fn validate(&self) -> Vec<String> {
        self.addresses
            .iter()
            .enumerate()
            .filter_map(|(i, a)| {
                Cidr::parse(a)
                    .err()
                    .map(|e| format!("banned.addresses[{i}]: {e}"))
            })
            .collect()
    }
}

/// An address range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// `ADDRESS` or `ADDRESS/PREFIX`.
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let net: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or range"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix must be 0 to {max}"))?,
        };
        Ok(Cidr { net, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// The banned list in force.
#[derive(Debug, Default)]
pub struct Banned {
    clientids: HashSet<String>,
    usernames: HashSet<String>,
    ranges: Vec<Cidr>,
}

impl Banned {
    pub fn new(cfg: &BannedConfig) -> Result<Banned, String> {
        Ok(Banned {
            clientids: cfg.clientids.iter().cloned().collect(),
            usernames: cfg.usernames.iter().cloned().collect(),
            ranges: cfg
                .addresses
                .iter()
                .map(|a| Cidr::parse(a))
                .collect::<Result<_, _>>()?,
        })
    }

    /// Why this client is banned (`clientid`, `username` or `address`), if it is.
    pub fn check(
        &self,
        client_id: &str,
        username: Option<&str>,
        ip: Option<IpAddr>,
    ) -> Option<&'static str> {
        if self.clientids.contains(client_id) {
            return Some("clientid");
        }
        if username.is_some_and(|u| self.usernames.contains(u)) {
            return Some("username");
        }
        if ip.is_some_and(|ip| self.ranges.iter().any(|r| r.contains(ip))) {
            return Some("address");
        }
        None
    }
}

/// A token bucket of `rate` tokens a second holding at most one second's worth.
#[derive(Debug, Clone)]
pub struct Bucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    pub fn new(rate: u64, now: Instant) -> Bucket {
        Bucket {
            rate: rate as f64,
            tokens: rate as f64,
            last: now,
        }
    }

    /// Takes `n` tokens (the bucket may go into debt); how long to wait until it is out of
    /// debt, if it is in debt.
    pub fn take(&mut self, n: u64, now: Instant) -> Option<Duration> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate) - n as f64;
        (self.tokens < 0.0).then(|| Duration::from_secs_f64(-self.tokens / self.rate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_match_v4_v6_and_mapped_addresses() {
        let r = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(r.contains("10.1.200.3".parse().unwrap()));
        assert!(!r.contains("10.2.0.1".parse().unwrap()));
        assert!(r.contains("::ffff:10.1.0.9".parse().unwrap()));
        let one = Cidr::parse("192.0.2.7").unwrap();
        assert!(one.contains("192.0.2.7".parse().unwrap()));
        assert!(!one.contains("192.0.2.8".parse().unwrap()));
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8:1::1".parse().unwrap()));
        assert!(!v6.contains("2001:db9::1".parse().unwrap()));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        for bad in ["10.0.0.0/33", "nope", "10.0.0.0/x", "::/129"] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
        let cfg = BannedConfig {
            addresses: vec!["10.0.0.0/8".into(), "300.1.1.1".into()],
            ..BannedConfig::default()
        };
        let errs = cfg.validate();
        assert_eq!(errs.len(), 1);
        assert!(errs[0].starts_with("banned.addresses[1]:"), "{errs:?}");
    }

    #[test]
    fn banned_by_clientid_username_or_address() {
        let b = Banned::new(&BannedConfig {
            clientids: vec!["bad".into()],
            usernames: vec!["mallory".into()],
            addresses: vec!["192.0.2.0/24".into()],
        })
        .unwrap();
        let ip = |s: &str| Some(s.parse().unwrap());
        assert_eq!(b.check("bad", None, None), Some("clientid"));
        assert_eq!(b.check("ok", Some("mallory"), None), Some("username"));
        assert_eq!(
            b.check("ok", Some("alice"), ip("192.0.2.9")),
            Some("address")
        );
        assert_eq!(b.check("ok", Some("alice"), ip("198.51.100.1")), None);
    }

    #[test]
    fn a_bucket_allows_its_rate_and_says_how_long_to_wait_beyond() {
        let t = Instant::now();
        let mut b = Bucket::new(100, t);
        assert_eq!(b.take(100, t), None, "a second's worth at once");
        let wait = b.take(50, t).unwrap();
        assert!((wait.as_secs_f64() - 0.5).abs() < 1e-6, "{wait:?}");
        // Half a second later the debt is paid.
        assert_eq!(b.take(0, t + Duration::from_millis(500)), None);
        // Idle time does not bank more than one second.
        assert!(b.take(150, t + Duration::from_secs(60)).is_some());
    }
}
