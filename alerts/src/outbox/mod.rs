//! The durable outbox: the only source of truth for events.
//!
//! Sources call [`Outbox::commit`] and answer their device only when it returns: by then the
//! events are on disk (fsync). A single writer thread owns every write transaction and **groups**
//! whatever requests are waiting into one transaction — so many concurrent sources share one
//! fsync, and throughput grows with load instead of collapsing under it.
//!
//! After each commit the writer wakes the delivery worker of every township that received events
//! and publishes the events to live subscribers (the SSE stream).

mod disk;
pub mod store;

pub use disk::Health;

use bytes::Bytes;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc, oneshot, Notify};

use crate::case::Applied;
use crate::event::Event;
use crate::metrics::Metrics;
pub use store::{
    CameraLog, CameraMark, Committed, DeliveryStatus, EventState, ListQuery, MessageKey, NewEvent,
    Op, Outcome, Page, PatrolRecord, PendingItem, Resolve, Stats, Store, StoreError, Stored,
};

/// How the outbox behaves.
#[derive(Debug, Clone)]
pub struct OutboxConfig {
    /// At most this many events waiting for delivery; beyond it, commits are refused
    /// ([`OutboxError::Full`]) and sources push back on their devices.
    pub max_pending: u64,
    /// Group concurrent commits into one transaction (on by default; off measures the
    /// one-fsync-per-commit baseline).
    pub group_commit: bool,
    /// At most this many operations per transaction.
    pub max_batch: usize,
    /// Page cache of the database, in bytes.
    pub cache_bytes: usize,
    /// Below this much free space on the outbox's filesystem new events are refused
    /// ([`OutboxError::DiskLow`]); 0 never refuses.
    pub min_free_bytes: u64,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self {
            max_pending: 2_000_000,
            group_commit: true,
            max_batch: 4096,
            cache_bytes: store::DEFAULT_CACHE_BYTES,
            min_free_bytes: 256 << 20,
        }
    }
}

/// Why a commit failed.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// The outbox is full: back-pressure, retry later.
    #[error("outbox full: {pending} events waiting for delivery (limit {max})")]
    Full {
        /// Pending now.
        pending: u64,
        /// The limit.
        max: u64,
    },
    /// The disk is nearly full: back-pressure, retry later.
    #[error("outbox disk nearly full: {free_mb} MB free (minimum {min_mb} MB)")]
    DiskLow {
        /// Free now, MB.
        free_mb: u64,
        /// `min_free_mb`.
        min_mb: u64,
    },
    /// The disk failed a write and the outbox has not healed yet.
    #[error("outbox disk failing: {0}")]
    Failing(String),
    /// The disk failed.
    #[error(transparent)]
    Store(#[from] Arc<StoreError>),
    /// The writer is gone (shutting down).
    #[error("outbox is shutting down")]
    Closed,
}

/// A durable commit's receipt: the events are on disk.
#[derive(Debug, Clone)]
pub struct Receipt {
    /// The events committed, in commit order.
    pub committed: Vec<Committed>,
    /// For a redelivered message: nothing was committed; the ids of its first commit.
    pub repeated: Option<Vec<uuid::Uuid>>,
}

/// A committed event, as published to live subscribers.
#[derive(Debug, Clone)]
pub struct LiveEvent {
    /// Event id.
    pub id: uuid::Uuid,
    /// Township code.
    pub township: String,
    /// Its delivery queue when not the township's (`dept:<code>`, `city`).
    pub route: Option<String>,
    /// Kind.
    pub kind: String,
    /// The event's JSON.
    pub body: Bytes,
}

struct Request {
    op: Op,
    reply: Option<oneshot::Sender<Result<Outcome, OutboxError>>>,
}

struct Shared {
    store: Arc<Store>,
    pending: AtomicU64,
    dead: AtomicU64,
    wake: HashMap<String, Arc<Notify>>,
    live: broadcast::Sender<Arc<LiveEvent>>,
    metrics: Metrics,
    config: OutboxConfig,
    health: Health,
}

/// A handle on the outbox; cheap to clone.
#[derive(Clone)]
pub struct Outbox {
    shared: Arc<Shared>,
    tx: mpsc::Sender<Request>,
}

