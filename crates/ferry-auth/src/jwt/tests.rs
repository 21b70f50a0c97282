use std::sync::Arc;

use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};

use super::*;

fn b64(v: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(v)
}

pub(crate) use crate::testing::hs256;

fn client() -> ClientInfo {
    ClientInfo {
        username: Some(Arc::from("alice")),
        ..ClientInfo::internal("c1")
    }
}

fn cfg() -> JwtConfig {
    JwtConfig::default()
}

#[test]
fn hmac_tokens_check_signature_times_and_claims() {
    let j = Jwt::load(
        &JwtConfig {
            secret: Some("k".into()),
            ..cfg()
        },
        "m",
    )
    .unwrap();
    let c = client();
    let ok = hs256(
        b"k",
        &serde_json::json!({"exp": 2000, "nbf": 1000, "username": "alice", "clientid": "c1"}),
    );
    assert!(matches!(
        j.check(ok.as_bytes(), &c, 1500),
        JwtOutcome::Valid { .. }
    ));
    assert!(
        matches!(j.check(ok.as_bytes(), &c, 2000), JwtOutcome::Invalid(e) if e.contains("expired"))
    );
    assert!(matches!(j.check(ok.as_bytes(), &c, 999), JwtOutcome::Invalid(e) if e.contains("nbf")));
    let other = hs256(b"k", &serde_json::json!({"clientid": "c2"}));
    assert!(matches!(
        j.check(other.as_bytes(), &c, 0),
        JwtOutcome::Invalid(_)
    ));
    let forged = hs256(b"wrong", &serde_json::json!({}));
    assert_eq!(j.check(forged.as_bytes(), &c, 0), JwtOutcome::Ignore);
    assert_eq!(j.check(b"just a password", &c, 0), JwtOutcome::Ignore);
    // "none" is never accepted.
    let none = format!("{}.{}.", b64(br#"{"alg":"none"}"#), b64(b"{}"));
    assert_eq!(j.check(none.as_bytes(), &c, 0), JwtOutcome::Ignore);
}

#[test]
fn acl_claims_become_per_client_rules() {
    let j = Jwt::load(
        &JwtConfig {
            secret: Some("k".into()),
            ..cfg()
        },
        "m",
    )
    .unwrap();
    let t = hs256(
        b"k",
        &serde_json::json!({"acl": [
            {"permission": "allow", "action": "publish", "topic": "a/%c"},
            {"permission": "deny", "action": "all", "topics": ["#"], "qos": [2]}
        ]}),
    );
    let JwtOutcome::Valid { rules, .. } = j.check(t.as_bytes(), &client(), 0) else {
        panic!("not valid");
    };
    assert_eq!(rules.len(), 2);
    let old = hs256(
        b"k",
        &serde_json::json!({"acl": {"pub": ["a"], "sub": ["b", "c"]}}),
    );
    let JwtOutcome::Valid { rules, .. } = j.check(old.as_bytes(), &client(), 0) else {
        panic!("not valid");
    };
    assert_eq!(rules.len(), 2);
    let bad = hs256(b"k", &serde_json::json!({"acl": 3}));
    assert!(matches!(
        j.check(bad.as_bytes(), &client(), 0),
        JwtOutcome::Invalid(_)
    ));
}

#[test]
fn ec_keys_from_pem_and_jwks_verify_es256() {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let kp =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let point = kp.public_key().as_ref().to_vec();
    let signed = format!(
        "{}.{}",
        b64(br#"{"alg":"ES256","kid":"k1"}"#),
        b64(br#"{"username":"alice"}"#)
    );
    let sig = kp.sign(&rng, signed.as_bytes()).unwrap();
    let token = format!("{signed}.{}", b64(sig.as_ref()));
    let dir = tempfile::tempdir().unwrap();
    // SubjectPublicKeyInfo for P-256.
    let mut alg = vec![0x06, OID_EC.len() as u8];
    alg.extend_from_slice(OID_EC);
    alg.extend([0x06, OID_P256.len() as u8]);
    alg.extend_from_slice(OID_P256);
    let mut spki_body = vec![0x30, alg.len() as u8];
    spki_body.extend(alg);
    spki_body.extend([0x03, (point.len() + 1) as u8, 0]);
    spki_body.extend(&point);
    let mut spki = vec![0x30, spki_body.len() as u8];
    spki.extend(spki_body);
    let pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        STANDARD.encode(&spki)
    );
    let pem_path = dir.path().join("k.pem");
    std::fs::write(&pem_path, pem).unwrap();
    let j = Jwt::load(
        &JwtConfig {
            public_key: Some(pem_path),
            ..cfg()
        },
        "m",
    )
    .unwrap();
    assert!(matches!(
        j.check(token.as_bytes(), &client(), 0),
        JwtOutcome::Valid { .. }
    ));
    let jwks = serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "k1",
        "x": b64(&point[1..33]), "y": b64(&point[33..])}]});
    let jwks_path = dir.path().join("jwks.json");
    std::fs::write(&jwks_path, jwks.to_string()).unwrap();
    let j = Jwt::load(
        &JwtConfig {
            jwks_file: Some(jwks_path.clone()),
            ..cfg()
        },
        "m",
    )
    .unwrap();
    assert!(matches!(
        j.check(token.as_bytes(), &client(), 0),
        JwtOutcome::Valid { .. }
    ));
    let e = Jwt::load(
        &JwtConfig {
            jwks_file: Some(dir.path().join("missing")),
            ..cfg()
        },
        "authentication.methods[0]",
    )
    .unwrap_err();
    assert!(
        e.starts_with("authentication.methods[0].jwks_file: "),
        "{e}"
    );
}

#[test]
fn rsa_jwks_keys_are_encoded_as_pkcs1() {
    // n with the high bit set gets a leading zero; e = 65537.
    let der = jwks::rsa_der(&[0x80, 1], &[1, 0, 1]);
    assert_eq!(
        der,
        vec![
            0x30, 0x0a, 0x02, 0x03, 0x00, 0x80, 0x01, 0x02, 0x03, 0x01, 0x00, 0x01
        ]
    );
}
