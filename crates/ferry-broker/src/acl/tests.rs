use std::sync::Arc;

use super::*;

fn client(id: &str, user: Option<&str>, ip: &str) -> ClientInfo {
    ClientInfo {
        username: user.map(Arc::from),
        peer: Some(format!("{ip}:1000").parse().unwrap()),
        ..ClientInfo::internal(id)
    }
}

fn rule(toml_text: &str) -> AclRule {
    let c: AclRuleConfig = toml::from_str(toml_text).unwrap();
    AclRule::compile(&c).unwrap()
}

fn publish(topic: &str) -> AuthzRequest<'_> {
    AuthzRequest {
        action: AuthzAction::Publish,
        topic,
        qos: QoS::AtMostOnce,
        retain: false,
    }
}

fn subscribe(topic: &str) -> AuthzRequest<'_> {
    AuthzRequest {
        action: AuthzAction::Subscribe,
        ..publish(topic)
    }
}

#[test]
fn placeholders_match_the_clients_own_names_literally() {
    let r = rule(
        r#"permission = "allow"
topics = ["users/%u/#", "clients/%c"]"#,
    );
    let alice = client("c1", Some("alice"), "127.0.0.1");
    assert_eq!(
        r.check(&alice, &publish("users/alice/x")),
        Some(Permission::Allow)
    );
    assert_eq!(
        r.check(&alice, &publish("clients/c1")),
        Some(Permission::Allow)
    );
    assert_eq!(r.check(&alice, &publish("users/bob/x")), None);
    assert_eq!(r.check(&alice, &publish("clients/c2")), None);
    // A wildcard as a name is not a wildcard.
    let sneaky = client("+", Some("#"), "127.0.0.1");
    assert_eq!(r.check(&sneaky, &publish("users/alice/x")), None);
    assert_eq!(r.check(&sneaky, &publish("clients/c1")), None);
    // No username: %u never matches.
    let anon = client("c1", None, "127.0.0.1");
    assert_eq!(r.check(&anon, &publish("users/alice/x")), None);
}

#[test]
fn subscription_filters_are_covered_only_by_wider_rules() {
    let r = rule(
        r#"permission = "allow"
topics = ["a/+"]"#,
    );
    let c = client("c", None, "127.0.0.1");
    assert!(r.check(&c, &subscribe("a/b")).is_some());
    assert!(r.check(&c, &subscribe("a/+")).is_some());
    assert!(r.check(&c, &subscribe("a/#")).is_none());
    assert!(r.check(&c, &subscribe("$share/g/a/x")).is_some());
    let eq = rule(
        r#"permission = "deny"
topics = ["eq a/#"]"#,
    );
    assert!(eq.check(&c, &subscribe("a/#")).is_some());
    assert!(eq.check(&c, &subscribe("a/b")).is_none());
}

#[test]
fn who_action_qos_and_retain_narrow_a_rule() {
    let r = rule(
        r##"permission = "deny"
username = "bob"
ipaddr = "10.0.0.0/8"
action = "publish"
qos = [1, 2]
retain = true
topics = ["#"]"##,
    );
    let bob = client("c", Some("bob"), "10.1.2.3");
    let req = AuthzRequest {
        qos: QoS::AtLeastOnce,
        retain: true,
        ..publish("t")
    };
    assert_eq!(r.check(&bob, &req), Some(Permission::Deny));
    assert!(
        r.check(
            &bob,
            &AuthzRequest {
                retain: false,
                ..req
            }
        )
        .is_none()
    );
    assert!(
        r.check(
            &bob,
            &AuthzRequest {
                qos: QoS::AtMostOnce,
                ..req
            }
        )
        .is_none()
    );
    assert!(
        r.check(
            &bob,
            &AuthzRequest {
                action: AuthzAction::Subscribe,
                ..req
            }
        )
        .is_none()
    );
    assert!(
        r.check(&client("c", Some("bob"), "192.168.0.1"), &req)
            .is_none()
    );
    assert!(
        r.check(&client("c", Some("eve"), "10.1.2.3"), &req)
            .is_none()
    );
}

