//! Messages already committed: a source's redelivery (an MQTT QoS 1 message after a crash, an
//! HTTP retry after a timeout, a GB/T 26875.3 frame sent again) finds the ids its events got
//! the first time, and commits nothing — in the same transaction that committed them, so it
//! holds across `kill -9`.

use super::ops::{NewEvent, Outcome};
use super::schema::{MESSAGES, MESSAGE_TIMES};
use super::write::Tables;
use super::StoreError;
use chrono::{DateTime, Utc};
use redb::ReadableTable;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// What identifies a message, and how long it is remembered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageKey {
    /// The identity (`<source>:<unit>:…`), at most [`MAX_KEY_LEN`] bytes.
    pub key: String,
    /// A redelivery later than this is a new message.
    pub window_ms: i64,
}

/// Longest key kept.
pub const MAX_KEY_LEN: usize = 256;

/// How long any message is remembered at most (the longest window).
pub const MESSAGE_MEMORY: chrono::Duration = chrono::Duration::hours(24);

/// A key's 128-bit digest: the tables hold 16 bytes per message, not the key.
fn digest(key: &str) -> u128 {
    let d = Sha256::digest(key.as_bytes());
    u128::from_be_bytes(d[..16].try_into().expect("16 bytes"))
}

fn encode_ids(ids: &[Uuid]) -> Vec<u8> {
    ids.iter().flat_map(|id| id.as_bytes().to_vec()).collect()
}

fn decode_ids(bytes: &[u8]) -> Vec<Uuid> {
    bytes
        .chunks_exact(16)
        .map(|c| Uuid::from_slice(c).expect("16 bytes"))
        .collect()
}

impl Tables<'_> {
    /// Commits a message's events unless it was committed within its window; `own` are the ids
    /// to answer a redelivery with (the message's own events, not the gateway's).
    pub(super) fn commit_message(
        &mut self,
        key: &MessageKey,
        own: &[Uuid],
        events: &[NewEvent],
        max_pending: u64,
    ) -> Result<Outcome, StoreError> {
        let now = Utc::now();
        let k = digest(&key.key[..key.key.len().min(MAX_KEY_LEN)]);
        let messages = self.txn.open_table(MESSAGES)?;
        if let Some(v) = messages.get(k)? {
            let (at_ms, ids) = v.value();
            if now.timestamp_millis() - at_ms <= key.window_ms {
                return Ok(Outcome::Repeated(decode_ids(ids)));
            }
        }
        drop(messages);
        let outcome = self.commit(events, max_pending)?;
        if matches!(outcome, Outcome::Committed(_)) {
            let at = now.timestamp_millis();
            self.txn
                .open_table(MESSAGES)?
                .insert(k, (at, encode_ids(own).as_slice()))?;
            self.txn.open_table(MESSAGE_TIMES)?.insert((at, k), ())?;
        }
        Ok(outcome)
    }

    /// Forgets messages committed before `before` (their window is over), at most `limit`.
    pub(super) fn forget_messages(
        &mut self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<usize, StoreError> {
        let mut times = self.txn.open_table(MESSAGE_TIMES)?;
        let old: Vec<(i64, u128)> = times
            .range(..(before.timestamp_millis(), 0u128))?
            .take(limit)
            .filter_map(|e| e.ok().map(|(k, _)| k.value()))
            .collect();
        let mut messages = self.txn.open_table(MESSAGES)?;
        for (at, key) in &old {
            times.remove((*at, *key))?;
            // a newer commit of the same key keeps its entry
            let current = messages.get(*key)?.map(|v| v.value().0);
            if current == Some(*at) {
                messages.remove(*key)?;
            }
        }
        Ok(old.len())
    }
}
