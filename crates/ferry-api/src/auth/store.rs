//! The on-disk records: `DATA/api/users.json` and `DATA/api/api_keys.json`, and the
//! bootstrap file of API keys.
//!
//! Format: one JSON object per file, `{"version": 1, "users": [...]}` and
//! `{"version": 1, "api_keys": [...]}`. Passwords and secrets are only ever stored as
//! argon2id PHC strings. Every write goes to a temporary file in the same directory, is
//! fsynced, then renamed over the old file (and the directory fsynced), so a crash leaves
//! either the old or the new file, never half of one. Files are created mode 0600.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{AuthError, Role};

pub(crate) const FORMAT_VERSION: u32 = 1;

/// A dashboard user as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UserRecord {
    pub(crate) username: String,
    pub(crate) role: Role,
    #[serde(default)]
    pub(crate) description: String,
    /// argon2id PHC string.
    pub(crate) password_hash: String,
    /// The password is still the default (or was set by someone else): the user must
    /// change it before doing anything else.
    pub(crate) password_change_required: bool,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UsersFile {
    pub(crate) version: u32,
    pub(crate) users: Vec<UserRecord>,
}

/// An API key as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeyRecord {
    pub(crate) name: String,
    pub(crate) api_key: String,
    /// argon2id PHC string of the secret.
    pub(crate) secret_hash: String,
    pub(crate) role: Role,
    #[serde(default)]
    pub(crate) desc: String,
    pub(crate) enable: bool,
    /// Unix seconds; never expires when absent.
    #[serde(default)]
    pub(crate) expired_at: Option<i64>,
    /// Unix seconds.
    pub(crate) created_at: i64,
    /// Read from the bootstrap file at start; never persisted, not changed by the API.
    #[serde(skip)]
    pub(crate) bootstrap: bool,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeysFile {
    pub(crate) version: u32,
    pub(crate) api_keys: Vec<KeyRecord>,
}

fn io_err(path: &Path, source: std::io::Error) -> AuthError {
    AuthError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads and parses `path`; `None` when it does not exist.
pub(crate) fn load<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, AuthError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(path, e)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| AuthError::Corrupt {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
}

/// Writes `value` as JSON to `path` atomically (temp file, fsync, rename, fsync dir).
pub(crate) fn save<T: Serialize>(path: &Path, value: &T) -> Result<(), AuthError> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| AuthError::Corrupt {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    let tmp = tmp_path(path);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let write = || -> std::io::Result<()> {
        let mut f = opts.open(&tmp)?;
        f.write_all(&bytes)?;
        f.write_all(b"\n")?;
        f.sync_all()
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_err(&tmp, e));
    }
    std::fs::rename(&tmp, path).map_err(|e| io_err(path, e))?;
    // The rename is durable only once the directory is.
    #[cfg(unix)]
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err(dir, e))?;
    Ok(())
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// One `key:secret[:role]` line of the bootstrap file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BootstrapKey {
    pub(crate) key: String,
    pub(crate) secret: String,
    pub(crate) role: Role,
}

/// Parses the bootstrap file: `key:secret` or `key:secret:role` per line; blank lines and
/// lines starting with `#` are skipped. Errors name the 1-based line number.
pub(crate) fn parse_bootstrap(path: &Path, text: &str) -> Result<Vec<BootstrapKey>, AuthError> {
    let mut keys: Vec<BootstrapKey> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |message: String| AuthError::Bootstrap {
            path: path.to_path_buf(),
            line: i + 1,
            message,
        };
        let mut parts = line.split(':');
        let key = parts.next().unwrap_or_default().trim();
        let secret = parts.next().map(str::trim);
        let role = parts.next().map(str::trim);
        if parts.next().is_some() {
            return Err(bad("expected key:secret or key:secret:role".into()));
        }
        let Some(secret) = secret else {
            return Err(bad("expected key:secret (no ':' found)".into()));
        };
        if let Err(m) = super::valid_name("key", key) {
            return Err(bad(m));
        }
        if secret.len() < 3 {
            return Err(bad("the secret must be at least 3 characters long".into()));
        }
        let role = match role {
            None => Role::Administrator,
            Some(r) => Role::parse(r).ok_or_else(|| {
                bad(format!(
                    "unknown role {r:?} (expected administrator or viewer)"
                ))
            })?,
        };
        if keys.iter().any(|k| k.key == key) {
            return Err(bad(format!("key {key:?} appears twice")));
        }
        keys.push(BootstrapKey {
            key: key.into(),
            secret: secret.into(),
            role,
        });
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_lines_with_comments_blanks_and_roles() -> Result<(), AuthError> {
        let text = "# scripts\n\nci:s3cret\n  reader:abc123:viewer \n";
        let keys = parse_bootstrap(Path::new("b.txt"), text)?;
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].role, Role::Administrator);
        assert_eq!(keys[1].key, "reader");
        assert_eq!(keys[1].role, Role::Viewer);
        Ok(())
    }

    #[test]
    fn bootstrap_errors_name_the_line() {
        for (text, line, what) in [
            ("ok:secret1\nnocolon\n", 2, "no ':'"),
            ("\n\nk:s3cret:root\n", 3, "unknown role"),
            ("k:s\n", 1, "at least 3"),
            ("a:b1c:viewer:x\n", 1, "expected key:secret"),
            ("a:bcd\na:efg\n", 2, "twice"),
            ("bad key:secret\n", 1, "key"),
        ] {
            match parse_bootstrap(Path::new("b.txt"), text) {
                Err(e @ AuthError::Bootstrap { line: l, .. }) => {
                    assert_eq!(l, line, "{text:?}: {e}");
                    assert!(e.to_string().contains(what), "{text:?}: {e}");
                    assert!(e.to_string().contains(&format!("b.txt:{line}")), "{e}");
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn save_is_atomic_and_private() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("api").join("users.json");
        save(
            &path,
            &UsersFile {
                version: 1,
                users: vec![],
            },
        )?;
        let back: Option<UsersFile> = load(&path)?;
        assert_eq!(back.map(|f| f.version), Some(1));
        assert!(!tmp_path(&path).exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(
                std::fs::metadata(&path)?.permissions().mode() & 0o777,
                0o600
            );
        }
        std::fs::write(&path, "{not json")?;
        assert!(matches!(
            load::<UsersFile>(&path),
            Err(AuthError::Corrupt { .. })
        ));
        Ok(())
    }
}