impl Outbox {
    /// Opens the outbox file and starts its writer thread. `townships` are the codes whose
    /// delivery workers are woken after commits.
    pub fn open(
        path: &Path,
        townships: impl IntoIterator<Item = String>,
        config: OutboxConfig,
        metrics: Metrics,
    ) -> Result<Self, StoreError> {
        let store = Arc::new(Store::open_with_cache(path, config.cache_bytes)?);
        let stats = store.stats()?;
        metrics.outbox_pending_events.set(stats.pending as i64);
        metrics.outbox_dead_letters.set(stats.dead_letters as i64);
        let shared = Arc::new(Shared {
            store,
            pending: AtomicU64::new(stats.pending),
            dead: AtomicU64::new(stats.dead_letters),
            wake: townships
                .into_iter()
                .map(|t| (t, Arc::new(Notify::new())))
                .collect(),
            live: broadcast::channel(4096).0,
            health: Health::new(config.min_free_bytes),
            metrics,
            config,
        });
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        check_space(&shared, &dir);
        let (tx, rx) = mpsc::channel(65_536);
        let writer = shared.clone();
        std::thread::Builder::new()
            .name("outbox-writer".into())
            .spawn(move || writer_loop(writer, rx))
            .expect("spawn outbox writer");
        let flusher = tx.downgrade();
        let watcher = shared.clone();
        std::thread::Builder::new()
            .name("outbox-flush".into())
            .spawn(move || flush_loop(flusher, watcher, dir))
            .expect("spawn outbox flusher");
        Ok(Self { shared, tx })
    }

    /// Commits events durably; returns when they are on disk. `deliver`: whether they go to
    /// their township's webhook (a township without one reads them through the API).
    pub async fn commit(&self, events: &[Event], deliver: bool) -> Result<Receipt, OutboxError> {
        self.commit_routed(events.iter().map(|e| (e, deliver)))
            .await
    }

    /// Commits events of several townships durably, each with its own `deliver`.
    pub async fn commit_routed<'e>(
        &self,
        events: impl ExactSizeIterator<Item = (&'e Event, bool)> + Clone,
    ) -> Result<Receipt, OutboxError> {
        if events.len() == 0 {
            return Ok(Receipt {
                committed: Vec::new(),
                repeated: None,
            });
        }
        let delivered = events.clone().filter(|(_, d)| *d).count() as u64;
        self.check_room(delivered)?;
        self.check_disk()?;
        self.commit_new(
            events
                .map(|(e, deliver)| NewEvent::of(e, deliver))
                .collect(),
        )
        .await
    }

    /// Commits prepared events (their cases and routes decided by the pipeline) durably.
    pub async fn commit_new(&self, new: Vec<NewEvent>) -> Result<Receipt, OutboxError> {
        self.check_disk()?;
        self.receipt(self.request(Op::Commit(new)).await?)
    }

    /// Commits a message's events durably unless the message was committed within its window
    /// (a redelivery): then the receipt's `repeated` holds the ids of the first commit.
    pub async fn commit_message(
        &self,
        key: MessageKey,
        own: Vec<uuid::Uuid>,
        new: Vec<NewEvent>,
    ) -> Result<Receipt, OutboxError> {
        self.check_disk()?;
        let op = Op::CommitMessage {
            key,
            own,
            events: new,
        };
        self.receipt(self.request(op).await?)
    }

    fn receipt(&self, outcome: Outcome) -> Result<Receipt, OutboxError> {
        match outcome {
            Outcome::Committed(committed) => Ok(Receipt {
                committed,
                repeated: None,
            }),
            Outcome::Repeated(ids) => Ok(Receipt {
                committed: Vec::new(),
                repeated: Some(ids),
            }),
            Outcome::Full { pending, max } => Err(OutboxError::Full { pending, max }),
            other => unreachable!("commit answered {other:?}"),
        }
    }

    /// Fails fast with [`OutboxError::Full`] when `adding` more pending deliveries would not
    /// fit (the writer checks again inside the transaction).
    pub fn check_room(&self, adding: u64) -> Result<(), OutboxError> {
        let pending = self.shared.pending.load(Ordering::Relaxed);
        let max = self.shared.config.max_pending;
        if adding > 0 && pending + adding > max {
            return Err(OutboxError::Full { pending, max });
        }
        Ok(())
    }

