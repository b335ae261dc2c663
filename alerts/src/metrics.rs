//! Prometheus metrics of the core and the sources, named as the product spec says.
//!
//! One [`Metrics`] per gateway process, each with its own registry (so tests in one process do
//! not share counters). Labels are bounded: township codes, kinds, sources and reasons — never
//! an event id.

use prometheus::core::Collector;
use prometheus::{
    exponential_buckets, Encoder, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry,
};

/// All metrics of the gateway's core.
#[derive(Clone)]
pub struct Metrics {
    /// The registry `/metrics` renders.
    pub registry: Registry,
    /// `gateway_events_total{kind,township}`: events committed.
    pub events_total: IntCounterVec,
    /// `gateway_events_deduplicated_total{source}`: repeated status reports not re-delivered.
    pub events_deduplicated_total: IntCounterVec,
    /// `gateway_ingest_messages_total{source}`: every message taken in, accepted or not.
    pub ingest_messages_total: IntCounterVec,
    /// `gateway_ingest_rejected_total{source,reason}`.
    pub ingest_rejected_total: IntCounterVec,
    /// `gateway_outbox_pending_events`: committed, not yet delivered (or dead-lettered).
    pub outbox_pending_events: IntGauge,
    /// `gateway_outbox_dead_letters`: events in the dead-letter list.
    pub outbox_dead_letters: IntGauge,
    /// `gateway_outbox_corrupt_rows`: stored state rows that did not decode since the start
    /// (skipped; refreshed when the metrics are rendered).
    pub outbox_corrupt_rows: IntGauge,
    /// `gateway_outbox_commit_seconds`: one write transaction, fsync included.
    pub outbox_commit_seconds: Histogram,
    /// `gateway_outbox_disk_free_bytes`: free space on the outbox's filesystem (for the
    /// gateway's user), checked every second.
    pub outbox_disk_free_bytes: IntGauge,
    /// `gateway_outbox_write_errors_total`: write transactions the disk failed.
    pub outbox_write_errors_total: prometheus::IntCounter,
    /// `gateway_outbox_reopens_total`: times the outbox reopened its file after a disk failure.
    pub outbox_reopens_total: prometheus::IntCounter,
    /// `gateway_outbox_commit_batch_events`: events per group commit.
    pub outbox_commit_batch_events: Histogram,
    /// `gateway_delivery_seconds{township}`: commit → 2xx.
    pub delivery_seconds: HistogramVec,
    /// `gateway_delivery_attempts_total{township,result}`: result is `ok`, `retry` or `dead`.
    pub delivery_attempts_total: IntCounterVec,
    /// `gateway_unit_up{unit,township}`: 1 online, 0 offline.
    pub unit_up: IntGaugeVec,
    /// Cameras per township from every camera source (`gateway_camera_up`,
    /// `gateway_camera_online_ratio`, `gateway_camera_integrity_ratio`).
    pub cameras: crate::camera_tally::CameraTally,
    /// `gateway_unit_online_ratio{township}`: online units / registered units (联网率).
    pub unit_online_ratio: GaugeVec,
    /// `gateway_linkage_feedback_total{result}`: `in_time`, `late`, `missing`.
    pub linkage_feedback_total: IntCounterVec,
    /// `gateway_linkage_video_total{result}`: snapshots for linked fire events, per camera and
    /// event: `attached` (before delivery), `late` (sent as a follow-up), `missed`.
    pub linkage_video_total: IntCounterVec,
    /// `gateway_quarantined_units`: unknown units in the quarantine list.
    pub quarantined_units: IntGauge,
}

