//! Which events refer to which evidence file: a snapshot is shown to whoever may see an event
//! that carries it (its township, the department it is assigned to), not to whoever owns the
//! camera.

use super::read::EVIDENCE_PREFIX;
use super::schema::EVIDENCE_REFS;
use super::write::Tables;
use super::{Store, StoreError};
use crate::event::{Event, Evidence};
use uuid::Uuid;

/// The index key of an evidence URL (`<camera>/<file>`), if it is one of the gateway's.
pub fn evidence_key(url: &str) -> Option<&str> {
    url.strip_prefix(EVIDENCE_PREFIX)
}

/// Whether a stored body mentions evidence at all (cheap: most bodies do not).
fn mentions_evidence(body: &[u8]) -> bool {
    body.windows(EVIDENCE_PREFIX.len())
        .any(|w| w == EVIDENCE_PREFIX.as_bytes())
}

/// The evidence of a stored body (empty unless it has some).
pub(super) fn evidence_of(body: &[u8]) -> Vec<Evidence> {
    if !mentions_evidence(body) {
        return Vec::new();
    }
    serde_json::from_slice::<Event>(body)
        .map(|e| e.evidence)
        .unwrap_or_default()
}

impl Tables<'_> {
    /// Notes that event `id` carries `evidence`.
    pub(super) fn refer(&mut self, id: u128, evidence: &[Evidence]) -> Result<(), StoreError> {
        if evidence.is_empty() {
            return Ok(());
        }
        let mut refs = self.txn.open_table(EVIDENCE_REFS)?;
        for e in evidence {
            if let Some(key) = evidence_key(&e.url) {
                refs.insert((key, id), ())?;
            }
        }
        Ok(())
    }

    /// Forgets that event `id` carried `evidence` (it is purged).
    pub(super) fn unrefer(&mut self, id: u128, evidence: &[Evidence]) -> Result<(), StoreError> {
        if evidence.is_empty() {
            return Ok(());
        }
        let mut refs = self.txn.open_table(EVIDENCE_REFS)?;
        for e in evidence {
            if let Some(key) = evidence_key(&e.url) {
                refs.remove((key, id))?;
            }
        }
        Ok(())
    }
}

impl Store {
    /// The events that carry the evidence file `key` (`<camera>/<file>`).
    pub fn evidence_refs(&self, key: &str) -> Result<Vec<Uuid>, StoreError> {
        let txn = redb::ReadableDatabase::begin_read(&*self.db()?)?;
        let refs = txn.open_table(EVIDENCE_REFS)?;
        let mut out = Vec::new();
        for entry in refs.range((key, 0u128)..=(key, u128::MAX))? {
            out.push(Uuid::from_u128(entry?.0.value().1));
        }
        Ok(out)
    }
}
