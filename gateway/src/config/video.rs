//! `[rtsp]`, `[health]` (the camera part), `[vqd]`, `[snapshots]` and `[linkage]`: the camera
//! source and its pictures.

use super::{raw, Validator, VideoConfig};
use std::time::Duration;

impl Validator {
    pub(super) fn video(
        &mut self,
        v: &raw::VqdSection,
        s: &raw::SnapshotsSection,
        l: &raw::LinkageSection,
    ) -> VideoConfig {
        let file_at = self.file_at();
        if v.decoders == 0 || v.decoders > 64 || !(0.0..=64.0).contains(&v.cpu_budget) {
            self.err(
                file_at.clone(),
                "[vqd] `decoders` must be 1-64 and `cpu_budget` (cores) 0-64",
            );
        }
        if !(2..=31).contains(&s.quality) {
            self.err(
                file_at.clone(),
                format!("[snapshots] `quality` {} is not 2 (best) … 31", s.quality),
            );
        }
        if l.video_deadline_ms > 60_000 {
            self.err(
                file_at,
                "[linkage] `video_deadline_ms` above 60000 would hold alarms back too long",
            );
        }
        let mut kinds = Vec::new();
        for k in &l.video_kinds {
            match k.get_ref().parse::<alerts::event::Kind>() {
                Ok(kind) if kind.as_str().starts_with("fire.") => kinds.push(kind),
                Ok(kind) => self.err(
                    self.at(k),
                    format!("[linkage] `video_kinds`: `{kind}` is not a fire event kind"),
                ),
                Err(e) => self.err(self.at(k), format!("[linkage] `video_kinds`: {e}")),
            }
        }
        VideoConfig {
            pool: cameras::video::pool::PoolConfig {
                threads: v.decoders.clamp(1, 64),
                cpu_budget: v.cpu_budget,
                queue: 64,
            },
            snapshots: cameras::rtsp::snapshot::SnapshotOptions {
                max_width: (s.max_width > 0).then_some(s.max_width),
                quality: s.quality.clamp(2, 31),
                cache: Duration::from_millis(s.cache_ms),
                max_age: Duration::from_secs(s.max_age_s.max(1)),
            },
            evidence: cameras::video::evidence::Retention {
                max_age: Duration::from_secs(s.evidence_max_age_days.saturating_mul(86_400)),
                max_bytes: s.evidence_max_mb.saturating_mul(1 << 20),
            },
            linkage_deadline: Duration::from_millis(l.video_deadline_ms),
            linkage_kinds: kinds,
        }
    }

    pub(super) fn rtsp(
        &mut self,
        r: &raw::RtspSection,
        h: &raw::HealthSection,
        v: &raw::VqdSection,
    ) -> Option<cameras::rtsp::RtspConfig> {
        use cameras::rtsp::health::HealthConfig;
        let file_at = self.file_at();
        let transport = match r.transport.as_ref().map(|t| (t, t.get_ref().as_str())) {
            None | Some((_, "tcp")) => cameras::rtsp::RtpTransport::Tcp,
            Some((_, "udp")) => cameras::rtsp::RtpTransport::Udp,
            Some((t, other)) => {
                self.err(
                    self.at(t),
                    format!("[rtsp] `transport`: `{other}` is not \"tcp\" or \"udp\""),
                );
                cameras::rtsp::RtpTransport::Tcp
            }
        };
        if !(0.0..=1.0).contains(&r.min_fps_ratio) || !(0.0..=1.0).contains(&r.max_loss_ratio) {
            self.err(
                file_at.clone(),
                "[rtsp] `min_fps_ratio` and `max_loss_ratio` are shares between 0 and 1",
            );
        }
        if r.step_timeout_s == 0 || r.reconnect_max_s == 0 || h.camera_stall_after_s == 0 {
            self.err(
                file_at.clone(),
                "[rtsp] `step_timeout_s`, `reconnect_max_s` and [health] `camera_stall_after_s` must be at least 1",
            );
        }
        if h.camera_offline_after_s < h.camera_stall_after_s {
            self.err(
                file_at.clone(),
                "[health] `camera_offline_after_s` must not be below `camera_stall_after_s`",
            );
        }
        let secs = |s: u64| chrono::Duration::seconds(s as i64);
        if v.baseline_samples > 1_000 {
            self.err(
                file_at.clone(),
                format!(
                    "[vqd] `baseline_samples` {} is more than 1000 (0: no baselines)",
                    v.baseline_samples
                ),
            );
        }
        let base = v.overrides();
        self.check_thresholds("[vqd]", &base);
        let thresholds = base.apply(cameras::video::vqd::Thresholds::default());
        let mut profiles = std::collections::HashMap::new();
        for (name, o) in &v.profiles {
            self.check_thresholds(&format!("[vqd.profiles.{name}]"), o);
            profiles.insert(name.clone(), o.apply(thresholds));
        }
        r.enabled.then(|| cameras::rtsp::RtspConfig {
            transport,
            step_timeout: Duration::from_secs(r.step_timeout_s),
            reconnect_initial: Duration::from_secs(1),
            reconnect_max: Duration::from_secs(r.reconnect_max_s),
            read_batch: Duration::from_millis(r.read_batch_ms.min(1000)),
            health: HealthConfig {
                offline_after: secs(h.camera_offline_after_s),
                stall_after: secs(h.camera_stall_after_s),
                degrade_after: secs(r.degrade_after_s),
                min_fps_ratio: r.min_fps_ratio,
                max_loss_ratio: r.max_loss_ratio,
                max_keyframe_interval: secs(r.max_keyframe_interval_s),
                events_per_hour: r.events_per_hour,
            },
            vqd: cameras::rtsp::picture::VqdConfig {
                interval: (v.interval_s > 0).then(|| Duration::from_secs(v.interval_s)),
                confirm: v.confirm_samples.max(1),
                thresholds,
                profiles: std::sync::Arc::new(profiles),
                baseline_samples: v.baseline_samples as usize,
            },
            tick: Duration::from_secs(1),
        })
    }
}

impl Validator {
    /// Thresholds that are shares or correlations must be in their range.
    fn check_thresholds(&mut self, section: &str, o: &raw::ThresholdOverrides) {
        let file_at = self.file_at();
        let share = |x: Option<f64>| x.is_some_and(|x| !(0.0..=1.0).contains(&x));
        if share(o.max_uniform) || share(o.max_frozen_change) || share(o.max_covered) {
            self.err(
                file_at.clone(),
                format!("{section} `max_uniform`, `max_frozen_change` and `max_covered` are shares between 0 and 1"),
            );
        }
        if o.min_view_match.is_some_and(|x| !(-1.0..=1.0).contains(&x)) {
            self.err(
                file_at,
                format!("{section} `min_view_match` is a correlation between -1 and 1"),
            );
        }
    }
}
