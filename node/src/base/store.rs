//! Node state in redb (`data/state.redb`): the chain of accepted rosters and
//! small metadata. Every write is one ACID transaction committed with
//! immediate durability before the caller acknowledges anything. Values are
//! the protocol codec's bytes, never a second format.

use dxmesh_protocol::agreement::Step;
use dxmesh_protocol::codec;
use dxmesh_protocol::roster::Roster;
use dxmesh_protocol::signed::Signed;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::path::{Path, PathBuf};

/// Roster versions: version -> encoded `Signed<Roster>`.
const ROSTERS: TableDefinition<u64, &[u8]> = TableDefinition::new("rosters");
/// Agreement transcripts: thread digest -> encoded `Vec<Signed<Step>>`.
const TRANSCRIPTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("agreement_transcripts");
/// Our own steps the provider has not confirmed: step digest -> encoded `Signed<Step>`.
const OUTBOX: TableDefinition<&[u8], &[u8]> = TableDefinition::new("agreement_outbox");
/// Audit log entries: seq -> encoded `audit::Entry`.
const AUDIT_ENTRIES: TableDefinition<u64, &[u8]> = TableDefinition::new("audit_entries");
/// Our signed checkpoints: tree size -> note text.
const AUDIT_CHECKPOINTS: TableDefinition<u64, &[u8]> = TableDefinition::new("audit_checkpoints");
/// Audit side tables (witness state, cosignatures, evidence): key -> bytes.
const AUDIT_META: TableDefinition<&[u8], &[u8]> = TableDefinition::new("audit_meta");
/// Counters: key -> encoded value (pull sessions and disclosure use per agreement and epoch).
const COUNTERS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("counters");

/// A key and its value.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// Why state could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database could not be opened (held by another process, corrupt, ...).
    #[error("{path}: cannot open node state: {message}", path = .path.display())]
    Open {
        /// Database file.
        path: PathBuf,
        /// Cause.
        message: String,
    },
    /// A transaction failed.
    #[error("node state: {0}")]
    Db(String),
    /// Stored bytes do not decode (corruption).
    #[error("node state: stored {what} does not decode: {source}")]
    Corrupt {
        /// What was being read.
        what: &'static str,
        /// Decoder error.
        source: codec::CodecError,
    },
}

fn db_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Db(e.to_string())
}

/// The node's state database.
pub struct Store {
    db: Database,
}

impl Store {
    /// Opens (creating if needed) `DATA_DIR/state.redb`.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        let path = data_dir.join("state.redb");
        let open_err = |message: String| StoreError::Open {
            path: path.clone(),
            message,
        };
        std::fs::create_dir_all(data_dir).map_err(|e| open_err(e.to_string()))?;
        let db = Database::create(&path).map_err(|e| open_err(e.to_string()))?;
        let tx = db.begin_write().map_err(db_err)?;
        tx.open_table(ROSTERS).map_err(db_err)?;
        tx.open_table(TRANSCRIPTS).map_err(db_err)?;
        tx.open_table(OUTBOX).map_err(db_err)?;
        tx.open_table(COUNTERS).map_err(db_err)?;
        tx.open_table(AUDIT_ENTRIES).map_err(db_err)?;
        tx.open_table(AUDIT_CHECKPOINTS).map_err(db_err)?;
        tx.open_table(AUDIT_META).map_err(db_err)?;
        tx.commit().map_err(db_err)?;
        Ok(Store { db })
    }

    /// The newest accepted roster, if any.
    pub fn latest_roster(&self) -> Result<Option<Signed<Roster>>, StoreError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let t = tx.open_table(ROSTERS).map_err(db_err)?;
        match t.last().map_err(db_err)? {
            None => Ok(None),
            Some((_, v)) => {
                codec::decode(v.value())
                    .map(Some)
                    .map_err(|source| StoreError::Corrupt {
                        what: "roster",
                        source,
                    })
            }
        }
    }

    /// Every stored roster version above `after`, oldest first.
    pub fn rosters_after(&self, after: u64) -> Result<Vec<Signed<Roster>>, StoreError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let t = tx.open_table(ROSTERS).map_err(db_err)?;
        let mut out = Vec::new();
        for item in t.range(after.saturating_add(1)..).map_err(db_err)? {
            let (_, v) = item.map_err(db_err)?;
            out.push(
                codec::decode(v.value()).map_err(|source| StoreError::Corrupt {
                    what: "roster",
                    source,
                })?,
            );
        }
        Ok(out)
    }

    /// Stores accepted roster versions in one durable transaction.
    pub fn put_rosters(&self, chain: &[(u64, &Signed<Roster>)]) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(db_err)?;
        {
            let mut t = tx.open_table(ROSTERS).map_err(db_err)?;
            for (version, s) in chain {
                let bytes = codec::encode(*s).map_err(db_err)?;
                t.insert(*version, bytes.as_slice()).map_err(db_err)?;
            }
        }
        tx.commit().map_err(db_err)
    }
}