    /// Fails fast when new events cannot be taken for the disk's sake: nearly full
    /// ([`OutboxError::DiskLow`]) or failing ([`OutboxError::Failing`]).
    pub fn check_disk(&self) -> Result<(), OutboxError> {
        let health = &self.shared.health;
        if health.is_low() {
            return Err(OutboxError::DiskLow {
                free_mb: health.free_bytes() >> 20,
                min_mb: health.min_free_bytes() >> 20,
            });
        }
        if health.is_failing() {
            return Err(OutboxError::Failing(health.failure().unwrap_or_default()));
        }
        Ok(())
    }

    /// The outbox disk's state (for `/readyz`).
    pub fn health(&self) -> &Health {
        &self.shared.health
    }

    /// Applies one operation durably and returns its outcome.
    pub async fn request(&self, op: Op) -> Result<Outcome, OutboxError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request {
                op,
                reply: Some(reply),
            })
            .await
            .map_err(|_| OutboxError::Closed)?;
        rx.await.map_err(|_| OutboxError::Closed)?
    }

    /// Queues an operation without waiting for it (delivery marks: losing one in a crash only
    /// means one more delivery with the same `Idempotency-Key`).
    pub async fn record(&self, op: Op) {
        let _ = self.tx.send(Request { op, reply: None }).await;
    }

    /// Queues an operation without waiting, from synchronous code; dropped (and logged) when
    /// the writer's queue is full.
    pub fn record_now(&self, op: Op) {
        if self.tx.try_send(Request { op, reply: None }).is_err() {
            tracing::warn!("outbox queue full: a record was dropped");
        }
    }

    /// Makes every change so far durable (delivery marks included); for a clean shutdown.
    pub async fn flush(&self) -> Result<(), OutboxError> {
        self.request(Op::Flush).await.map(|_| ())
    }

    /// The store, for reads (reads never block the writer).
    pub fn store(&self) -> &Arc<Store> {
        &self.shared.store
    }

    /// The notifier a township's delivery worker waits on.
    pub fn waker(&self, township: &str) -> Option<Arc<Notify>> {
        self.shared.wake.get(township).cloned()
    }

    /// Subscribes to events as they are committed.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LiveEvent>> {
        self.shared.live.subscribe()
    }

    /// Whether the writer thread is running (commits are possible).
    pub fn is_alive(&self) -> bool {
        !self.tx.is_closed()
    }

    /// Events waiting for delivery.
    pub fn pending(&self) -> u64 {
        self.shared.pending.load(Ordering::Relaxed)
    }

    /// Whether commits that deliver would be refused now.
    pub fn is_full(&self) -> bool {
        self.pending() >= self.shared.config.max_pending
    }

    /// The configuration.
    pub fn config(&self) -> &OutboxConfig {
        &self.shared.config
    }
}

/// How often the flusher ticks: deferred delivery marks are applied at least this often.
const FLUSH_EVERY: Duration = Duration::from_millis(200);
/// How often the free space of the outbox's disk is read.
const SPACE_EVERY: Duration = Duration::from_secs(1);
/// How often, at most, a failed disk is tried again (the file reopened).
const REOPEN_EVERY: Duration = Duration::from_secs(1);

/// How often the file is reopened while the disk is still below `min_free_mb`: opening needs
/// little room, and an open file lets deliveries go on (their records kept in memory) instead
/// of waiting for an operator to free space.
const REOPEN_WHILE_LOW_EVERY: Duration = Duration::from_secs(5);
/// Records (delivery marks) kept across a disk failure, at most; beyond, the oldest are dropped
/// and counted (their events are delivered once more after a restart, with the same ids).
const KEEP_MAX: usize = 100_000;
/// Non-durable changes reach the disk at least this often.
const DURABLE_EVERY: Duration = Duration::from_secs(1);
/// How long a group commit waits, at most, for commits that are on their way.
const COMMIT_DELAY: Duration = Duration::from_micros(800);
/// Deferred delivery marks are applied once this many are waiting.
const DEFER_MAX: usize = 4096;

