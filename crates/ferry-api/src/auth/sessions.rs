//! In-memory state of logins: bearer tokens with a TTL, and failed-login counts per
//! username. Both are bounded: at [`MAX_TOKENS`] the oldest token is dropped, at
//! [`MAX_FAILURE_ENTRIES`] expired entries and then the oldest are dropped.
//!
//! Pure data, no I/O and no clock of its own: callers pass `now` (tokio's clock, so tests
//! can pause time). Lost on restart by design: a restart logs everyone out.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

/// Most tokens alive at once.
pub(crate) const MAX_TOKENS: usize = 10_000;
/// Most usernames whose failed logins are tracked.
pub(crate) const MAX_FAILURE_ENTRIES: usize = 10_000;

#[derive(Debug)]
struct TokenEntry {
    username: String,
    expires: Instant,
    /// Issue order, to drop the oldest at the bound.
    seq: u64,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    in_a_row: u32,
    last: Instant,
    locked_until: Option<Instant>,
}

#[derive(Debug, Default)]
pub(crate) struct Sessions {
    tokens: HashMap<String, TokenEntry>,
    next_seq: u64,
    failures: HashMap<String, Failures>,
}

impl Sessions {
    pub(crate) fn issue(&mut self, token: String, username: &str, now: Instant, ttl: Duration) {
        if self.tokens.len() >= MAX_TOKENS {
            self.tokens.retain(|_, t| t.expires > now);
        }
        while self.tokens.len() >= MAX_TOKENS {
            let oldest = self
                .tokens
                .iter()
                .min_by_key(|(_, t)| t.seq)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => self.tokens.remove(&k),
                None => break,
            };
        }
        self.next_seq += 1;
        self.tokens.insert(
            token,
            TokenEntry {
                username: username.into(),
                expires: now + ttl,
                seq: self.next_seq,
            },
        );
    }

    /// The username a live token belongs to; an expired token is forgotten.
    pub(crate) fn lookup(&mut self, token: &str, now: Instant) -> Option<String> {
        let entry = self.tokens.get(token)?;
        if entry.expires <= now {
            self.tokens.remove(token);
            return None;
        }
        Some(entry.username.clone())
    }

    pub(crate) fn revoke(&mut self, token: &str) -> bool {
        self.tokens.remove(token).is_some()
    }

    /// Revokes every token of `username` but `keep`.
    pub(crate) fn revoke_user(&mut self, username: &str, keep: Option<&str>) {
        self.tokens
            .retain(|k, t| t.username != username || Some(k.as_str()) == keep);
    }

    #[cfg(test)]
    pub(crate) fn token_count(&self) -> usize {
        self.tokens.len()
    }

    /// How much longer `username` is locked, if it is.
    pub(crate) fn locked_for(&self, username: &str, now: Instant) -> Option<Duration> {
        let until = self.failures.get(username)?.locked_until?;
        (until > now).then(|| until - now)
    }

    /// Counts a failed login; locks the username after `max` in a row.
    pub(crate) fn failed(&mut self, username: &str, now: Instant, max: u32, lock: Duration) {
        if !self.failures.contains_key(username) && self.failures.len() >= MAX_FAILURE_ENTRIES {
            self.failures.retain(|_, f| match f.locked_until {
                Some(until) => until > now,
                None => now.saturating_duration_since(f.last) < lock,
            });
            while self.failures.len() >= MAX_FAILURE_ENTRIES {
                let oldest = self
                    .failures
                    .iter()
                    .min_by_key(|(_, f)| f.last)
                    .map(|(k, _)| k.clone());
                match oldest {
                    Some(k) => self.failures.remove(&k),
                    None => break,
                };
            }
        }
        let f = self.failures.entry(username.into()).or_insert(Failures {
            in_a_row: 0,
            last: now,
            locked_until: None,
        });
        if f.locked_until.is_some_and(|until| until <= now) {
            // The lock ran out: a fresh start.
            f.in_a_row = 0;
            f.locked_until = None;
        }
        f.in_a_row = f.in_a_row.saturating_add(1);
        f.last = now;
        if max > 0 && f.in_a_row >= max {
            f.locked_until = Some(now + lock);
        }
    }

    pub(crate) fn succeeded(&mut self, username: &str) {
        self.failures.remove(username);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_expire_and_the_oldest_is_dropped_at_the_bound() {
        let mut s = Sessions::default();
        let t0 = Instant::now();
        let ttl = Duration::from_secs(60);
        s.issue("a".into(), "admin", t0, ttl);
        assert_eq!(
            s.lookup("a", t0 + Duration::from_secs(59)).as_deref(),
            Some("admin")
        );
        assert_eq!(s.lookup("a", t0 + ttl), None);
        assert_eq!(s.token_count(), 0, "an expired token is forgotten");
        for i in 0..MAX_TOKENS + 1 {
            s.issue(format!("t{i}"), "admin", t0, ttl);
        }
        assert_eq!(s.token_count(), MAX_TOKENS);
        assert_eq!(s.lookup("t0", t0), None, "the oldest went");
        assert!(s.lookup("t1", t0).is_some());
    }

    #[test]
    fn lock_after_failures_in_a_row_then_it_runs_out() {
        let mut s = Sessions::default();
        let t0 = Instant::now();
        let lock = Duration::from_secs(300);
        for _ in 0..2 {
            s.failed("admin", t0, 3, lock);
        }
        assert_eq!(s.locked_for("admin", t0), None);
        s.failed("admin", t0, 3, lock);
        assert_eq!(s.locked_for("admin", t0), Some(lock));
        assert_eq!(s.locked_for("other", t0), None, "per username");
        assert_eq!(s.locked_for("admin", t0 + lock), None);
        s.failed("admin", t0 + lock, 3, lock);
        assert_eq!(s.locked_for("admin", t0 + lock), None, "counting restarts");
        s.succeeded("admin");
        assert!(s.failures.is_empty());
    }

    #[test]
    fn failure_map_is_bounded() {
        let mut s = Sessions::default();
        let t0 = Instant::now();
        for i in 0..MAX_FAILURE_ENTRIES + 10 {
            s.failed(&format!("u{i}"), t0, 5, Duration::from_secs(1));
        }
        assert!(s.failures.len() <= MAX_FAILURE_ENTRIES);
    }
}
