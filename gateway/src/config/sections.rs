//! The smaller sections: `[gateway]`, `[[thresholds]]`, `[gb26875]`, `[outbox]` and
//! `[delivery]`.

use super::raw::{DeliverySection, GatewaySection, Gb26875Section, OutboxSection, ThresholdEntry};
use super::{g_listen, parse_offset, At, LogFormat, Validator};
use alerts::delivery::DeliveryConfig;
use alerts::outbox::OutboxConfig;
use alerts::threshold::{Limits, Rule};
use chrono::FixedOffset;
use std::path::PathBuf;
use std::time::Duration;

impl Validator {
    /// `[gateway]`: the data directory, the time zone events are written in, the log format.
    pub(super) fn gateway(&mut self, g: &GatewaySection) -> (PathBuf, FixedOffset, LogFormat) {
        let data_dir = self.path(g.data_dir.get_ref());
        let offset = match parse_offset(g.utc_offset.get_ref()) {
            Some(offset) => offset,
            None => {
                self.err(
                    self.at(&g.utc_offset),
                    format!(
                        "`utc_offset`: `{}` is not an offset like `+08:00`",
                        g.utc_offset.get_ref()
                    ),
                );
                FixedOffset::east_opt(8 * 3600).expect("valid offset")
            }
        };
        let log_format = match g.log_format.get_ref().as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                self.err(
                    self.at(&g.log_format),
                    format!("`log_format`: `{other}` is not `text` or `json`"),
                );
                LogFormat::Text
            }
        };
        (data_dir, offset, log_format)
    }

    /// `[[thresholds]]`: known analog types and consistent bands; component-specific rules
    /// first, so that they win over general ones.
    pub(super) fn thresholds(&mut self, raw: &[ThresholdEntry]) -> Vec<Rule> {
        let mut rules = Vec::new();
        for t in raw {
            let at = self.at(&t.analog_type);
            let analog_type = *t.analog_type.get_ref();
            if alerts::codes::analog_type(analog_type).is_none() {
                self.err(at.clone(), format!("[[thresholds]] `analog_type`: {analog_type} is not a GB/T 26875.3 analog type (1-12)"));
            }
            match Limits::from_values(t.above, t.clear_below, t.below, t.clear_above) {
                Ok(limits) => rules.push(Rule {
                    analog_type,
                    component_type: t.component_type,
                    limits,
                }),
                Err(e) => self.err(at, format!("[[thresholds]] {e}")),
            }
        }
        rules.sort_by_key(|r| r.component_type.is_none());
        rules
    }

    /// `[gb26875]`: an address to listen on, positive limits.
    pub(super) fn gb26875(
        &mut self,
        g: &Gb26875Section,
        offset: FixedOffset,
    ) -> Option<ingest::gb26875::server::Gb26875Config> {
        let Some(listen) = g_listen(&g.listen) else {
            self.err(
                self.at(&g.listen),
                format!(
                    "[gb26875] `listen`: `{}` is not an address like `0.0.0.0:9026`",
                    g.listen.get_ref()
                ),
            );
            return None;
        };
        if g.idle_timeout_s == 0 || g.login_timeout_s == 0 || g.max_connections == 0 {
            self.err(
                self.at(&g.listen),
                "[gb26875] `idle_timeout_s`, `login_timeout_s` and `max_connections` must be at least 1",
            );
        }
        Some(ingest::gb26875::server::Gb26875Config {
            listen,
            idle_timeout: Duration::from_secs(g.idle_timeout_s),
            login_timeout: Duration::from_secs(g.login_timeout_s),
            max_connections: g.max_connections,
            max_connections_per_peer: g.max_connections_per_peer.max(1),
            offset,
            max_frames_per_s: g.max_frames_per_s.max(1),
        })
    }

    /// Where errors of sections without a spanned key point: the file.
    pub(super) fn file_at(&self) -> At {
        At {
            file: self.src.file.clone(),
            line: 0,
            column: 0,
        }
    }

    /// `[outbox]`: the outbox's limits and the retention of delivered events.
    pub(super) fn outbox(&mut self, o: &OutboxSection) -> (OutboxConfig, Duration) {
        if o.max_pending_events == 0 {
            self.err(
                self.file_at(),
                "[outbox] `max_pending_events` must be at least 1",
            );
        }
        if o.max_batch == 0 || o.max_batch > 65_536 {
            self.err(
                self.file_at(),
                "[outbox] `max_batch` must be between 1 and 65536",
            );
        }
        let config = OutboxConfig {
            max_pending: o.max_pending_events,
            group_commit: o.group_commit,
            max_batch: o.max_batch,
            cache_bytes: o.cache_mb.max(1) << 20,
            min_free_bytes: o.min_free_mb.saturating_mul(1 << 20),
        };
        let retention = Duration::from_secs(o.retention_days.saturating_mul(86_400));
        (config, retention)
    }

    /// `[delivery]`: positive timeouts, a backoff that grows.
    pub(super) fn delivery(&mut self, d: &DeliverySection) -> DeliveryConfig {
        if d.timeout_ms == 0 || d.connect_timeout_ms == 0 || d.backoff_initial_ms == 0 {
            self.err(
                self.file_at(),
                "[delivery] timeouts and `backoff_initial_ms` must be positive",
            );
        }
        if d.backoff_initial_ms > d.backoff_max_ms {
            self.err(
                self.file_at(),
                "[delivery] `backoff_initial_ms` is larger than `backoff_max_ms`",
            );
        }
        DeliveryConfig {
            timeout: Duration::from_millis(d.timeout_ms),
            connect_timeout: Duration::from_millis(d.connect_timeout_ms),
            backoff_initial: Duration::from_millis(d.backoff_initial_ms),
            backoff_max: Duration::from_millis(d.backoff_max_ms),
            refused_attempts: d.refused_attempts.max(1),
            legacy_signature: d.legacy_signature,
            ..DeliveryConfig::default()
        }
    }
}
