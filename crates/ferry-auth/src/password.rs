//! Password hashes: argon2id (what Ferry writes), and Mosquitto's `$7$` (PBKDF2-HMAC-SHA512)
//! and `$6$` (salted SHA-512) entries, kept as imported and verified as Mosquitto does.
//!
//! Blocking: argon2id is deliberately slow; async callers go through `spawn_blocking`.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};

/// A stored hash Ferry cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported password hash: {0}")]
pub struct BadHash(pub String);

fn argon2() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default())
}

/// A new salted argon2id hash (PHC string) of `password`.
pub fn hash(password: &str) -> Result<String, BadHash> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| BadHash(e.to_string()))
}

/// Checks that `stored` is a hash this module can verify.
pub fn check_format(stored: &str) -> Result<(), BadHash> {
    parse(stored).map(|_| ())
}

enum Stored<'a> {
    Argon2(PasswordHash<'a>),
    /// Mosquitto `$7$ITERATIONS$SALT$HASH`.
    Pbkdf2 {
        iterations: std::num::NonZeroU32,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
    /// Mosquitto `$6$SALT$HASH`: SHA-512 of the password then the salt.
    Sha512 {
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
}

fn b64(s: &str) -> Result<Vec<u8>, BadHash> {
    STANDARD
        .decode(s)
        .or_else(|_| STANDARD_NO_PAD.decode(s))
        .map_err(|_| BadHash("bad base64 in a Mosquitto hash".into()))
}

fn parse(stored: &str) -> Result<Stored<'_>, BadHash> {
    if stored.starts_with("$argon2") {
        return PasswordHash::new(stored)
            .map(Stored::Argon2)
            .map_err(|e| BadHash(e.to_string()));
    }
    let parts: Vec<&str> = stored.split('$').collect();
    match parts.as_slice() {
        ["", "7", iter, salt, hash] => Ok(Stored::Pbkdf2 {
            iterations: iter
                .parse()
                .map_err(|_| BadHash(format!("bad iteration count {iter:?}")))?,
            salt: b64(salt)?,
            hash: b64(hash)?,
        }),
        ["", "6", salt, hash] => Ok(Stored::Sha512 {
            salt: b64(salt)?,
            hash: b64(hash)?,
        }),
        _ => Err(BadHash(
            "expected argon2id, Mosquitto $7$ or $6$".to_owned(),
        )),
    }
}

/// Does `password` match `stored`? A hash that cannot be read matches nothing.
pub fn verify(stored: &str, password: &[u8]) -> bool {
    match parse(stored) {
        Ok(Stored::Argon2(h)) => argon2().verify_password(password, &h).is_ok(),
        Ok(Stored::Pbkdf2 {
            iterations,
            salt,
            hash,
        }) => ring::pbkdf2::verify(
            ring::pbkdf2::PBKDF2_HMAC_SHA512,
            iterations,
            &salt,
            password,
            &hash,
        )
        .is_ok(),
        Ok(Stored::Sha512 { salt, hash }) => {
            let mut ctx = ring::digest::Context::new(&ring::digest::SHA512);
            ctx.update(password);
            ctx.update(&salt);
            let d = ctx.finish();
            constant_eq(d.as_ref(), &hash)
        }
        Err(_) => false,
    }
}

/// Compares without stopping at the first difference.
pub(crate) fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2id_round_trip() {
        let h = hash("s3cret").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify(&h, b"s3cret"));
        assert!(!verify(&h, b"S3cret"));
    }

    #[test]
    fn mosquitto_hashes_verify() {
        // Made by mosquitto_passwd 2.0.11 (`-H sha512` for the $6$ one).
        let h7 = "$7$101$4qByla1VmutaCJXh$DQY7dF+LZjgRMXv4UXnSLvq8Pl8uHp5fiSbM1eVBs1TOilwV1O9CAQZJ4FPdPbf7cb7IBRjr98ET/x4Jmg1G2Q==";
        let h6 = "$6$vuZnUgXQTMm54ooC$J8trNPi7caCTQm6HvnQqln2E4nO5JQIsRpCiUKjm49Q90eFnPVkjnAIx/KTuoaZCMdTGPDnbd5LfrIZ8ni+gOQ==";
        assert!(verify(h7, b"secret"));
        assert!(!verify(h7, b"secreT"));
        assert!(verify(h6, b"hunter2"));
        assert!(!verify(h6, b"hunter3"));
        assert!(check_format("$1$abc$def").is_err());
        assert!(!verify("plain", b"plain"));
    }
}
