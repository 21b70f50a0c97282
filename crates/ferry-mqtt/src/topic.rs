//! Topic names and filters: validation and matching rules shared by the broker and rules.

/// Why a topic name or filter was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    #[error("topic is empty")]
    Empty,
    #[error("topic name contains a wildcard")]
    WildcardInName,
    #[error("'#' must be the last level and stand alone")]
    BadMultiLevel,
    #[error("'+' must stand alone in its level")]
    BadSingleLevel,
    #[error("shared subscription needs $share/<group>/<filter> with a group without wildcards")]
    BadShare,
}

/// Checks a topic name used in PUBLISH (no wildcards, not empty).
pub fn validate_name(topic: &str) -> Result<(), TopicError> {
    if topic.is_empty() {
        return Err(TopicError::Empty);
    }
    if topic.contains(['+', '#']) {
        return Err(TopicError::WildcardInName);
    }
    Ok(())
}

/// Checks a topic filter (wildcards allowed in their proper places).
pub fn validate_filter(filter: &str) -> Result<(), TopicError> {
    if filter.is_empty() {
        return Err(TopicError::Empty);
    }
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        if level.contains('#') && (level != "#" || levels.peek().is_some()) {
            return Err(TopicError::BadMultiLevel);
        }
        if level.contains('+') && level != "+" {
            return Err(TopicError::BadSingleLevel);
        }
    }
    Ok(())
}

/// A filter as subscribed: plain, or shared by a group (`$share/group/filter`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionFilter<'a> {
    pub group: Option<&'a str>,
    pub filter: &'a str,
}

/// Splits and validates a subscription filter, including `$share/` ones.
pub fn parse_subscription(raw: &str) -> Result<SubscriptionFilter<'_>, TopicError> {
    if let Some(rest) = raw.strip_prefix("$share/") {
        let (group, filter) = rest.split_once('/').ok_or(TopicError::BadShare)?;
        if group.is_empty() || group.contains(['+', '#']) {
            return Err(TopicError::BadShare);
        }
        validate_filter(filter)?;
        return Ok(SubscriptionFilter {
            group: Some(group),
            filter,
        });
    }
    if raw == "$share" || raw.starts_with("$share/") {
        return Err(TopicError::BadShare);
    }
    validate_filter(raw)?;
    Ok(SubscriptionFilter {
        group: None,
        filter: raw,
    })
}

/// Does `filter` match `topic`? A reference implementation for tests and single checks;
/// the broker routes through a trie instead.
pub fn matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_validated() {
        assert!(validate_filter("a/+/c/#").is_ok());
        assert!(validate_filter("#").is_ok());
        assert!(validate_filter("+").is_ok());
        assert_eq!(validate_filter("a/#/c"), Err(TopicError::BadMultiLevel));
        assert_eq!(validate_filter("a#"), Err(TopicError::BadMultiLevel));
        assert_eq!(validate_filter("a/b+"), Err(TopicError::BadSingleLevel));
        assert_eq!(validate_filter(""), Err(TopicError::Empty));
        assert_eq!(validate_name("a/+"), Err(TopicError::WildcardInName));
    }

    #[test]
    fn shared_filters_are_split() {
        let s = parse_subscription("$share/g1/a/+").unwrap();
        assert_eq!(s.group, Some("g1"));
        assert_eq!(s.filter, "a/+");
        assert!(parse_subscription("$share/g1").is_err());
        assert!(parse_subscription("$share//a").is_err());
        assert!(parse_subscription("$share/g+/a").is_err());
    }

    #[test]
    fn matching_follows_the_spec() {
        assert!(matches("sport/tennis/player1/#", "sport/tennis/player1"));
        assert!(matches(
            "sport/tennis/player1/#",
            "sport/tennis/player1/ranking"
        ));
        assert!(matches("sport/#", "sport"));
        assert!(matches("sport/+", "sport/"));
        assert!(!matches("sport/+", "sport"));
        assert!(matches("+/+", "/finance"));
        assert!(matches("/+", "/finance"));
        assert!(!matches("+", "/finance"));
        assert!(!matches("#", "$SYS/x"));
        assert!(!matches("+/monitor/Clients", "$SYS/monitor/Clients"));
        assert!(matches("$SYS/#", "$SYS/monitor/Clients"));
    }
}
