//! RS256 tokens signed by OpenSSL (an independent implementation) verify with the public key
//! from a PEM file and from a JWKS file built from the key's modulus and exponent.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ferry_auth::JwtConfig;
use ferry_auth::jwt::{Jwt, JwtOutcome};
use ferry_broker::ClientInfo;

fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl (installed by ./scripts/test)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn cfg() -> JwtConfig {
    JwtConfig::default()
}

#[test]
fn rs256_from_openssl_verifies_with_pem_and_jwks() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    openssl(
        d,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "k.pem",
        ],
    );
    openssl(d, &["pkey", "-in", "k.pem", "-pubout", "-out", "pub.pem"]);
    let b64 = |v: &[u8]| URL_SAFE_NO_PAD.encode(v);
    let signed = format!(
        "{}.{}",
        b64(br#"{"alg":"RS256","typ":"JWT"}"#),
        b64(br#"{"username":"alice","exp":4102444800}"#)
    );
    std::fs::write(d.join("input"), &signed).unwrap();
    let sig = openssl(d, &["dgst", "-sha256", "-sign", "k.pem", "input"]);
    let token = format!("{signed}.{}", b64(&sig));
    let client = ClientInfo {
        username: Some(Arc::from("alice")),
        ..ClientInfo::internal("c")
    };
    let pem = Jwt::load(
        &JwtConfig {
            public_key: Some(d.join("pub.pem")),
            ..cfg()
        },
        "m",
    )
    .unwrap();
    assert!(matches!(
        pem.check(token.as_bytes(), &client, 0),
        JwtOutcome::Valid { .. }
    ));
    // A changed claim breaks the signature: ignored, not trusted.
    let tampered = token.replacen(
        &b64(br#"{"username":"alice","exp":4102444800}"#),
        &b64(br#"{"username":"alice"}"#),
        1,
    );
    assert_eq!(
        pem.check(tampered.as_bytes(), &client, 0),
        JwtOutcome::Ignore
    );

    let modulus = String::from_utf8(openssl(
        d,
        &["rsa", "-pubin", "-in", "pub.pem", "-modulus", "-noout"],
    ))
    .unwrap();
    let hex = modulus.trim().trim_start_matches("Modulus=");
    let n: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let jwks = serde_json::json!({"keys": [{"kty": "RSA", "n": b64(&n), "e": b64(&[1, 0, 1])}]});
    std::fs::write(d.join("jwks.json"), jwks.to_string()).unwrap();
    let j = Jwt::load(
        &JwtConfig {
            jwks_file: Some(d.join("jwks.json")),
            ..cfg()
        },
        "m",
    )
    .unwrap();
    assert!(matches!(
        j.check(token.as_bytes(), &client, 0),
        JwtOutcome::Valid { .. }
    ));
}
