//! An online backup: every table copied out of one read transaction — a consistent copy of the
//! outbox as of one moment, taken while the gateway keeps committing.

use super::schema::{
    CAMERA_BASELINES, CAMERA_LOG, DEAD, DUE, EVENTS, EVIDENCE_REFS, MESSAGES, MESSAGE_TIMES, META,
    OPEN_CASES, OPEN_PAIRS, PATROLS, PENDING, PICTURE_LOG, STATE, UNITS, UNIT_LOG,
};
use super::{Store, StoreError};
use redb::{Database, Key, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition};
use redb::{TableHandle, Value, WriteTransaction};
use std::path::Path;

/// Copies one table (absent in an old file: nothing to copy). Returns the rows copied.
fn copy<K: Key + 'static, V: Value + 'static>(
    from: &ReadTransaction,
    to: &WriteTransaction,
    table: TableDefinition<K, V>,
) -> Result<u64, StoreError> {
    let source = match from.open_table(table) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    let mut target = to.open_table(table)?;
    let mut n = 0;
    for row in source.iter()? {
        let (k, v) = row?;
        target.insert(k.value(), v.value())?;
        n += 1;
    }
    Ok(n)
}

/// What a backup copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Backup {
    /// Tables copied.
    pub tables: usize,
    /// Rows copied, over all tables.
    pub rows: u64,
}

impl Store {
    /// Writes a consistent copy of the outbox to `to` (a new file; its directory must exist):
    /// first to `to` + `.tmp`, renamed once complete, so `to` is never half a backup.
    pub fn backup_to(&self, to: &Path) -> Result<Backup, StoreError> {
        let tmp = to.with_extension("redb.tmp");
        let _ = std::fs::remove_file(&tmp);
        let copied = self.copy_into(&tmp);
        if copied.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        let copied = copied?;
        std::fs::rename(&tmp, to).map_err(|e| StoreError(redb::Error::Io(e)))?;
        Ok(copied)
    }

    fn copy_into(&self, tmp: &Path) -> Result<Backup, StoreError> {
        let from = self.db()?.begin_read()?;
        let copy_db = Database::create(tmp)?;
        let to = copy_db.begin_write()?;
        let rows = [
            copy(&from, &to, EVENTS)?,
            copy(&from, &to, STATE)?,
            copy(&from, &to, PENDING)?,
            copy(&from, &to, DEAD)?,
            copy(&from, &to, META)?,
            copy(&from, &to, UNITS)?,
            copy(&from, &to, OPEN_PAIRS)?,
            copy(&from, &to, OPEN_CASES)?,
            copy(&from, &to, DUE)?,
            copy(&from, &to, CAMERA_LOG)?,
            copy(&from, &to, PICTURE_LOG)?,
            copy(&from, &to, CAMERA_BASELINES)?,
            copy(&from, &to, UNIT_LOG)?,
            copy(&from, &to, PATROLS)?,
            copy(&from, &to, EVIDENCE_REFS)?,
            copy(&from, &to, MESSAGES)?,
            copy(&from, &to, MESSAGE_TIMES)?,
        ];
        to.commit()?;
        Ok(Backup {
            tables: rows.len(),
            rows: rows.iter().sum(),
        })
    }

    /// The names of the tables in the file (a backup must hold every one of them).
    pub fn table_names(&self) -> Result<Vec<String>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let mut names: Vec<String> = txn.list_tables()?.map(|t| t.name().to_string()).collect();
        names.sort();
        Ok(names)
    }
}