impl Metrics {
    /// Creates and registers every metric in a fresh registry.
    pub fn new() -> Self {
        let r = Registry::new();
        // process_cpu_seconds_total, process_resident_memory_bytes, … for operators and benchmarks
        r.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))
        .expect("register");
        let secs = |start, n| exponential_buckets(start, 2.0, n).expect("buckets");
        Self {
            events_total: counters(
                &r,
                "gateway_events_total",
                "Governance events committed",
                &["kind", "township"],
            ),
            events_deduplicated_total: counters(
                &r,
                "gateway_events_deduplicated_total",
                "Repeated identical status reports that were not re-delivered",
                &["source"],
            ),
            ingest_messages_total: counters(
                &r,
                "gateway_ingest_messages_total",
                "Messages taken in from sources, accepted or not",
                &["source"],
            ),
            ingest_rejected_total: counters(
                &r,
                "gateway_ingest_rejected_total",
                "Messages rejected, by reason",
                &["source", "reason"],
            ),
            outbox_pending_events: gauge(
                &r,
                "gateway_outbox_pending_events",
                "Events committed and not yet delivered",
            ),
            outbox_dead_letters: gauge(
                &r,
                "gateway_outbox_dead_letters",
                "Events in the dead-letter list",
            ),
            outbox_corrupt_rows: gauge(
                &r,
                "gateway_outbox_corrupt_rows",
                "Stored event state rows that did not decode since the start (skipped)",
            ),
            outbox_disk_free_bytes: gauge(
                &r,
                "gateway_outbox_disk_free_bytes",
                "Free space on the outbox's filesystem, checked every second",
            ),
            outbox_write_errors_total: register(
                &r,
                prometheus::IntCounter::new(
                    "gateway_outbox_write_errors_total",
                    "Outbox write transactions that failed (disk full, I/O error)",
                ),
            ),
            outbox_reopens_total: register(
                &r,
                prometheus::IntCounter::new(
                    "gateway_outbox_reopens_total",
                    "Times the outbox reopened its file after a disk failure",
                ),
            ),
            outbox_commit_seconds: register(
                &r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "gateway_outbox_commit_seconds",
                        "Duration of one outbox write transaction, fsync included",
                    )
                    .buckets(secs(0.0001, 16)),
                ),
            ),
            outbox_commit_batch_events: register(
                &r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "gateway_outbox_commit_batch_events",
                        "Events committed per write transaction (group commit)",
                    )
                    .buckets(secs(1.0, 14)),
                ),
            ),
            delivery_seconds: register(
                &r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "gateway_delivery_seconds",
                        "Time from durable commit to a 2xx from the township",
                    )
                    .buckets(secs(0.0005, 20)),
                    &["township"],
                ),
            ),
            delivery_attempts_total: counters(
                &r,
                "gateway_delivery_attempts_total",
                "Webhook delivery attempts",
                &["township", "result"],
            ),
            unit_up: register(
                &r,
                IntGaugeVec::new(
                    Opts::new("gateway_unit_up", "1 while a registered unit is online"),
                    &["unit", "township"],
                ),
            ),
            unit_online_ratio: register(
                &r,
                GaugeVec::new(
                    Opts::new(
                        "gateway_unit_online_ratio",
                        "Online units / registered units per township (networking rate)",
                    ),
                    &["township"],
                ),
            ),
            linkage_feedback_total: counters(
                &r,
                "gateway_linkage_feedback_total",
                "Fire alarms by linkage feedback: in_time, late, missing",
                &["result"],
            ),
            linkage_video_total: counters(
                &r,
                "gateway_linkage_video_total",
                "Snapshots for linked fire events, per camera: attached (before delivery), late (sent as a follow-up), missed",
                &["result"],
            ),
            quarantined_units: gauge(
                &r,
                "gateway_quarantined_units",
                "Unknown units in the quarantine list",
            ),
            cameras: crate::camera_tally::CameraTally::new(&r),
            registry: r,
        }
    }

    /// Counts a message taken in from `source`.
    pub fn ingested(&self, source: &str) {
        self.ingest_messages_total
            .with_label_values(&[source])
            .inc();
    }

    /// Counts a rejected message.
    pub fn rejected(&self, source: &str, reason: &str) {
        self.ingest_rejected_total
            .with_label_values(&[source, reason])
            .inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let corrupt = crate::outbox::store::corrupt_rows();
        self.outbox_corrupt_rows
            .set(i64::try_from(corrupt).unwrap_or(i64::MAX));
        let mut buf = Vec::new();
        prometheus::TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding cannot fail");
        String::from_utf8(buf).expect("prometheus text is UTF-8")
    }
}

/// Registers a new metric in `r` and hands it back (names are fixed: a failure is a bug).
pub fn register<M: Collector + Clone + 'static>(r: &Registry, m: prometheus::Result<M>) -> M {
    let m = m.expect("metric");
    r.register(Box::new(m.clone())).expect("register");
    m
}

/// A registered counter family.
pub fn counters(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    register(r, IntCounterVec::new(Opts::new(name, help), labels))
}

/// A registered gauge.
pub fn gauge(r: &Registry, name: &str, help: &str) -> IntGauge {
    register(r, IntGauge::new(name, help))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
