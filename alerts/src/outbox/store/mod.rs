//! The outbox's database: a redb file in `data_dir`, written in atomic, fsynced transactions.
//!
//! Tables:
//!
//! | table | key | value | role |
//! |---|---|---|---|
//! | `events` | event id (u128, UUIDv7: time-ordered) | the event's JSON, byte for byte the webhook body | the record |
//! | `state` | event id | [`EventState`] as JSON | delivery, route, the case (closed loop) |
//! | `pending` | (queue: township, `dept:<code>` or `city`; seq) | (event id, commit time ms) | each township's delivery queue, in commit order |
//! | `dead` | event id | township | the dead-letter list |
//! | `meta` | name | u64 | sequence and counters (pending per queue, cases per township and stage, late stages) |
//! | `units` | unit id | unit liveness state as JSON | unit liveness snapshot (restart-safe online status) |
//! | `open_pairs` | (pair key, event id) | () | open tickets that a recovering event closes (`crate::case::pairs`) |
//! | `picture_log` | (camera id, unix ms) | 1 failing / 0 clear | picture verdicts, for integrity (完好率) over time |
//! | `unit_log` | (unit id, unix ms) | 1 online / 4 offline | unit liveness changes (from the snapshots), for 联网率 over time |
//! | `patrols` | (unit id, sent unix ms) | patrol check record as JSON | patrol checks (查岗) and their answers, for the assessment |
//! | `evidence_refs` | ("<camera>/<file>", event id) | () | which events carry an evidence file (who may see the snapshot) |
//! | `messages`, `message_times` | message key / (unix ms, key) | (unix ms, event ids) / () | messages committed, so that a redelivery gets the same ids and commits nothing |
//! | `due` | (unix ms, event id) | () | supervised cases by when they next need a reminder (督办) |
//! | `camera_log` | (camera id, unix ms) | state code | camera state changes, for uptime (`meta` keeps when the cameras were last watched) |
//!
//! Every call to [`Store::apply`] is one write transaction with immediate durability: either all
//! of its operations are on disk when it returns, or none is.
//!
//! * `schema.rs` — the tables, the meta keys and the stored state of an event;
//! * `ops.rs` — the operations a write transaction applies, and their outcomes;
//! * `write.rs` — how each operation changes the tables;
//! * `read.rs` — the reads (queues, events, pages, camera log, stats), which never block the
//!   writer.

mod backup;
mod cases;
mod evidence;
mod messages;
mod ops;
mod read;
mod schema;
mod write;

pub use backup::Backup;
pub use evidence::evidence_key;
pub use messages::{MessageKey, MAX_KEY_LEN};
pub use ops::{CameraMark, Committed, NewEvent, Op, Outcome, Resolve};
pub use read::{
    CameraLog, CaseCounts, LastMarks, ListQuery, Page, PendingItem, Stats, Stored, EVIDENCE_PREFIX,
    MAX_SCAN,
};
pub use schema::{corrupt_rows, DeliveryStatus, EventState, PatrolRecord};

use redb::{Database, Durability};
use schema::{
    CAMERA_BASELINES, CAMERA_LOG, CASES_INDEXED, CREATED_MS, DEAD, DUE, EVENTS, EVIDENCE_REFS,
    MESSAGES, MESSAGE_TIMES, META, OPEN_CASES, OPEN_PAIRS, PATROLS, PENDING, PICTURE_LOG, STATE,
    UNITS, UNIT_LOG,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use write::Tables;

/// The default page cache of the outbox database.
pub const DEFAULT_CACHE_BYTES: usize = 64 << 20;

/// A storage failure (disk full, I/O error, corruption).
#[derive(Debug, thiserror::Error)]
#[error("outbox storage: {0}")]
pub struct StoreError(#[from] redb::Error);

impl StoreError {
    /// From a file operation around the store (a backup's copy, its rename).
    pub fn from_io(e: std::io::Error) -> Self {
        StoreError(redb::Error::Io(e))
    }

    /// Whether the file is held by another process (a running gateway).
    pub fn is_locked(&self) -> bool {
        matches!(self.0, redb::Error::DatabaseAlreadyOpen)
    }

    /// Whether the disk failed (full, I/O error) or an earlier failure closed the file: the
    /// database must be closed and opened again before it takes another write.
    pub fn is_io(&self) -> bool {
        matches!(
            self.0,
            redb::Error::Io(_) | redb::Error::PreviousIo | redb::Error::DatabaseClosed
        )
    }
}

macro_rules! store_error_from {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError(e.into())
            }
        }
    )*};
}
store_error_from!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

/// Opens (or creates) the file and every table, so that readers never meet a missing one.
fn open_db(path: &Path, cache_bytes: usize) -> Result<Database, StoreError> {
    let db = Database::builder()
        .set_cache_size(cache_bytes)
        .create(path)?;
    let txn = db.begin_write()?;
    {
        txn.open_table(EVENTS)?;
        txn.open_table(STATE)?;
        txn.open_table(PENDING)?;
        txn.open_table(DEAD)?;
        txn.open_table(META)?;
        txn.open_table(UNITS)?;
        txn.open_table(CAMERA_LOG)?;
        txn.open_table(OPEN_PAIRS)?;
        txn.open_table(OPEN_CASES)?;
        txn.open_table(DUE)?;
        txn.open_table(PICTURE_LOG)?;
        txn.open_table(CAMERA_BASELINES)?;
        txn.open_table(UNIT_LOG)?;
        txn.open_table(PATROLS)?;
        txn.open_table(EVIDENCE_REFS)?;
        txn.open_table(MESSAGES)?;
        txn.open_table(MESSAGE_TIMES)?;
    }
    txn.commit()?;
    Ok(db)
}

