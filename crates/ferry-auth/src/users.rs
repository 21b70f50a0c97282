//! The built-in user database: `DATA_DIR/authn/users.json`, a list of user ids with salted
//! password hashes (argon2id when Ferry hashes; Mosquitto `$7$`/`$6$` entries kept as
//! imported) and a superuser flag. Written atomically (temporary file, then rename) with
//! mode 0600. A running Ferry notices a change made by `ferry users` at the next
//! authentication (the file's modification time and length are checked).
//!
//! Blocking: file I/O and hashing; async callers go through `spawn_blocking`.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::password;

/// The file under the data dir.
pub const FILE: &str = "authn/users.json";

/// One user as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    pub user_id: String,
    pub password_hash: String,
    #[serde(default)]
    pub is_superuser: bool,
}

/// What the database says about a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    UnknownUser,
    WrongPassword,
    Ok { is_superuser: bool },
}

#[derive(Debug, thiserror::Error)]
pub enum UserDbError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a user database: {message}")]
    Corrupt { path: String, message: String },
    #[error("user {0:?} already exists")]
    Exists(String),
    #[error("user {0:?} does not exist")]
    NotFound(String),
    #[error("invalid user: {0}")]
    Invalid(String),
    #[error("line {line}: {message}")]
    Import { line: usize, message: String },
}

#[derive(Debug, Default)]
struct State {
    users: BTreeMap<String, UserRecord>,
    /// Modification time and length of the file when it was read or written.
    seen: Option<(SystemTime, u64)>,
}

/// The database (cheap to share behind an `Arc`).
#[derive(Debug)]
pub struct UserDb {
    path: PathBuf,
    state: Mutex<State>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> UserDbError + '_ {
    move |source| UserDbError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

impl UserDb {
    /// Opens (or starts empty) the database of `data_dir`.
    pub fn open(data_dir: &Path) -> Result<UserDb, UserDbError> {
        let db = UserDb {
            path: data_dir.join(FILE),
            state: Mutex::default(),
        };
        {
            let mut st = db.lock();
            db.reload(&mut st)?;
        }
        Ok(db)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn reload(&self, st: &mut State) -> Result<(), UserDbError> {
        let now = stamp(&self.path);
        if now.is_some() && now == st.seen {
            return Ok(());
        }
        let users: Vec<UserRecord> = match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| UserDbError::Corrupt {
                path: self.path.display().to_string(),
                message: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io(&self.path)(e)),
        };
        st.users = users.into_iter().map(|u| (u.user_id.clone(), u)).collect();
        st.seen = now;
        Ok(())
    }

    fn save(&self, st: &mut State) -> Result<(), UserDbError> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let list: Vec<&UserRecord> = st.users.values().collect();
        let text = serde_json::to_vec_pretty(&list).map_err(|e| UserDbError::Corrupt {
            path: self.path.display().to_string(),
            message: e.to_string(),
        })?;
        let tmp = self.path.with_extension("json.tmp");
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp).map_err(io(&tmp))?;
        f.write_all(&text).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        std::fs::rename(&tmp, &self.path).map_err(io(&self.path))?;
        st.seen = stamp(&self.path);
        Ok(())
    }

    /// Applies `f` to the freshly read users and writes them back.
    fn change<T>(
        &self,
        f: impl FnOnce(&mut BTreeMap<String, UserRecord>) -> Result<T, UserDbError>,
    ) -> Result<T, UserDbError> {
        let mut st = self.lock();
        self.reload(&mut st)?;
        let out = f(&mut st.users)?;
        self.save(&mut st)?;
        Ok(out)
    }

    /// Every user, by id (hashes included: callers show only what they should).
    pub fn list(&self) -> Result<Vec<UserRecord>, UserDbError> {
        let mut st = self.lock();
        self.reload(&mut st)?;
        Ok(st.users.values().cloned().collect())
    }

    pub fn get(&self, user_id: &str) -> Result<Option<UserRecord>, UserDbError> {
        let mut st = self.lock();
        self.reload(&mut st)?;
        Ok(st.users.get(user_id).cloned())
    }

    /// Adds a user with an argon2id hash of `password`.
    pub fn add(
        &self,
        user_id: &str,
        password: &str,
        is_superuser: bool,
    ) -> Result<(), UserDbError> {
        validate(user_id, password)?;
        let hash = password::hash(password).map_err(|e| UserDbError::Invalid(e.to_string()))?;
        self.change(|users| {
            if users.contains_key(user_id) {
                return Err(UserDbError::Exists(user_id.to_owned()));
            }
            users.insert(
                user_id.to_owned(),
                UserRecord {
                    user_id: user_id.to_owned(),
                    password_hash: hash,
                    is_superuser,
                },
            );
            Ok(())
        })
    }

    /// Changes a user's password and/or superuser flag.
    pub fn update(
        &self,
        user_id: &str,
        password: Option<&str>,
        is_superuser: Option<bool>,
    ) -> Result<UserRecord, UserDbError> {
        let hash = match password {
            Some(p) => {
                validate(user_id, p)?;
                Some(password::hash(p).map_err(|e| UserDbError::Invalid(e.to_string()))?)
            }
            None => None,
        };
        self.change(|users| {
            let u = users
                .get_mut(user_id)
                .ok_or_else(|| UserDbError::NotFound(user_id.to_owned()))?;
            if let Some(h) = hash {
                u.password_hash = h;
            }
            if let Some(s) = is_superuser {
                u.is_superuser = s;
            }
            Ok(u.clone())
        })
    }

    pub fn delete(&self, user_id: &str) -> Result<(), UserDbError> {
        self.change(|users| {
            users
                .remove(user_id)
                .map(|_| ())
                .ok_or_else(|| UserDbError::NotFound(user_id.to_owned()))
        })
    }

    /// Imports a Mosquitto password file (`user:hash` lines, `#` comments): each user is
    /// added, or its hash replaced, keeping the hash. Nothing is written if a line is bad.
    /// Returns how many users were imported.
    pub fn import_mosquitto(&self, text: &str) -> Result<usize, UserDbError> {
        let mut entries = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |message: String| UserDbError::Import {
                line: i + 1,
                message,
            };
            let (user, hash) = line
                .split_once(':')
                .ok_or_else(|| bad("expected USER:HASH".into()))?;
            if user.is_empty() {
                return Err(bad("empty user name".into()));
            }
            password::check_format(hash).map_err(|e| bad(e.to_string()))?;
            entries.push((user.to_owned(), hash.to_owned()));
        }
        let n = entries.len();
        self.change(|users| {
            for (user, hash) in entries {
                let u = users.entry(user.clone()).or_insert_with(|| UserRecord {
                    user_id: user,
                    password_hash: String::new(),
                    is_superuser: false,
                });
                u.password_hash = hash;
            }
            Ok(n)
        })
    }

    /// Checks a password (blocking: hashing).
    pub fn verify(&self, user_id: &str, password: &[u8]) -> Result<Verified, UserDbError> {
        let record = {
            let mut st = self.lock();
            self.reload(&mut st)?;
            st.users.get(user_id).cloned()
        };
        Ok(match record {
            None => Verified::UnknownUser,
            Some(u) if password::verify(&u.password_hash, password) => Verified::Ok {
                is_superuser: u.is_superuser,
            },
            Some(_) => Verified::WrongPassword,
        })
    }
}

