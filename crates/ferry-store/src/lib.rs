//! ferry-store: the file store for MQTT state, `[node] data_dir/state.redb`.
//!
//! Implements [`ferry_broker::Store`] on redb (ADR 0007): one ACID database file with three
//! tables, `sessions` (client id → session record), `deliveries` ((client id, seq) → one
//! queued or inflight delivery of that session) and `retained` (topic → message), values
//! encoded by `ferry_broker::store::codec`. Every [`Store::apply`] is one write transaction
//! committed with redb's default durability (`Immediate`: fsynced before it returns), so a
//! batch is either wholly on disk or not at all, also across `kill -9`. redb is slowest at
//! single durable commits (a few thousand per second), which is why the broker batches.
//! A file written before `deliveries` existed has version 1 session records (deliveries
//! inline); they are read as such and rewritten in the new form by the broker's next sync.
//!
//! Must not: know the broker's in-memory types beyond the records of `ferry_broker::store`.

use std::path::{Path, PathBuf};

use ferry_broker::store::codec;
use ferry_broker::{Change, Loaded, Store, StoreError};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

const SESSIONS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("sessions");
const RETAINED: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("retained");
const DELIVERIES: TableDefinition<'_, (&str, u64), &[u8]> = TableDefinition::new("deliveries");

/// The file name inside the data dir.
pub const FILE_NAME: &str = "state.redb";

/// Sessions and retained messages in one redb file.
pub struct RedbStore {
    db: Database,
    path: PathBuf,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore")
            .field("path", &self.path)
            .finish()
    }
}

fn backend(what: &str, path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("{what} {}: {e}", path.display()))
}

impl RedbStore {
    /// Opens (or creates) `dir/state.redb`, creating `dir` if needed. Fails if another
    /// process has the file open.
    pub fn open(dir: &Path) -> Result<RedbStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| backend("cannot create", dir, e))?;
        let path = dir.join(FILE_NAME);
        let db = Database::create(&path).map_err(|e| backend("cannot open", &path, e))?;
        let tx = db
            .begin_write()
            .map_err(|e| backend("cannot write", &path, e))?;
        tx.open_table(SESSIONS)
            .map_err(|e| backend("cannot open table in", &path, e))?;
        tx.open_table(RETAINED)
            .map_err(|e| backend("cannot open table in", &path, e))?;
        tx.open_table(DELIVERIES)
            .map_err(|e| backend("cannot open table in", &path, e))?;
        tx.commit()
            .map_err(|e| backend("cannot commit to", &path, e))?;
        Ok(RedbStore { db, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, what: &str, e: impl std::fmt::Display) -> StoreError {
        backend(what, &self.path, e)
    }
}

impl Store for RedbStore {
    fn load(&self) -> Result<Loaded, StoreError> {
        let tx = self.db.begin_read().map_err(|e| self.err("reading", e))?;
        let mut out = Loaded::default();
        let sessions = tx
            .open_table(SESSIONS)
            .map_err(|e| self.err("reading", e))?;
        let mut by_id = std::collections::HashMap::new();
        for row in sessions.iter().map_err(|e| self.err("reading", e))? {
            let (k, v) = row.map_err(|e| self.err("reading", e))?;
            let s = codec::decode_session(v.value()).map_err(|why| StoreError::Corrupt {
                key: format!("sessions/{}", k.value()),
                why,
            })?;
            by_id.insert(k.value().to_owned(), out.sessions.len());
            out.sessions.push(s);
        }
        let deliveries = tx
            .open_table(DELIVERIES)
            .map_err(|e| self.err("reading", e))?;
        // In key order: by client id, then seq.
        for row in deliveries.iter().map_err(|e| self.err("reading", e))? {
            let (k, v) = row.map_err(|e| self.err("reading", e))?;
            let (id, seq) = k.value();
            let d = codec::decode_delivery(seq, v.value()).map_err(|why| StoreError::Corrupt {
                key: format!("deliveries/{id}/{seq}"),
                why,
            })?;
            // A delivery without its session cannot be (sessions delete theirs); skipped.
            if let Some(s) = by_id.get(id).and_then(|i| out.sessions.get_mut(*i)) {
                s.deliveries.push(d);
            }
        }
        let retained = tx
            .open_table(RETAINED)
            .map_err(|e| self.err("reading", e))?;
        for row in retained.iter().map_err(|e| self.err("reading", e))? {
            let (k, v) = row.map_err(|e| self.err("reading", e))?;
            let msg = codec::decode_message(v.value()).map_err(|why| StoreError::Corrupt {
                key: format!("retained/{}", k.value()),
                why,
            })?;
            out.retained.push(std::sync::Arc::new(msg));
        }
        Ok(out)
    }

    fn apply(&self, changes: &[Change]) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(|e| self.err("writing", e))?;
        {
            let mut sessions = tx
                .open_table(SESSIONS)
                .map_err(|e| self.err("writing", e))?;
            let mut retained = tx
                .open_table(RETAINED)
                .map_err(|e| self.err("writing", e))?;
            let mut deliveries = tx
                .open_table(DELIVERIES)
                .map_err(|e| self.err("writing", e))?;
            for c in changes {
                match c {
                    Change::PutSession(w) => {
                        let id: &str = &w.record.client_id;
                        let bytes = codec::encode_session(&w.record);
                        sessions
                            .insert(id, bytes.as_slice())
                            .map_err(|e| self.err("writing", e))?;
                        if w.replace {
                            deliveries
                                .retain_in((id, 0)..=(id, u64::MAX), |_, _| false)
                                .map_err(|e| self.err("writing", e))?;
                        }
                        for seq in &w.removed {
                            deliveries
                                .remove((id, *seq))
                                .map_err(|e| self.err("writing", e))?;
                        }
                        for d in &w.put {
                            let bytes = codec::encode_delivery(d);
                            deliveries
                                .insert((id, d.seq), bytes.as_slice())
                                .map_err(|e| self.err("writing", e))?;
                        }
                    }
                    Change::DeleteSession(id) => {
                        let id: &str = id;
                        sessions.remove(id).map_err(|e| self.err("writing", e))?;
                        deliveries
                            .retain_in((id, 0)..=(id, u64::MAX), |_, _| false)
                            .map_err(|e| self.err("writing", e))?;
                    }
                    Change::PutRetained(m) => {
                        let bytes = codec::encode_message(m);
                        retained
                            .insert(m.topic.as_str(), bytes.as_slice())
                            .map_err(|e| self.err("writing", e))?;
                    }
                    Change::DeleteRetained(t) => {
                        retained
                            .remove(t.as_str())
                            .map_err(|e| self.err("writing", e))?;
                    }
                }
            }
        }
        // Durability::Immediate (the default): fsynced when this returns.
        tx.commit().map_err(|e| self.err("committing to", e))
    }
}

#[cfg(test)]
mod tests;
