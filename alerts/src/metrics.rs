//! Prometheus metrics of the core and the sources, named as the product spec says.
//!
//! One [`Metrics`] per gateway process, each with its own registry (so tests in one process do
//! not share counters). Labels are bounded: township codes, kinds, sources and reasons — never
//! an event id.

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
    /// `gateway_outbox_commit_batch_events`: events per group commit.
    pub outbox_commit_batch_events: Histogram,
    /// `gateway_delivery_seconds{township}`: commit → 2xx.
    pub delivery_seconds: HistogramVec,
    /// `gateway_delivery_attempts_total{township,result}`: result is `ok`, `retry` or `dead`.
    pub delivery_attempts_total: IntCounterVec,
    /// `gateway_unit_up{unit,township}`: 1 online, 0 offline.
    pub unit_up: IntGaugeVec,
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
        let registry = Registry::new();
        let m = Self {
            events_total: IntCounterVec::new(
                Opts::new("gateway_events_total", "Governance events committed"),
                &["kind", "township"],
            )
            .expect("metric"),
            events_deduplicated_total: IntCounterVec::new(
                Opts::new(
                    "gateway_events_deduplicated_total",
                    "Repeated identical status reports that were not re-delivered",
                ),
                &["source"],
            )
            .expect("metric"),
            ingest_messages_total: IntCounterVec::new(
                Opts::new(
                    "gateway_ingest_messages_total",
                    "Messages taken in from sources, accepted or not",
                ),
                &["source"],
            )
            .expect("metric"),
            ingest_rejected_total: IntCounterVec::new(
                Opts::new(
                    "gateway_ingest_rejected_total",
                    "Messages rejected, by reason",
                ),
                &["source", "reason"],
            )
            .expect("metric"),
            outbox_pending_events: IntGauge::new(
                "gateway_outbox_pending_events",
                "Events committed and not yet delivered",
            )
            .expect("metric"),
            outbox_dead_letters: IntGauge::new(
                "gateway_outbox_dead_letters",
                "Events in the dead-letter list",
            )
            .expect("metric"),
            outbox_commit_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "gateway_outbox_commit_seconds",
                    "Duration of one outbox write transaction, fsync included",
                )
                .buckets(exponential_buckets(0.0001, 2.0, 16).expect("buckets")),
            )
            .expect("metric"),
            outbox_commit_batch_events: Histogram::with_opts(
                HistogramOpts::new(
                    "gateway_outbox_commit_batch_events",
                    "Events committed per write transaction (group commit)",
                )
                .buckets(exponential_buckets(1.0, 2.0, 14).expect("buckets")),
            )
            .expect("metric"),
            delivery_seconds: HistogramVec::new(
                HistogramOpts::new(
                    "gateway_delivery_seconds",
                    "Time from durable commit to a 2xx from the township",
                )
                .buckets(exponential_buckets(0.0005, 2.0, 20).expect("buckets")),
                &["township"],
            )
            .expect("metric"),
            delivery_attempts_total: IntCounterVec::new(
                Opts::new(
                    "gateway_delivery_attempts_total",
                    "Webhook delivery attempts",
                ),
                &["township", "result"],
            )
            .expect("metric"),
            unit_up: IntGaugeVec::new(
                Opts::new("gateway_unit_up", "1 while a registered unit is online"),
                &["unit", "township"],
            )
            .expect("metric"),
            unit_online_ratio: GaugeVec::new(
                Opts::new(
                    "gateway_unit_online_ratio",
                    "Online units / registered units per township (networking rate)",
                ),
                &["township"],
            )
            .expect("metric"),
            linkage_feedback_total: IntCounterVec::new(
                Opts::new(
                    "gateway_linkage_feedback_total",
                    "Fire alarms by linkage feedback: in_time, late, missing",
                ),
                &["result"],
            )
            .expect("metric"),
            linkage_video_total: IntCounterVec::new(
                Opts::new(
                    "gateway_linkage_video_total",
                    "Snapshots for linked fire events, per camera: attached (before delivery), late (sent as a follow-up), missed",
                ),
                &["result"],
            )
            .expect("metric"),
            outbox_corrupt_rows: IntGauge::new(
                "gateway_outbox_corrupt_rows",
                "Stored event state rows that did not decode since the start (skipped)",
            )
            .expect("metric"),
            quarantined_units: IntGauge::new(
                "gateway_quarantined_units",
                "Unknown units in the quarantine list",
            )
            .expect("metric"),
            registry,
        };
        let r = &m.registry;
        r.register(Box::new(m.events_total.clone()))
            .expect("register");
        r.register(Box::new(m.events_deduplicated_total.clone()))
            .expect("register");
        r.register(Box::new(m.ingest_messages_total.clone()))
            .expect("register");
        r.register(Box::new(m.ingest_rejected_total.clone()))
            .expect("register");
        r.register(Box::new(m.outbox_pending_events.clone()))
            .expect("register");
        r.register(Box::new(m.outbox_dead_letters.clone()))
            .expect("register");
        r.register(Box::new(m.outbox_corrupt_rows.clone()))
            .expect("register");
        r.register(Box::new(m.outbox_commit_seconds.clone()))
            .expect("register");
        r.register(Box::new(m.outbox_commit_batch_events.clone()))
            .expect("register");
        r.register(Box::new(m.delivery_seconds.clone()))
            .expect("register");
        r.register(Box::new(m.delivery_attempts_total.clone()))
            .expect("register");
        r.register(Box::new(m.unit_up.clone())).expect("register");
        r.register(Box::new(m.unit_online_ratio.clone()))
            .expect("register");
        r.register(Box::new(m.linkage_feedback_total.clone()))
            .expect("register");
        r.register(Box::new(m.linkage_video_total.clone()))
            .expect("register");
        r.register(Box::new(m.quarantined_units.clone()))
            .expect("register");
        // process_cpu_seconds_total, process_resident_memory_bytes, … for operators and benchmarks
        r.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))
        .expect("register");
        m
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

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
