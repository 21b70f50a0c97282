//! Hashing (argon2id), the password policy, and random tokens from the OS RNG.
//!
//! Blocking: hashing is deliberately slow (tens of milliseconds); callers on async workers
//! go through `tokio::task::spawn_blocking`.

use std::sync::OnceLock;

use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;

use super::AuthError;

/// Shortest and longest accepted password, in characters.
pub(crate) const MIN_LEN: usize = 8;
pub(crate) const MAX_LEN: usize = 64;

/// How hard a hash is to compute.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Cost {
    /// Passwords people chose: argon2id with OWASP's parameters (19 MiB, 2 passes).
    Password,
    /// API key secrets: 256 random bits need no key stretching, and HTTP Basic verifies
    /// the secret on every request, so the hash is cheap (still salted argon2id, so one
    /// format and one verifier).
    RandomSecret,
}

fn hasher(cost: Cost) -> Result<Argon2<'static>, AuthError> {
    let params = match cost {
        Cost::Password => Params::default(),
        Cost::RandomSecret => {
            Params::new(64, 1, 1, None).map_err(|e| AuthError::Hash(e.to_string()))?
        }
    };
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Fills `N` bytes from the OS RNG.
pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], AuthError> {
    let mut b = [0u8; N];
    OsRng
        .try_fill_bytes(&mut b)
        .map_err(|e| AuthError::Random(e.to_string()))?;
    Ok(b)
}

/// An opaque token: 256 random bits, base64url.
pub(crate) fn random_token() -> Result<String, AuthError> {
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>()?))
}

/// An API key id: 64 random bits, hex (EMQX's shape).
pub(crate) fn random_key_id() -> Result<String, AuthError> {
    Ok(random_bytes::<8>()?
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// A PHC string (`$argon2id$v=19$...`) of `secret` with a fresh salt.
pub(crate) fn hash(secret: &str, cost: Cost) -> Result<String, AuthError> {
    let salt = SaltString::encode_b64(&random_bytes::<16>()?)
        .map_err(|e| AuthError::Hash(e.to_string()))?;
    hasher(cost)?
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// Whether `secret` matches `phc` (parameters come from the stored string). A stored hash
/// that does not parse never matches.
pub(crate) fn verify(secret: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(secret.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Spends the time of one password verification, so that an unknown user answers as
/// slowly as a wrong password (no user enumeration by timing).
pub(crate) fn verify_dummy(secret: &str) {
    static DUMMY: OnceLock<Option<String>> = OnceLock::new();
    if let Some(phc) = DUMMY.get_or_init(|| hash("ferry-dummy-password", Cost::Password).ok()) {
        let _ = verify(secret, phc);
    }
}

/// Every rule `new` breaks, each as "`field`: reason". Empty means accepted.
pub(crate) fn policy_problems(
    field: &str,
    username: &str,
    new: &str,
    old: Option<&str>,
    default_password: &str,
) -> Vec<String> {
    let mut problems = Vec::new();
    let len = new.chars().count();
    if !(MIN_LEN..=MAX_LEN).contains(&len) {
        problems.push(format!(
            "{field}: must be {MIN_LEN} to {MAX_LEN} characters long (it has {len})"
        ));
    }
    let letters = new.chars().any(char::is_alphabetic);
    let digits = new.chars().any(|c| c.is_ascii_digit());
    let symbols = new.chars().any(|c| !c.is_alphanumeric());
    if [letters, digits, symbols].iter().filter(|x| **x).count() < 2 {
        problems.push(format!(
            "{field}: must mix at least two of letters, digits and symbols"
        ));
    }
    if new == username {
        problems.push(format!("{field}: must not be the username"));
    }
    if old == Some(new) {
        problems.push(format!("{field}: must differ from the old password"));
    }
    if new == "public" || new == default_password {
        problems.push(format!("{field}: must not be the default password"));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_names_each_broken_rule() {
        let p = policy_problems("new_pwd", "admin", "short", None, "public");
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].contains("8 to 64"), "{p:?}");
        assert!(p[1].contains("two of letters, digits and symbols"));
        let p = policy_problems("new_pwd", "admin", "public", None, "public");
        assert!(p.iter().any(|m| m.contains("default password")));
        let p = policy_problems("new_pwd", "admin1234", "admin1234", None, "public");
        assert_eq!(p, vec!["new_pwd: must not be the username"]);
        let p = policy_problems("new_pwd", "admin", "s3cret-pw", Some("s3cret-pw"), "public");
        assert_eq!(p, vec!["new_pwd: must differ from the old password"]);
        assert!(policy_problems("new_pwd", "admin", "s3cret-pw", Some("x"), "public").is_empty());
        let long = "a1".repeat(33);
        assert!(
            policy_problems("new_pwd", "admin", &long, None, "public")[0].contains("(it has 66)")
        );
    }

    #[test]
    fn hashes_are_salted_and_verify() -> Result<(), AuthError> {
        let a = hash("s3cret-pw", Cost::RandomSecret)?;
        let b = hash("s3cret-pw", Cost::RandomSecret)?;
        assert_ne!(a, b, "a fresh salt per hash");
        assert!(a.starts_with("$argon2id$"));
        assert!(verify("s3cret-pw", &a));
        assert!(!verify("s3cret-pX", &a));
        assert!(!verify("s3cret-pw", "not a hash"));
        Ok(())
    }
}