impl Store {
    /// Every stored transcript.
    pub fn transcripts(&self) -> Result<Vec<Vec<Signed<Step>>>, StoreError> {
        self.all_values(TRANSCRIPTS, "agreement transcript")
    }

    /// Replaces the transcript of `thread` (durably).
    pub fn put_transcript(
        &self,
        thread: &[u8; 32],
        steps: &[Signed<Step>],
    ) -> Result<(), StoreError> {
        let bytes = codec::encode(steps).map_err(db_err)?;
        self.put(TRANSCRIPTS, thread, &bytes)
    }

    /// Our unconfirmed steps.
    pub fn outbox(&self) -> Result<Vec<Signed<Step>>, StoreError> {
        self.all_values(OUTBOX, "outbox step")
    }

    /// Keeps `step` until the provider confirms it (durably).
    pub fn outbox_put(&self, step: &Signed<Step>) -> Result<(), StoreError> {
        let bytes = codec::encode(step).map_err(db_err)?;
        self.put(OUTBOX, &step.digest(), &bytes)
    }

    /// Forgets an outbox step.
    pub fn outbox_remove(&self, digest: &[u8; 32]) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(db_err)?;
        {
            let mut t = tx.open_table(OUTBOX).map_err(db_err)?;
            t.remove(digest.as_slice()).map_err(db_err)?;
        }
        tx.commit().map_err(db_err)
    }

    /// A counter value (encoded with the protocol codec), if set.
    pub fn counter<T: serde::de::DeserializeOwned>(
        &self,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let t = tx.open_table(COUNTERS).map_err(db_err)?;
        match t.get(key).map_err(db_err)? {
            None => Ok(None),
            Some(v) => codec::decode(v.value())
                .map(Some)
                .map_err(|source| StoreError::Corrupt {
                    what: "counter",
                    source,
                }),
        }
    }

    /// Sets a counter (durably, before the caller acts on it).
    pub fn set_counter<T: serde::Serialize>(
        &self,
        key: &[u8],
        value: &T,
    ) -> Result<(), StoreError> {
        let bytes = codec::encode(value).map_err(db_err)?;
        self.put(COUNTERS, key, &bytes)
    }

    fn put(
        &self,
        table: TableDefinition<&[u8], &[u8]>,
        key: &[u8],
        value: &[u8],
    ) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(db_err)?;
        {
            let mut t = tx.open_table(table).map_err(db_err)?;
            t.insert(key, value).map_err(db_err)?;
        }
        tx.commit().map_err(db_err)
    }

    fn all_values<T: serde::de::DeserializeOwned>(
        &self,
        table: TableDefinition<&[u8], &[u8]>,
        what: &'static str,
    ) -> Result<Vec<T>, StoreError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let t = tx.open_table(table).map_err(db_err)?;
        let mut out = Vec::new();
        for item in t.iter().map_err(db_err)? {
            let (_, v) = item.map_err(db_err)?;
            out.push(
                codec::decode(v.value()).map_err(|source| StoreError::Corrupt { what, source })?,
            );
        }
        Ok(out)
    }
}