/// The flusher thread: a flush tick for the writer every [`FLUSH_EVERY`], the disk's free space
/// every [`SPACE_EVERY`].
fn flush_loop(flusher: mpsc::WeakSender<Request>, shared: Arc<Shared>, dir: std::path::PathBuf) {
    let mut last_check = Instant::now();
    loop {
        std::thread::sleep(FLUSH_EVERY);
        if last_check.elapsed() >= SPACE_EVERY {
            last_check = Instant::now();
            check_space(&shared, &dir);
        }
        let Some(tx) = flusher.upgrade() else { return };
        let tick = Request {
            op: Op::Flush,
            reply: None,
        };
        if tx.blocking_send(tick).is_err() {
            return;
        }
    }
}

fn check_space(shared: &Shared, dir: &Path) {
    if let Some(free) = shared.health.check(dir) {
        let free = i64::try_from(free).unwrap_or(i64::MAX);
        shared.metrics.outbox_disk_free_bytes.set(free);
    }
}

/// The writer thread: owns every write transaction.
///
/// Batches whatever requests are waiting into one transaction. A batch that needs durability
/// (commits, sign-offs, replays, purges) is fsynced; delivery marks are *deferred* and ride along
/// with the next durable transaction, so they cost no transaction of their own under load. When
/// no durable transaction comes, the flusher's tick applies them without fsync (readers see them
/// at once) and makes them durable within [`DURABLE_EVERY`].
fn writer_loop(shared: Arc<Shared>, mut rx: mpsc::Receiver<Request>) {
    let max_batch = if shared.config.group_commit {
        shared.config.max_batch.max(1)
    } else {
        1
    };
    let mut batch: Vec<Request> = Vec::with_capacity(max_batch);
    let mut deferred: Vec<Request> = Vec::new();
    // non-durable transactions not yet followed by a durable one
    let mut dirty = false;
    let mut last_durable = Instant::now();
    // commits in the last durable batch: when fewer are waiting, the rest are usually on their
    // way (their sources are just answering the previous batch), so wait for them once
    let mut last_commits = 0usize;
    let mut last_reopen: Option<Instant> = None;
    // records dropped beyond KEEP_MAX while the disk failed
    let mut kept_over = 0u64;
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        drain(&mut rx, &mut batch, max_batch);
        let commits = batch
            .iter()
            .filter(|r| matches!(r.op, Op::Commit(_) | Op::CommitMessage { .. }))
            .count();
        if max_batch > 1 && commits > 0 && commits < last_commits {
            std::thread::sleep(COMMIT_DELAY);
            drain(&mut rx, &mut batch, max_batch);
        }
        let (flushes, rest): (Vec<Request>, Vec<Request>) =
            batch.drain(..).partition(|r| matches!(r.op, Op::Flush));
        batch = rest;
        let tick = !flushes.is_empty();
        // an explicit flush (one that waits for its answer) makes everything durable now
        let forced = flushes.iter().any(|r| r.reply.is_some());
        let durable = if forced || batch.iter().any(|r| r.op.needs_durability()) {
            true
        } else {
            deferred.append(&mut batch);
            if !tick && deferred.len() < DEFER_MAX {
                continue;
            }
            let durable_due =
                (dirty || !deferred.is_empty()) && last_durable.elapsed() >= DURABLE_EVERY;
            if deferred.is_empty() && !durable_due {
                continue;
            }
            durable_due
        };
        if !deferred.is_empty() {
            deferred.append(&mut batch);
            std::mem::swap(&mut deferred, &mut batch);
        }
        if shared.health.is_failing() && !try_reopen(&shared, &mut last_reopen) {
            // the disk has not healed: answer at once, keep the records for later
            let reason = shared.health.failure().unwrap_or_default();
            let refused = Refused {
                error: &|| OutboxError::Failing(reason.clone()),
                keep_records: true,
            };
            refused.answer(flushes, &mut batch, &mut deferred, &mut kept_over);
            continue;
        }
        let ops: Vec<Op> = if batch.is_empty() {
            vec![Op::Flush]
        } else {
            batch.iter().map(|r| r.op.clone()).collect()
        };
        let started = Instant::now();
        let result = shared
            .store
            .apply_with(&ops, shared.config.max_pending, durable);
        if durable {
            last_durable = Instant::now();
            last_commits = batch
                .iter()
                .filter(|r| matches!(r.op, Op::Commit(_) | Op::CommitMessage { .. }))
                .count();
            shared
                .metrics
                .outbox_commit_seconds
                .observe(started.elapsed().as_secs_f64());
        }
        match result {
            Ok(outcomes) => {
                shared.health.write_ok();
                for f in flushes {
                    if let Some(reply) = f.reply {
                        let _ = reply.send(Ok(Outcome::Done));
                    }
                }
                dirty = !durable;
                if batch.is_empty() {
                    continue;
                }
                after_commit(&shared, &mut batch, outcomes)
            }
            Err(e) => {
                shared.metrics.outbox_write_errors_total.inc();
                shared
                    .health
                    .write_failed(&e.to_string(), ops.len(), e.is_io());
                // a failed disk keeps the records for after the reopen; a refused operation
                // (a bad row) would only fail again
                let keep_records = e.is_io();
                let e = Arc::new(e);
                let refused = Refused {
                    error: &|| OutboxError::Store(e.clone()),
                    keep_records,
                };
                refused.answer(flushes, &mut batch, &mut deferred, &mut kept_over);
            }
        }
    }
    if !deferred.is_empty() {
        let ops: Vec<Op> = deferred.iter().map(|r| r.op.clone()).collect();
        if shared.store.apply(&ops, shared.config.max_pending).is_ok() {
            dirty = false;
        }
    }
    if dirty {
        if let Err(e) = shared.store.apply(&[Op::Flush], shared.config.max_pending) {
            tracing::error!(error = %e, "final outbox flush failed");
        }
    }
    tracing::debug!("outbox writer stopped");
}