#[test]
fn cidr_ranges() {
    let c = Cidr::parse("10.0.0.0/8").unwrap();
    assert!(c.contains("10.255.0.1".parse().unwrap()));
    assert!(!c.contains("11.0.0.1".parse().unwrap()));
    assert!(c.contains("::ffff:10.0.0.1".parse().unwrap()));
    assert!(
        Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains("1.2.3.4".parse().unwrap())
    );
    assert!(Cidr::parse("::1").unwrap().contains("::1".parse().unwrap()));
    assert!(Cidr::parse("10.0.0.0/33").is_err());
    assert!(Cidr::parse("ten").is_err());
}

#[test]
fn config_errors_name_the_rule_and_key() {
    let cfg: AuthorizationConfig = toml::from_str(
        r#"
[[rules]]
permission = "allow"
topics = ["a/#/b"]
[[rules]]
permission = "deny"
ipaddr = "nope"
topics = ["x"]
[[rules]]
permission = "deny"
qos = [3]
topics = ["x"]
"#,
    )
    .unwrap();
    let e = cfg.compile().unwrap_err();
    assert_eq!(e.len(), 3, "{e:?}");
    assert!(e[0].starts_with("authorization.rules[0].topics"), "{e:?}");
    assert!(e[1].starts_with("authorization.rules[1].ipaddr"), "{e:?}");
    assert!(e[2].starts_with("authorization.rules[2].qos"), "{e:?}");
    assert!(toml::from_str::<AuthorizationConfig>("no_match = \"maybe\"").is_err());
}

#[test]
fn a_change_of_rules_applies_to_the_next_check_despite_the_cache() {
    let b = crate::Broker::new(crate::MqttConfig::default());
    let c = client("c", Some("u"), "127.0.0.1");
    let check =
        |b: &crate::Broker| b.authorize(&c, AuthzAction::Publish, "t", QoS::AtMostOnce, false);
    // No rules at all: no_match answers every check, nothing is cached.
    assert_eq!(check(&b).source, "default");
    assert_eq!(check(&b).source, "default");
    let allow: AuthorizationConfig = toml::from_str(
        "no_match = \"deny\"\n[[rules]]\npermission = \"allow\"\ntopics = [\"t\"]\n",
    )
    .unwrap();
    b.set_acl(allow.compile().unwrap());
    assert_eq!(check(&b).source, "file");
    let cached = check(&b);
    assert!(cached.allow);
    assert_eq!(cached.source, "cache");
    let deny: AuthorizationConfig = toml::from_str(
        "no_match = \"allow\"\n[[rules]]\npermission = \"deny\"\ntopics = [\"t\"]\n",
    )
    .unwrap();
    b.set_acl(deny.compile().unwrap());
    let after = check(&b);
    assert!(!after.allow);
    assert_eq!(after.source, "file");
    assert_eq!(check(&b).source, "cache");
    assert!(!check(&b).allow);
}

#[test]
fn superusers_and_per_client_rules_come_first() {
    let b = crate::Broker::new(crate::MqttConfig::default());
    let deny_all: AuthorizationConfig = toml::from_str("no_match = \"deny\"").unwrap();
    b.set_acl(deny_all.compile().unwrap());
    let su = ClientInfo {
        auth: Arc::new(crate::ClientAuth::new(true, Vec::new(), "")),
        ..client("su", Some("root"), "127.0.0.1")
    };
    let a = b.authorize(&su, AuthzAction::Subscribe, "#", QoS::AtMostOnce, false);
    assert!(a.allow);
    assert_eq!(a.source, "superuser");
    let own = rule("permission = \"allow\"\ntopics = [\"mine/%c\"]");
    let jwt = ClientInfo {
        auth: Arc::new(crate::ClientAuth::new(false, vec![own], "jwt")),
        ..client("c9", None, "127.0.0.1")
    };
    let a = b.authorize(
        &jwt,
        AuthzAction::Publish,
        "mine/c9",
        QoS::AtMostOnce,
        false,
    );
    assert_eq!((a.allow, a.source), (true, "jwt"));
    let a = b.authorize(&jwt, AuthzAction::Publish, "other", QoS::AtMostOnce, false);
    assert_eq!((a.allow, a.source), (false, "default"));
}
