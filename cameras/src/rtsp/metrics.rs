//! The camera source's metrics.

use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGaugeVec, Opts, Registry};

/// Per-camera and per-township camera metrics.
#[derive(Clone)]
pub struct CameraMetrics {
    /// `gateway_camera_up{camera,township}`: 1 while online (shared with the other camera
    /// sources through the tally).
    pub up: IntGaugeVec,
    /// The township counts every camera source reports (the online and integrity ratios).
    pub tally: alerts::camera_tally::CameraTally,
    /// `gateway_camera_frames_total{camera}`.
    pub frames: IntCounterVec,
    /// `gateway_camera_bytes_total{camera}`: bytes of frames.
    pub bytes: IntCounterVec,
    /// `gateway_camera_reconnects_total{camera}`.
    pub reconnects: IntCounterVec,
    /// `gateway_camera_session_failures_total{reason}`.
    pub failures: IntCounterVec,
    /// `gateway_camera_transitions_total{to}`: state changes reported.
    pub transitions: IntCounterVec,
    /// `gateway_camera_onvif_events_total{kind,result}`: ONVIF notifications, `raised` or
    /// `suppressed` (cooldown).
    pub onvif: IntCounterVec,
    /// `gateway_vqd_samples_total{result}`: picture samples `ok`, `failed` (did not decode),
    /// `skipped_budget` or `skipped_busy`.
    pub vqd_samples: IntCounterVec,
    /// `gateway_vqd_sample_seconds`: decode + diagnosis time per sample.
    pub vqd_seconds: Histogram,
    /// `gateway_camera_picture_failing{check}`: cameras with the check reported.
    pub picture_failing: IntGaugeVec,
}

impl CameraMetrics {
    /// Creates the metrics and registers them (a second source in one process shares them).
    pub fn new(registry: &Registry, tally: &alerts::camera_tally::CameraTally) -> Self {
        let counter = |name: &str, help: &str, labels: &[&str]| {
            IntCounterVec::new(Opts::new(name, help), labels).expect("metric")
        };
        let m = Self {
            up: tally.up.clone(),
            tally: tally.clone(),
            frames: counter(
                "gateway_camera_frames_total",
                "Video frames received",
                &["camera"],
            ),
            bytes: counter(
                "gateway_camera_bytes_total",
                "Bytes of video frames received",
                &["camera"],
            ),
            reconnects: counter(
                "gateway_camera_reconnects_total",
                "RTSP sessions started after a camera's first",
                &["camera"],
            ),
            failures: counter(
                "gateway_camera_session_failures_total",
                "Failed or lost RTSP sessions, by reason",
                &["reason"],
            ),
            transitions: counter(
                "gateway_camera_transitions_total",
                "Camera state changes reported, by new state",
                &["to"],
            ),
            onvif: counter(
                "gateway_camera_onvif_events_total",
                "ONVIF motion/tamper notifications, raised as events or suppressed by the cooldown",
                &["kind", "result"],
            ),
            vqd_samples: counter(
                "gateway_vqd_samples_total",
                "Picture samples: ok, failed (did not decode), skipped_budget, skipped_busy",
                &["result"],
            ),
            vqd_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "gateway_vqd_sample_seconds",
                    "Time to decode and diagnose one picture sample",
                )
                .buckets(vec![0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5]),
            )
            .expect("metric"),
            picture_failing: IntGaugeVec::new(
                Opts::new(
                    "gateway_camera_picture_failing",
                    "Cameras whose picture fails a check, by check",
                ),
                &["check"],
            )
            .expect("metric"),
        };
        for c in [
            Box::new(m.frames.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(m.bytes.clone()),
            Box::new(m.reconnects.clone()),
            Box::new(m.failures.clone()),
            Box::new(m.transitions.clone()),
            Box::new(m.onvif.clone()),
            Box::new(m.vqd_samples.clone()),
            Box::new(m.vqd_seconds.clone()),
            Box::new(m.picture_failing.clone()),
        ] {
            let _ = registry.register(c);
        }
        m
    }
}