/// How a batch the disk did not take is answered.
struct Refused<'a> {
    error: &'a dyn Fn() -> OutboxError,
    keep_records: bool,
}

impl Refused<'_> {
    /// Every waiting request gets the error; records (no one waits for them) are kept for the
    /// next write when `keep_records`, at most [`KEEP_MAX`] of them (the oldest beyond are
    /// dropped, counted in `dropped` and logged).
    fn answer(
        &self,
        flushes: Vec<Request>,
        batch: &mut Vec<Request>,
        deferred: &mut Vec<Request>,
        dropped: &mut u64,
    ) {
        for r in flushes.into_iter().chain(batch.drain(..)) {
            match r.reply {
                Some(reply) => {
                    let _ = reply.send(Err((self.error)()));
                }
                None if self.keep_records && !matches!(r.op, Op::Flush) => deferred.push(r),
                None => {}
            }
        }
        if deferred.len() > KEEP_MAX {
            let over = deferred.len() - KEEP_MAX;
            deferred.drain(..over);
            if *dropped == 0 {
                tracing::warn!(
                    kept = KEEP_MAX,
                    "outbox disk failing for long: the oldest delivery records are dropped (their events will be delivered again, with the same ids)"
                );
            }
            *dropped += over as u64;
        }
    }
}

/// Reopens the outbox file after a disk failure — at most every [`REOPEN_EVERY`], or every
/// [`REOPEN_WHILE_LOW_EVERY`] while the disk is still short of room. Whether writes may be
/// tried.
fn try_reopen(shared: &Shared, last: &mut Option<Instant>) -> bool {
    if !reopen_due(last.map(|t| t.elapsed()), shared.health.is_low()) {
        return false;
    }
    *last = Some(Instant::now());
    match shared.store.reopen() {
        Ok(()) => {
            shared.metrics.outbox_reopens_total.inc();
            shared.health.reopened();
            tracing::info!("outbox file reopened after the disk failure");
            true
        }
        Err(e) => {
            tracing::debug!(error = %e, "outbox file not reopened yet");
            false
        }
    }
}

/// Whether a reopen is due, `since` the last attempt: every second, or every five while the
/// disk is short of room — never "not until there is room", which would leave every queue
/// unread until an operator frees space.
fn reopen_due(since: Option<Duration>, low: bool) -> bool {
    let every = if low {
        REOPEN_WHILE_LOW_EVERY
    } else {
        REOPEN_EVERY
    };
    since.is_none_or(|s| s >= every)
}