fn validate(user_id: &str, password: &str) -> Result<(), UserDbError> {
    if user_id.is_empty() || user_id.len() > 256 {
        return Err(UserDbError::Invalid(
            "user_id must be 1 to 256 bytes".into(),
        ));
    }
    if user_id.contains(':') || user_id.chars().any(char::is_control) {
        return Err(UserDbError::Invalid(
            "user_id must not contain ':' or control characters".into(),
        ));
    }
    if password.is_empty() {
        return Err(UserDbError::Invalid("password must not be empty".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_persist_and_verify() {
        let dir = tempfile::tempdir().unwrap();
        let db = UserDb::open(dir.path()).unwrap();
        db.add("alice", "pw-alice", false).unwrap();
        db.add("root", "pw-root", true).unwrap();
        assert!(matches!(
            db.add("alice", "x", false),
            Err(UserDbError::Exists(_))
        ));
        assert_eq!(
            db.verify("alice", b"pw-alice").unwrap(),
            Verified::Ok {
                is_superuser: false
            }
        );
        assert_eq!(
            db.verify("alice", b"nope").unwrap(),
            Verified::WrongPassword
        );
        assert_eq!(db.verify("bob", b"x").unwrap(), Verified::UnknownUser);
        // Another handle (another process) sees the changes and makes its own.
        let other = UserDb::open(dir.path()).unwrap();
        assert_eq!(other.list().unwrap().len(), 2);
        other.update("alice", Some("new-pw"), Some(true)).unwrap();
        other.delete("root").unwrap();
        assert_eq!(
            db.verify("alice", b"new-pw").unwrap(),
            Verified::Ok { is_superuser: true }
        );
        assert_eq!(
            db.verify("root", b"pw-root").unwrap(),
            Verified::UnknownUser
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(db.path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn mosquitto_import_keeps_hashes_and_rejects_bad_lines_whole() {
        let dir = tempfile::tempdir().unwrap();
        let db = UserDb::open(dir.path()).unwrap();
        let file = "# made by mosquitto_passwd\nalice:$7$101$4qByla1VmutaCJXh$DQY7dF+LZjgRMXv4UXnSLvq8Pl8uHp5fiSbM1eVBs1TOilwV1O9CAQZJ4FPdPbf7cb7IBRjr98ET/x4Jmg1G2Q==\nbob:$6$vuZnUgXQTMm54ooC$J8trNPi7caCTQm6HvnQqln2E4nO5JQIsRpCiUKjm49Q90eFnPVkjnAIx/KTuoaZCMdTGPDnbd5LfrIZ8ni+gOQ==\n";
        assert_eq!(db.import_mosquitto(file).unwrap(), 2);
        assert_eq!(
            db.verify("alice", b"secret").unwrap(),
            Verified::Ok {
                is_superuser: false
            }
        );
        assert_eq!(
            db.verify("bob", b"hunter2").unwrap(),
            Verified::Ok {
                is_superuser: false
            }
        );
        let e = db
            .import_mosquitto("carol:$6$x$y\ndave\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("line 1:"), "{e}");
        assert_eq!(db.list().unwrap().len(), 2);
    }
}