impl Store {
    /// Appends an audit entry (durably).
    pub fn audit_append(&self, seq: u64, entry: &[u8]) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(db_err)?;
        {
            let mut t = tx.open_table(AUDIT_ENTRIES).map_err(db_err)?;
            t.insert(seq, entry).map_err(db_err)?;
        }
        tx.commit().map_err(db_err)
    }

    /// Loads many log entries (sequence number, encoded entry) and signed
    /// checkpoints (size, note) in one transaction: restoring a log, or
    /// building a large one for the export benchmark. The daemon appends
    /// one entry at a time with [`Store::audit_append`].
    pub fn audit_load(
        &self,
        entries: &[(u64, Vec<u8>)],
        checkpoints: &[(u64, String)],
    ) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(db_err)?;
        {
            let mut t = tx.open_table(AUDIT_ENTRIES).map_err(db_err)?;
            for (seq, e) in entries {
                t.insert(*seq, e.as_slice()).map_err(db_err)?;
            }
            let mut c = tx.open_table(AUDIT_CHECKPOINTS).map_err(db_err)?;
            for (size, note) in checkpoints {
                c.insert(*size, note.as_bytes()).map_err(db_err)?;
            }
        }
        tx.commit().map_err(db_err)
    }

    /// Stores a signed checkpoint of `size` entries (durably).
    pub fn audit_put_checkpoint(&self, size: u64, note: &str) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(db_err)?;
        {
            let mut c = tx.open_table(AUDIT_CHECKPOINTS).map_err(db_err)?;
            c.insert(size, note.as_bytes()).map_err(db_err)?;
        }
        tx.commit().map_err(db_err)
    }

    /// Every audit entry's bytes, in order.
    pub fn audit_entries(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let t = tx.open_table(AUDIT_ENTRIES).map_err(db_err)?;
        let mut out = Vec::new();
        for item in t.iter().map_err(db_err)? {
            let (_, v) = item.map_err(db_err)?;
            out.push(v.value().to_vec());
        }
        Ok(out)
    }

    /// At most `n` audit entries before position `before` (all of them
    /// without), newest first, with their positions.
    pub fn audit_before(
        &self,
        before: Option<u64>,
        n: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let t = tx.open_table(AUDIT_ENTRIES).map_err(db_err)?;
        let mut out = Vec::with_capacity(n);
        let range = t.range(..before.unwrap_or(u64::MAX)).map_err(db_err)?;
        for item in range.rev().take(n) {
            let (k, v) = item.map_err(db_err)?;
            out.push((k.value(), v.value().to_vec()));
        }
        Ok(out)
    }

    /// Every checkpoint note, by size.
    pub fn audit_checkpoints(&self) -> Result<Vec<(u64, String)>, StoreError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let t = tx.open_table(AUDIT_CHECKPOINTS).map_err(db_err)?;
        let mut out = Vec::new();
        for item in t.iter().map_err(db_err)? {
            let (k, v) = item.map_err(db_err)?;
            out.push((k.value(), String::from_utf8_lossy(v.value()).into_owned()));
        }
        Ok(out)
    }

    /// An audit side value.
    pub fn audit_meta(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let t = tx.open_table(AUDIT_META).map_err(db_err)?;
        Ok(t.get(key).map_err(db_err)?.map(|v| v.value().to_vec()))
    }

    /// Sets an audit side value (durably).
    pub fn set_audit_meta(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.put(AUDIT_META, key, value)
    }

    /// Audit side values whose key starts with `prefix`.
    pub fn audit_meta_prefix(&self, prefix: &[u8]) -> Result<Vec<KeyValue>, StoreError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let t = tx.open_table(AUDIT_META).map_err(db_err)?;
        let mut out = Vec::new();
        for item in t.range(prefix..).map_err(db_err)? {
            let (k, v) = item.map_err(db_err)?;
            if !k.value().starts_with(prefix) {
                break;
            }
            out.push((k.value().to_vec(), v.value().to_vec()));
        }
        Ok(out)
    }
}
