//! The one door into the outbox: every source hands the pipeline what it saw, and the pipeline
//! words it into events, commits them durably and answers with a receipt.
//!
//! * [`Pipeline::submit`] / [`Pipeline::submit_all`] (`fire.rs`) — a unit's [`FireSignal`](crate::FireSignal)s:
//!   registry lookup → liveness → dedup → thresholds → normalize → linkage → commit. They return
//!   only after the events are on disk; a source acknowledges its device (HTTP 2xx, MQTT
//!   PUBACK, GB/T 26875.3 confirm) only when they return `Ok`. Every message from a unit —
//!   heartbeats and repeats included — counts as a sign of life.
//! * [`Pipeline::expire_units`] (`units.rs`) — units silent past their timeout go offline.
//! * [`Pipeline::observe_cameras`] (`camera.rs`) — a camera source's
//!   [`CameraObservation`](crate::camera::CameraObservation)s: the uptime log, the `camera.*`
//!   events, and their retry while the outbox cannot take them.
//! * the video linkage (`evidence.rs`) — snapshots for fire alarms, attached before delivery
//!   or committed as an `event.evidence` follow-up.
//!
//! * the closed loop (`cases.rs`) — every commit opens its cases (dispatch rules, deadlines,
//!   pairs that close themselves); [`Pipeline::act`] applies a person's step with its notices;
//!   [`Pipeline::supervise`] (`supervise.rs`) sends the reminders of late stages.
//!
//! Nothing else writes events to the outbox.

mod camera;
mod cases;
mod evidence;
mod fire;
mod reload;
mod supervise;
mod units;

pub use cases::{ActError, Acted, CasePolicy};
pub use evidence::{EvidenceSource, VideoLinkage};
pub use reload::RegistryChange;
pub use supervise::{CaseMetrics, Supervised, SUPERVISE_BATCH};

use crate::clock::Clock;
use crate::dedup::Dedup;
use crate::linkage::Linkage;
use crate::liveness::Liveness;
use crate::metrics::Metrics;
use crate::outbox::{Outbox, OutboxError};
use crate::quarantine::Quarantine;
use crate::registry::{LiveRegistry, Registry};
use crate::threshold::Thresholds;
use chrono::FixedOffset;
use parking_lot::Mutex;
use std::sync::Arc;
use uuid::Uuid;

/// What a submitted signal became.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Submitted {
    /// Ids of the events committed.
    pub events: Vec<Uuid>,
    /// How many statuses repeated one already delivered (and produced no event).
    pub deduplicated: usize,
}

/// Why a signal was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The unit id is not in the registry.
    #[error("unit `{0}` is not in the registry")]
    UnknownUnit(String),
    /// Back-pressure: the outbox is full.
    #[error("{0}")]
    Full(OutboxError),
    /// Back-pressure: the outbox's disk is nearly full (`[outbox] min_free_mb`).
    #[error("{0}")]
    DiskLow(OutboxError),
    /// The outbox could not commit (disk failure, shutting down).
    #[error("{0}")]
    Unavailable(OutboxError),
}

impl SubmitError {
    /// The `reason` label for `gateway_ingest_rejected_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            SubmitError::UnknownUnit(_) => "unknown_unit",
            SubmitError::Full(_) => "outbox_full",
            SubmitError::DiskLow(_) => "disk_low",
            SubmitError::Unavailable(_) => "unavailable",
        }
    }
}

impl From<OutboxError> for SubmitError {
    fn from(e: OutboxError) -> Self {
        match e {
            OutboxError::Full { .. } => SubmitError::Full(e),
            OutboxError::DiskLow { .. } => SubmitError::DiskLow(e),
            other => SubmitError::Unavailable(other),
        }
    }
}

/// The state the pipeline keeps about units between messages.
pub struct Trackers {
    /// Repeated status reports.
    pub dedup: Dedup,
    /// Online / offline.
    pub liveness: Liveness,
    /// Fire alarm → linkage feedback.
    pub linkage: Linkage,
    /// Analog thresholds with hysteresis.
    pub thresholds: Thresholds,
    /// Unknown units that keep sending, when the quarantine list is enabled.
    pub quarantine: Option<Quarantine>,
}

/// The shared part of every source.
pub struct Pipeline {
    registry: Arc<LiveRegistry>,
    outbox: Outbox,
    dedup: Mutex<Dedup>,
    liveness: Mutex<Liveness>,
    linkage: Mutex<Linkage>,
    thresholds: Mutex<Thresholds>,
    quarantine: Option<Mutex<Quarantine>>,
    clock: Arc<dyn Clock>,
    offset: FixedOffset,
    metrics: Metrics,
    cameras: tokio::sync::Mutex<camera::CameraDoor>,
    video: Option<Arc<evidence::Linker>>,
    cases: CasePolicy,
    case_metrics: CaseMetrics,
}

impl Pipeline {
    /// Assembles a pipeline. `offset` is the time zone events are written in.
    pub fn new(
        registry: Arc<Registry>,
        outbox: Outbox,
        trackers: Trackers,
        clock: Arc<dyn Clock>,
        offset: FixedOffset,
        metrics: Metrics,
    ) -> Self {
        let p = Self {
            registry: Arc::new(LiveRegistry::new(registry)),
            outbox,
            dedup: Mutex::new(trackers.dedup),
            liveness: Mutex::new(trackers.liveness),
            linkage: Mutex::new(trackers.linkage),
            thresholds: Mutex::new(trackers.thresholds),
            quarantine: trackers.quarantine.map(Mutex::new),
            clock,
            offset,
            cameras: Default::default(),
            video: None,
            cases: CasePolicy::default(),
            case_metrics: CaseMetrics::new(&metrics.registry),
            metrics,
        };
        for t in p.registry().townships() {
            p.update_unit_metrics(&t.code);
        }
        p
    }

    /// With fire→video linkage: events of the linkage's kinds get snapshots from their unit's
    /// cameras before they are delivered (see [`VideoLinkage`]).
    pub fn with_video_linkage(mut self, linkage: VideoLinkage) -> Self {
        self.video = Some(Arc::new(evidence::Linker::new(&self, linkage)));
        self
    }

    /// With a case policy: dispatch rules, info kinds that stay open.
    pub fn with_cases(mut self, policy: CasePolicy) -> Self {
        self.cases = policy;
        self
    }

    /// The clock every time the pipeline and its sources use comes from.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The registry now (a reload may replace it; hold the `Arc` for one piece of work).
    pub fn registry(&self) -> Arc<Registry> {
        self.registry.get()
    }

    /// The registry handle a reload replaces (delivery workers read webhooks from it).
    pub fn live_registry(&self) -> &Arc<LiveRegistry> {
        &self.registry
    }

    /// The outbox.
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The time zone events are written in.
    pub fn offset(&self) -> FixedOffset {
        self.offset
    }
}
