//! The disk under the outbox: free space watched ahead of need, and a failing disk outlived.
//!
//! * **Room**: the free space of the outbox's filesystem is read every second; below
//!   `min_free_bytes` new events are refused ([`super::OutboxError::DiskLow`]) *before* the disk
//!   is full, so what is already committed can still be delivered and marked.
//! * **Failure**: once the disk fails a write (full after all, I/O error), redb refuses every
//!   further write until the file is reopened. The writer keeps its records, answers commits at
//!   once, reopens the file when there is room again, and logs the outage once — not once per
//!   refused write.

use parking_lot::Mutex;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How often a continuing outage is summarised in the log.
const SUMMARY_EVERY: Duration = Duration::from_secs(30);
/// How long writes must go well before an outage counts as over (a disk that is still full
/// may take a small write and refuse the next: that is the same outage, not a new one).
const HEALED_AFTER: Duration = Duration::from_secs(5);

/// Free space on the filesystem holding `dir`, for an unprivileged user.
pub fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    let s = rustix::fs::statvfs(dir)?;
    Ok(s.f_bavail.saturating_mul(s.f_frsize))
}

/// What the outbox knows about its disk; shared by the writer, the commit paths and `/readyz`.
#[derive(Debug)]
pub struct Health {
    min_free_bytes: u64,
    free_bytes: AtomicU64,
    low: AtomicBool,
    failing: AtomicBool,
    outage: Mutex<Option<Outage>>,
    unreadable: AtomicBool,
}

/// A disk failure that has not healed yet.
#[derive(Debug, Clone)]
struct Outage {
    reason: String,
    since: Instant,
    failed: u64,
    summarised: Instant,
    /// Since when writes go well again.
    healed: Option<Instant>,
}

impl Health {
    /// Nothing known yet; `min_free_bytes` 0 never refuses for room.
    pub fn new(min_free_bytes: u64) -> Self {
        Self {
            min_free_bytes,
            free_bytes: AtomicU64::new(u64::MAX),
            low: AtomicBool::new(false),
            failing: AtomicBool::new(false),
            outage: Mutex::new(None),
            unreadable: AtomicBool::new(false),
        }
    }

    /// Reads the free space of `dir`'s filesystem; returns it (`None` when it cannot be read:
    /// then room is not refused).
    pub fn check(&self, dir: &Path) -> Option<u64> {
        match free_bytes(dir) {
            Ok(free) => {
                self.free_bytes.store(free, Ordering::Relaxed);
                let low = free < self.min_free_bytes;
                if self.low.swap(low, Ordering::Relaxed) != low {
                    if low {
                        tracing::error!(
                            free_mb = free >> 20,
                            min_free_mb = self.min_free_bytes >> 20,
                            dir = %dir.display(),
                            "outbox disk nearly full: new events are refused (503) until there is room"
                        );
                    } else {
                        tracing::info!(
                            free_mb = free >> 20,
                            "outbox disk has room again: events are accepted"
                        );
                    }
                }
                Some(free)
            }
            Err(e) => {
                if !self.unreadable.swap(true, Ordering::Relaxed) {
                    tracing::warn!(error = %e, dir = %dir.display(), "cannot read the outbox disk's free space");
                }
                None
            }
        }
    }

    /// Whether new events are refused for room.
    pub fn is_low(&self) -> bool {
        self.low.load(Ordering::Relaxed)
    }

    /// Free space at the last check (`u64::MAX` before the first).
    pub fn free_bytes(&self) -> u64 {
        self.free_bytes.load(Ordering::Relaxed)
    }

    /// The configured minimum.
    pub fn min_free_bytes(&self) -> u64 {
        self.min_free_bytes
    }

    /// Whether the disk failed a write and the file has not been reopened since.
    pub fn is_failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }

    /// Why the disk failed, while the outage lasts.
    pub fn failure(&self) -> Option<String> {
        self.outage.lock().as_ref().map(|o| o.reason.clone())
    }

    /// Notes a failed write transaction of `ops` operations; logs the first of an outage at
    /// ERROR and then a summary at most every 30 s. `broken`: the file must be reopened.
    pub fn write_failed(&self, error: &str, ops: usize, broken: bool) {
        let now = Instant::now();
        let mut outage = self.outage.lock();
        match outage.as_mut() {
            None => {
                tracing::error!(
                    error,
                    ops,
                    "outbox write failed; new events are refused (503) until the disk heals"
                );
                *outage = Some(Outage {
                    reason: error.to_string(),
                    since: now,
                    failed: 1,
                    summarised: now,
                    healed: None,
                });
            }
            Some(o) => {
                o.failed += 1;
                o.healed = None;
                if now.duration_since(o.summarised) >= SUMMARY_EVERY {
                    o.summarised = now;
                    tracing::warn!(
                        failed = o.failed,
                        since_s = now.duration_since(o.since).as_secs(),
                        error = %o.reason,
                        "outbox writes still failing"
                    );
                }
            }
        }
        if broken {
            self.failing.store(true, Ordering::Relaxed);
        }
    }

    /// Notes a write that succeeded: an outage, if any, is over once writes have gone well
    /// for [`HEALED_AFTER`] (then logged once).
    pub fn write_ok(&self) {
        let mut outage = self.outage.lock();
        let Some(o) = outage.as_mut() else {
            return;
        };
        self.failing.store(false, Ordering::Relaxed);
        let healed = *o.healed.get_or_insert_with(Instant::now);
        if healed.elapsed() < HEALED_AFTER {
            return;
        }
        tracing::info!(
            outage_s = healed.duration_since(o.since).as_secs_f64(),
            failed = o.failed,
            "outbox writes again"
        );
        *outage = None;
    }

    /// The file was reopened: writes may be tried again.
    pub fn reopened(&self) {
        self.failing.store(false, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_is_refused_below_the_minimum_and_given_back_above_it() {
        let dir = tempfile::tempdir().unwrap();
        let free = free_bytes(dir.path()).unwrap();
        assert!(free > 0);
        let roomy = Health::new(0);
        assert_eq!(roomy.check(dir.path()), Some(roomy.free_bytes()));
        assert!(!roomy.is_low());
        let tight = Health::new(u64::MAX);
        tight.check(dir.path());
        assert!(tight.is_low(), "less free than u64::MAX");
        let missing = Health::new(u64::MAX);
        assert_eq!(missing.check(&dir.path().join("nope")), None);
        assert!(!missing.is_low(), "unknown room is not refused");
    }

    #[test]
    fn an_outage_is_failing_until_reopened_and_over_once_writes_go_well_for_a_while() {
        let h = Health::new(0);
        h.write_failed("No space left on device", 3, true);
        h.write_failed("Previous I/O error occurred", 1, true);
        assert!(h.is_failing());
        assert_eq!(h.failure().as_deref(), Some("No space left on device"));
        h.reopened();
        assert!(!h.is_failing());
        h.write_ok();
        assert!(!h.is_failing());
        assert!(
            h.failure().is_some(),
            "over only after writes went well for a while"
        );
        h.write_failed("No space left on device", 1, true);
        assert!(h.is_failing(), "the same outage goes on");
        h.outage.lock().as_mut().unwrap().healed =
            Some(Instant::now() - HEALED_AFTER - Duration::from_millis(1));
        h.write_ok();
        assert_eq!(h.failure(), None, "over");
        h.write_failed("value too large", 1, false);
        assert!(
            !h.is_failing(),
            "a refused operation does not break the file"
        );
    }
}