fn drain(rx: &mut mpsc::Receiver<Request>, batch: &mut Vec<Request>, max_batch: usize) {
    while batch.len() < max_batch {
        match rx.try_recv() {
            Ok(r) => batch.push(r),
            Err(_) => break,
        }
    }
}

/// Counts a committed event, notes its queue for waking, and shows it to live subscribers.
fn published<'e>(shared: &Shared, e: &'e NewEvent, woken: &mut Vec<&'e str>) {
    shared
        .metrics
        .events_total
        .with_label_values(&[e.kind.as_str(), e.township.as_str()])
        .inc();
    let queue = e.route.as_deref().unwrap_or(&e.township);
    if e.deliver && !woken.contains(&queue) {
        woken.push(queue);
    }
    if shared.live.receiver_count() == 0 {
        return;
    }
    let _ = shared.live.send(Arc::new(LiveEvent {
        id: e.id,
        township: e.township.clone(),
        route: e.route.clone(),
        kind: e.kind.clone(),
        body: e.body.clone(),
    }));
}

fn after_commit(shared: &Shared, batch: &mut Vec<Request>, outcomes: Vec<Outcome>) {
    let mut woken: Vec<&str> = Vec::new();
    let mut events_committed = 0usize;
    let mut pending_delta: i64 = 0;
    let mut dead_delta: i64 = 0;
    for (req, outcome) in batch.iter().zip(&outcomes) {
        match (&req.op, outcome) {
            (Op::Commit(events), Outcome::Committed(_))
            | (Op::CommitMessage { events, .. }, Outcome::Committed(_))
            | (
                Op::Act {
                    notices: events, ..
                },
                Outcome::Acted(Applied::Changed),
            )
            | (
                Op::Remind {
                    notices: events, ..
                },
                Outcome::Done,
            ) => {
                for e in events {
                    events_committed += 1;
                    pending_delta += i64::from(e.deliver);
                    published(shared, e, &mut woken);
                }
            }
            (Op::Delivered { .. }, Outcome::Done) => pending_delta -= 1,
            (Op::Dead { .. }, Outcome::Done) => {
                pending_delta -= 1;
                dead_delta += 1;
            }
            (Op::Replay { .. }, Outcome::Replayed(townships)) => {
                pending_delta += townships.len() as i64;
                dead_delta -= townships.len() as i64;
                for t in townships {
                    if let Some(n) = shared.wake.get(t) {
                        n.notify_one();
                    }
                }
            }
            _ => {}
        }
    }
    for t in woken {
        if let Some(n) = shared.wake.get(t) {
            n.notify_one();
        }
    }
    let pending = add_signed(&shared.pending, pending_delta);
    let dead = add_signed(&shared.dead, dead_delta);
    shared.metrics.outbox_pending_events.set(pending as i64);
    shared.metrics.outbox_dead_letters.set(dead as i64);
    if events_committed > 0 {
        shared
            .metrics
            .outbox_commit_batch_events
            .observe(events_committed as f64);
    }
    for (req, outcome) in batch.drain(..).zip(outcomes) {
        if let Some(reply) = req.reply {
            let _ = reply.send(Ok(outcome));
        }
    }
}

fn add_signed(counter: &AtomicU64, delta: i64) -> u64 {
    if delta >= 0 {
        counter.fetch_add(delta as u64, Ordering::Relaxed) + delta as u64
    } else {
        let d = delta.unsigned_abs();
        let prev = counter
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(v.saturating_sub(d))
            })
            .expect("update closure never fails");
        prev.saturating_sub(d)
    }
}

#[cfg(test)]
mod reopen_tests {
    use super::*;

    #[test]
    fn a_failed_file_is_reopened_even_while_the_disk_is_short_of_room() {
        let s = Duration::from_secs;
        assert!(reopen_due(None, false) && reopen_due(None, true));
        assert!(reopen_due(Some(s(1)), false));
        assert!(!reopen_due(Some(s(1)), true), "slower while low");
        assert!(reopen_due(Some(s(5)), true), "but not never");
    }
}