/// The outbox database.
///
/// After a disk failure redb refuses every further write ("previous I/O error") until the file
/// is closed and opened again; [`Store::reopen`] does that in place, so the handle shared by
/// the writer, the delivery workers and the API stays the same.
pub struct Store {
    db: parking_lot::RwLock<Option<Arc<Database>>>,
    path: PathBuf,
    cache_bytes: usize,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

impl Store {
    /// Opens (or creates) the outbox file with the default cache; fails fast if another process
    /// has it open.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with_cache(path, DEFAULT_CACHE_BYTES)
    }

    /// Opens (or creates) the outbox file with a page cache of at most `cache_bytes`: the
    /// gateway's memory stays bounded however many events wait on disk.
    pub fn open_with_cache(path: &Path, cache_bytes: usize) -> Result<Self, StoreError> {
        let store = Self {
            db: parking_lot::RwLock::new(Some(Arc::new(open_db(path, cache_bytes)?))),
            path: path.to_path_buf(),
            cache_bytes,
        };
        store.index_cases()?;
        Ok(store)
    }

    /// The database, or `DatabaseClosed` while it is being reopened.
    fn db(&self) -> Result<Arc<Database>, StoreError> {
        self.db
            .read()
            .clone()
            .ok_or(StoreError(redb::Error::DatabaseClosed))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes the database and opens it again (redb repairs it on opening when the last
    /// transaction did not finish). Fails — and can be called again — while a reader still
    /// holds the old one or the disk still fails. While the file is being opened (a repair of
    /// a large file takes seconds) readers get `DatabaseClosed` at once instead of waiting:
    /// they run on the async runtime, and waiting there would stall every task, `/healthz`
    /// included.
    pub fn reopen(&self) -> Result<(), StoreError> {
        {
            let mut slot = self.db.write();
            if let Some(old) = slot.take() {
                match Arc::try_unwrap(old) {
                    Ok(db) => drop(db.close()), // a failing close still releases the file
                    Err(in_use) => {
                        *slot = Some(in_use);
                        return Err(StoreError(redb::Error::DatabaseAlreadyOpen));
                    }
                }
            }
        }
        let db = open_db(&self.path, self.cache_bytes)?;
        *self.db.write() = Some(Arc::new(db));
        Ok(())
    }

    /// Once per file: indexes the cases of a file written before the closed loop (open tickets,
    /// open cases, due times, counters), or only its open cases for a file written before that
    /// index — one transaction, then never again.
    fn index_cases(&self) -> Result<(), StoreError> {
        let txn = self.db()?.begin_write()?;
        {
            let mut t = Tables::open(&txn)?;
            if t.counter(CREATED_MS)? == 0 {
                let now = chrono::Utc::now().timestamp_millis().max(1) as u64;
                t.add(CREATED_MS, now as i64)?;
                t.flush_counters()?;
            }
            // 1: every index but the open cases'; 2: all of them
            match t.counter(CASES_INDEXED)? {
                0 => t.index_all_cases()?,
                1 => t.index_open_cases()?,
                _ => {
                    drop(t);
                    txn.commit()?;
                    return Ok(());
                }
            }
            let done = t.counter(CASES_INDEXED)?;
            t.add(CASES_INDEXED, 2 - done as i64)?;
            t.flush_counters()?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Applies operations in one durable transaction; the outcome of each, in order.
    pub fn apply(&self, ops: &[Op], max_pending: u64) -> Result<Vec<Outcome>, StoreError> {
        self.apply_with(ops, max_pending, true)
    }

    /// Applies operations in one transaction. With `durable` the transaction (and every
    /// non-durable one before it) is on disk when this returns; without, it is visible to
    /// readers at once and reaches the disk with the next durable transaction.
    pub fn apply_with(
        &self,
        ops: &[Op],
        max_pending: u64,
        durable: bool,
    ) -> Result<Vec<Outcome>, StoreError> {
        let mut txn = self.db()?.begin_write()?;
        txn.set_durability(if durable {
            Durability::Immediate
        } else {
            Durability::None
        })?;
        let outcomes = {
            let mut t = Tables::open(&txn)?;
            let mut outcomes = Vec::with_capacity(ops.len());
            for op in ops {
                outcomes.push(t.apply(op, max_pending)?);
            }
            t.flush_counters()?;
            outcomes
        };
        txn.commit()?;
        Ok(outcomes)
    }

    /// When this outbox file was first opened (by a gateway that records it).
    pub fn created(&self) -> Result<Option<chrono::DateTime<chrono::Utc>>, StoreError> {
        let txn = redb::ReadableDatabase::begin_read(&*self.db()?)?;
        let meta = txn.open_table(META)?;
        let ms = meta.get(CREATED_MS)?.map(|v| v.value() as i64);
        Ok(ms.and_then(chrono::DateTime::from_timestamp_millis))
    }

    /// Sets when the file counts as created. Test support only (a report for a week before
    /// the gateway existed is never made).
    #[doc(hidden)]
    pub fn set_created(&self, at: chrono::DateTime<chrono::Utc>) -> Result<(), StoreError> {
        let txn = self.db()?.begin_write()?;
        txn.open_table(META)?
            .insert(CREATED_MS, at.timestamp_millis().max(1) as u64)?;
        txn.commit()?;
        Ok(())
    }

    /// Starts a commit and abandons it half-way, as a crash would. Test support only.
    #[doc(hidden)]
    pub fn abandon(&self, ops: &[Op]) -> Result<(), StoreError> {
        let txn = self.db()?.begin_write()?;
        {
            let mut t = Tables::open(&txn)?;
            for op in ops {
                t.apply(op, u64::MAX)?;
            }
            t.flush_counters()?;
        }
        drop(txn);
        Ok(())
    }
}
