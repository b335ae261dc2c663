//! The pipeline sources submit to: registry lookup → dedup → normalize → durable commit.
//!
//! [`Pipeline::submit`] returns only after the events are on disk; a source acknowledges its
//! device (HTTP 2xx, MQTT PUBACK, GB/T 26875.3 confirm) only when it returns `Ok`.

use crate::clock::Clock;
use crate::dedup::{Dedup, Verdict};
use crate::metrics::Metrics;
use crate::normalize::{normalize, Context};
use crate::outbox::{Outbox, OutboxError};
use crate::registry::Registry;
use crate::signal::{FireSignal, SignalBody};
use chrono::FixedOffset;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// What a submitted signal became.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Submitted {
    /// Ids of the events committed.
    pub events: Vec<Uuid>,
    /// 1 when the signal repeated a status already delivered (and produced no event).
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
            SubmitError::Unavailable(_) => "unavailable",
        }
    }
}

impl From<OutboxError> for SubmitError {
    fn from(e: OutboxError) -> Self {
        match e {
            OutboxError::Full { .. } => SubmitError::Full(e),
            other => SubmitError::Unavailable(other),
        }
    }
}

/// The shared part of every source.
pub struct Pipeline {
    registry: Arc<Registry>,
    outbox: Outbox,
    dedup: Mutex<Dedup>,
    clock: Arc<dyn Clock>,
    offset: FixedOffset,
    metrics: Metrics,
}

impl Pipeline {
    /// Assembles a pipeline. `offset` is the time zone events are written in.
    pub fn new(
        registry: Arc<Registry>,
        outbox: Outbox,
        dedup: Dedup,
        clock: Arc<dyn Clock>,
        offset: FixedOffset,
        metrics: Metrics,
    ) -> Self {
        Self {
            registry,
            outbox,
            dedup: Mutex::new(dedup),
            clock,
            offset,
            metrics,
        }
    }

    /// Normalizes a signal and commits its events durably.
    pub async fn submit(&self, signal: FireSignal) -> Result<Submitted, SubmitError> {
        let unit = self
            .registry
            .unit(&signal.unit_id)
            .ok_or_else(|| SubmitError::UnknownUnit(signal.unit_id.clone()))?;
        let township = self
            .registry
            .township(&unit.township)
            .expect("the config loader checks every unit's township");
        let now = self.clock.now();
        let status = match &signal.body {
            SignalBody::Status(r) => Some((r.location, r.flags)),
            _ => None,
        };
        if let Some((location, flags)) = status {
            let verdict = self
                .dedup
                .lock()
                .expect("dedup lock")
                .check(&unit.id, location, flags, now);
            if verdict == Verdict::Duplicate {
                self.metrics
                    .events_deduplicated_total
                    .with_label_values(&[signal.protocol.as_str()])
                    .inc();
                return Ok(Submitted {
                    events: Vec::new(),
                    deduplicated: 1,
                });
            }
        }
        let ctx = Context {
            unit,
            township,
            received_at: now.with_timezone(&self.offset),
        };
        let events = normalize(&signal, &ctx, &mut Uuid::now_v7);
        let receipt = self
            .outbox
            .commit(&events, township.webhook.is_some())
            .await?;
        if let Some((location, flags)) = status {
            self.dedup
                .lock()
                .expect("dedup lock")
                .record(&unit.id, location, flags, now);
        }
        Ok(Submitted {
            events: receipt.committed.iter().map(|c| c.id).collect(),
            deduplicated: 0,
        })
    }

    /// The registry.
    pub fn registry(&self) -> &Arc<Registry> {
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
