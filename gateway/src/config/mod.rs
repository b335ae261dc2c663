//! Configuration: one TOML file (unknown keys are errors), optional CSV registries, secrets from
//! the file, an environment variable or a file path. Validated completely before anything runs;
//! every error names the file, the line and the key or value.
//!
//! Relative paths (data_dir, CSV files, secret files) are resolved against the directory of the
//! configuration file, so a config and its registries can move together.

mod csv;
pub mod error;
mod profiles;
mod raw;

use alerts::delivery::DeliveryConfig;
use alerts::outbox::OutboxConfig;
use alerts::registry::{Camera, Registry, Township, Unit, Webhook};
use alerts::Secret;
use error::Source;
pub use error::{At, ConfigError, ConfigErrors};
use raw::{RawConfig, WebhookEntry};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

/// What a bearer token may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Everything.
    Admin,
    /// Push signals only.
    Ingest,
    /// See and act on one township's events.
    Township(String),
}

/// An API token.
#[derive(Debug, Clone)]
pub struct Token {
    /// Its name (for logs; never the token).
    pub name: String,
    /// The token.
    pub secret: Secret,
    /// What it may do.
    pub scope: Scope,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// API settings.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Listen address.
    pub listen: SocketAddr,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// `/metrics` without a token.
    pub metrics_public: bool,
    /// Tokens.
    pub tokens: Vec<Token>,
}

/// Health thresholds (used by the unit and camera health sources).
#[derive(Debug, Clone)]
pub struct HealthConfig {
    /// No session or frames for this long → camera offline.
    pub camera_offline_after: Duration,
    /// Session up but no frames for this long → camera stalled.
    pub camera_stall_after: Duration,
    /// Default silence after which a unit is offline.
    pub unit_offline_after: Duration,
}

/// The validated configuration.
#[derive(Debug)]
pub struct Config {
    /// The file it came from.
    pub path: PathBuf,
    /// Where the outbox and state live.
    pub data_dir: PathBuf,
    /// Time zone of event timestamps.
    pub offset: chrono::FixedOffset,
    /// Log format.
    pub log_format: LogFormat,
    /// API.
    pub api: ApiConfig,
    /// Health thresholds.
    pub health: HealthConfig,
    /// Decoding, snapshots, evidence and video linkage.
    pub video: VideoConfig,
    /// Dedup window for repeated status reports.
    pub dedup_window: Duration,
    /// Fire alarm → linkage feedback window.
    pub linkage_window: Duration,
    /// Analog threshold rules.
    pub thresholds: Vec<alerts::threshold::Rule>,
    /// List unknown units that keep sending (they are rejected either way).
    pub quarantine_unknown_units: bool,
    /// Outbox.
    pub outbox: OutboxConfig,
    /// How long delivered events are kept.
    pub retention: Duration,
    /// Delivery.
    pub delivery: DeliveryConfig,
    /// Townships, units, cameras.
    pub registry: Registry,
    /// The city center's webhook (escalations).
    pub city: Option<Webhook>,
    /// The MQTT source, when configured.
    pub mqtt: Option<ingest::mqtt::MqttConfig>,
    /// Vendor profiles (MQTT topics and HTTP push).
    pub profiles: ingest::profile::Profiles,
    /// The camera source, unless `[rtsp] enabled = false`.
    pub rtsp: Option<cameras::rtsp::RtspConfig>,
    /// The GB/T 26875.3 server, when `[gb26875]` is configured.
    pub gb26875: Option<ingest::gb26875::server::Gb26875Config>,
}

impl Config {
    /// The outbox file.
    pub fn outbox_path(&self) -> PathBuf {
        self.data_dir.join("outbox.redb")
    }
}

/// Decoding, snapshots, evidence and fire→video linkage.
#[derive(Debug, Clone)]
pub struct VideoConfig {
    /// The decoder pool.
    pub pool: cameras::video::pool::PoolConfig,
    /// Snapshots.
    pub snapshots: cameras::rtsp::snapshot::SnapshotOptions,
    /// Evidence files' retention.
    pub evidence: cameras::video::evidence::Retention,
    /// How long a linked event waits for its snapshots before it is delivered without them.
    pub linkage_deadline: Duration,
    /// Event kinds that get snapshots from the unit's cameras.
    pub linkage_kinds: Vec<alerts::event::Kind>,
}

/// A value with where it was written.
#[derive(Debug, Clone)]
pub(crate) struct Valued<T> {
    pub value: T,
    pub at: At,
}

/// A secret as written: at most one of its three sources.
#[derive(Debug, Clone)]
pub(crate) struct SecretDraft {
    pub inline: Option<Valued<String>>,
    pub env: Option<Valued<String>>,
    pub file: Option<Valued<String>>,
    pub at: At,
}

/// A unit as written, in TOML or CSV.
#[derive(Debug, Clone)]
pub(crate) struct UnitDraft {
    pub id: Valued<String>,
    pub name: String,
    pub township: Valued<String>,
    pub heartbeat_timeout_s: Option<u64>,
    pub gb26875_address: Option<Valued<u64>>,
    pub cameras: Vec<Valued<String>>,
    /// Per-component cameras (TOML only): system, component, cameras.
    pub camera_links: Vec<(Option<u8>, u32, Vec<Valued<String>>)>,
    pub utc_offset: Option<Valued<String>>,
    pub gb26875_peers: Vec<Valued<String>>,
}

/// A camera as written, in TOML or CSV.
#[derive(Debug, Clone)]
pub(crate) struct CameraDraft {
    pub id: Valued<String>,
    pub name: String,
    pub township: Valued<String>,
    pub url: Valued<String>,
    pub username: Option<String>,
    pub password: SecretDraft,
    /// ONVIF events to raise (`None`: the default, tamper only).
    pub onvif_events: Option<Vec<Valued<String>>>,
    /// Picture-check interval override.
    pub vqd_interval_s: Option<u64>,
}

/// Loads and validates a configuration file.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            at: At {
                file: path.to_path_buf().into(),
                line: 0,
                column: 0,
            },
            message: format!("cannot read configuration: {e}"),
        }])
    })?;
    parse(path, &text)
}

/// Validates a configuration given as text (`path` names it in errors and anchors relative paths).
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigErrors> {
    let src = Source::new(path, text);
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        let at = e.span().map(|s| src.at(&s)).unwrap_or(At {
            file: src.file.clone(),
            line: 0,
            column: 0,
        });
        ConfigErrors(vec![ConfigError {
            at,
            message: e.message().trim().to_string(),
        }])
    })?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut v = Validator {
        src,
        base,
        errors: Vec::new(),
    };
    let config = v.config(raw);
    if v.errors.is_empty() {
        Ok(config.expect("no errors means a config"))
    } else {
        Err(ConfigErrors(v.errors))
    }
}

struct Validator {
    src: Source,
    base: PathBuf,
    errors: Vec<ConfigError>,
}

/// An offset like `+08:00`.
fn parse_offset(s: &str) -> Option<chrono::FixedOffset> {
    use chrono::format::{parse, Parsed, StrftimeItems};
    let mut parsed = Parsed::new();
    parse(&mut parsed, s, StrftimeItems::new("%:z")).ok()?;
    parsed.to_fixed_offset().ok()
}

fn is_code(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

fn is_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

impl Validator {
    fn at<T>(&self, s: &Spanned<T>) -> At {
        self.src.at(&s.span())
    }

    fn valued(&self, s: &Spanned<String>) -> Valued<String> {
        Valued {
            value: s.get_ref().clone(),
            at: self.at(s),
        }
    }

    fn err(&mut self, at: At, message: impl Into<String>) {
        self.errors.push(ConfigError {
            at,
            message: message.into(),
        });
    }

    fn mqtt(
        &mut self,
        m: &raw::MqttSection,
        profiles: ingest::profile::Profiles,
    ) -> Option<ingest::mqtt::MqttConfig> {
        let errors_before = self.errors.len();
        let url_at = self.at(&m.url);
        let (tls, default_port) = match reqwest::Url::parse(m.url.get_ref()) {
            Ok(u) if u.scheme() == "mqtt" => (false, 1883),
            Ok(u) if u.scheme() == "mqtts" => (true, 8883),
            Ok(u) => {
                self.err(
                    url_at.clone(),
                    format!("[mqtt] `url`: scheme `{}` is not mqtt or mqtts", u.scheme()),
                );
                (false, 1883)
            }
            Err(e) => {
                self.err(
                    url_at.clone(),
                    format!("[mqtt] `url`: `{}` is not a URL ({e})", m.url.get_ref()),
                );
                (false, 1883)
            }
        };
        let parsed = reqwest::Url::parse(m.url.get_ref()).ok();
        let host = parsed
            .as_ref()
            .and_then(|u| u.host_str())
            .unwrap_or("")
            .trim_matches(['[', ']'])
            .to_string();
        if parsed.is_some() && host.is_empty() {
            self.err(url_at.clone(), "[mqtt] `url` has no host");
        }
        if parsed
            .as_ref()
            .is_some_and(|u| !u.username().is_empty() || u.password().is_some())
        {
            self.err(url_at.clone(), "[mqtt] `url`: credentials must not be in the URL; use `username` and `password_env` / `password_file`");
        }
        let port = parsed
            .as_ref()
            .and_then(|u| u.port())
            .unwrap_or(default_port);
        let client_id = m.client_id.get_ref();
        if client_id.is_empty() || client_id.len() > 64 || client_id.contains(['+', '#', '/']) {
            self.err(
                self.at(&m.client_id),
                "[mqtt] `client_id` must be 1-64 characters without `+`, `#`, `/`",
            );
        }
        let pattern = match ingest::mqtt::TopicPattern::parse(m.topic_pattern.get_ref()) {
            Ok(p) => Some(p),
            Err(e) => {
                self.err(
                    self.at(&m.topic_pattern),
                    format!("[mqtt] `topic_pattern`: {e}"),
                );
                None
            }
        };
        let mut topics = Vec::new();
        for t in &m.topics {
            let ok = !t.get_ref().is_empty()
                && t.get_ref().split('/').enumerate().all(|(i, level)| {
                    level == "+"
                        || (level == "#" && i == t.get_ref().split('/').count() - 1)
                        || !level.contains(['+', '#'])
                });
            if !ok {
                self.err(
                    self.at(t),
                    format!(
                        "[mqtt] `topics`: `{}` is not a valid topic filter",
                        t.get_ref()
                    ),
                );
            }
            topics.push(t.get_ref().clone());
        }
        if topics.is_empty() {
            if let Some(p) = &pattern {
                topics.push(p.filter());
            }
        }
        let qos = *m.qos.get_ref();
        if qos > 1 {
            self.err(self.at(&m.qos), format!("[mqtt] `qos`: {qos} is not 0 or 1 (QoS 1 with ack after commit already gives at-least-once)"));
        }
        let version = match &m.version {
            None => ingest::mqtt::Version::V311,
            Some(v) => ingest::mqtt::Version::from_name(v.get_ref()).unwrap_or_else(|| {
                self.err(
                    self.at(v),
                    format!(
                        "[mqtt] `version`: `{}` is not \"3.1.1\" or \"5\"",
                        v.get_ref()
                    ),
                );
                ingest::mqtt::Version::V311
            }),
        };
        let shared_group = m.shared_group.as_ref().map(|g| {
            if g.get_ref().is_empty() || g.get_ref().contains(['/', '+', '#']) {
                self.err(
                    self.at(g),
                    "[mqtt] `shared_group` must be non-empty without `/`, `+`, `#`",
                );
            }
            g.get_ref().clone()
        });
        let draft = self.secret_draft(
            &m.password,
            &m.password_env,
            &m.password_file,
            url_at.clone(),
        );
        let password = self.secret(&draft, "password", false);
        let credentials = match (&m.username, password) {
            (Some(u), Some(p)) => Some((u.clone(), p)),
            (Some(u), None) => Some((u.clone(), Secret::new(String::new()))),
            (None, Some(_)) => {
                self.err(url_at.clone(), "[mqtt] a password needs a `username`");
                None
            }
            (None, None) => None,
        };
        let ca = match &m.ca_file {
            Some(f) if !tls => {
                self.err(
                    self.at(f),
                    "[mqtt] `ca_file` is only used with an mqtts:// url",
                );
                None
            }
            Some(f) => match std::fs::read(self.path(f.get_ref())) {
                Ok(pem) => Some(pem),
                Err(e) => {
                    self.err(
                        self.at(f),
                        format!("[mqtt] `ca_file`: cannot read `{}`: {e}", f.get_ref()),
                    );
                    None
                }
            },
            None => None,
        };
        if m.max_in_flight == 0 || m.max_payload_bytes == 0 || m.keep_alive_s < 5 {
            self.err(url_at, "[mqtt] `max_in_flight` and `max_payload_bytes` must be positive, `keep_alive_s` at least 5");
        }
        if self.errors.len() > errors_before {
            return None;
        }
        Some(ingest::mqtt::MqttConfig {
            host,
            port,
            tls: tls.then_some(ca),
            client_id: client_id.clone(),
            credentials,
            topics,
            pattern: pattern?,
            version,
            profiles,
            qos,
            shared_group,
            keep_alive: Duration::from_secs(m.keep_alive_s),
            max_payload_bytes: m.max_payload_bytes,
            max_in_flight: m.max_in_flight,
            reconnect_initial: Duration::from_millis(m.reconnect_initial_ms.max(1)),
            reconnect_max: Duration::from_millis(
                m.reconnect_max_ms.max(m.reconnect_initial_ms.max(1)),
            ),
        })
    }

    fn video(
        &mut self,
        v: &raw::VqdSection,
        s: &raw::SnapshotsSection,
        l: &raw::LinkageSection,
    ) -> VideoConfig {
        let file_at = At {
            file: self.src.file.clone(),
            line: 0,
            column: 0,
        };
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

    fn rtsp(
        &mut self,
        r: &raw::RtspSection,
        h: &raw::HealthSection,
        v: &raw::VqdSection,
    ) -> Option<cameras::rtsp::RtspConfig> {
        use cameras::rtsp::health::HealthConfig;
        let file_at = At {
            file: self.src.file.clone(),
            line: 0,
            column: 0,
        };
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
        let mut thresholds = cameras::video::vqd::Thresholds::default();
        for (value, field) in [
            (v.black_luma, &mut thresholds.black_luma),
            (v.black_std, &mut thresholds.black_std),
            (v.dark_luma, &mut thresholds.dark_luma),
            (v.bright_luma, &mut thresholds.bright_luma),
            (v.min_contrast, &mut thresholds.min_contrast),
            (v.max_uniform, &mut thresholds.max_uniform),
            (v.min_sharpness, &mut thresholds.min_sharpness),
            (v.max_frozen_change, &mut thresholds.max_frozen_change),
            (v.cast_distance, &mut thresholds.cast_distance),
            (v.cast_ratio, &mut thresholds.cast_ratio),
        ] {
            if let Some(x) = value {
                *field = x;
            }
        }
        if v.max_uniform.is_some_and(|x| !(0.0..=1.0).contains(&x))
            || v.max_frozen_change
                .is_some_and(|x| !(0.0..=1.0).contains(&x))
        {
            self.err(
                file_at.clone(),
                "[vqd] `max_uniform` and `max_frozen_change` are shares between 0 and 1",
            );
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
            },
            tick: Duration::from_secs(1),
        })
    }

    /// Checks an id's form and that it is not taken; records it.
    fn register_id(&mut self, what: &str, id: &Valued<String>, seen: &mut HashMap<String, At>) {
        if !is_id(&id.value) {
            self.err(
                id.at.clone(),
                format!(
                    "{what} `id`: `{}` must be 1-64 of A-Z, a-z, 0-9, `_`, `-`, `.`",
                    id.value
                ),
            );
        }
        if let Some(prev) = seen.get(&id.value) {
            let first = format!("{}:{}", prev.file.display(), prev.line);
            self.err(
                id.at.clone(),
                format!("{what} `{}` is defined twice (first at {first})", id.value),
            );
        } else {
            seen.insert(id.value.clone(), id.at.clone());
        }
    }

    fn path(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base.join(p)
        }
    }

    fn secret_draft(
        &self,
        inline: &Option<Spanned<String>>,
        env: &Option<Spanned<String>>,
        file: &Option<Spanned<String>>,
        at: At,
    ) -> SecretDraft {
        SecretDraft {
            inline: inline.as_ref().map(|s| self.valued(s)),
            env: env.as_ref().map(|s| self.valued(s)),
            file: file.as_ref().map(|s| self.valued(s)),
            at,
        }
    }

    /// Resolves a secret; `key` is the base key name (`token`, `secret`, `password`).
    fn secret(&mut self, d: &SecretDraft, key: &str, required: bool) -> Option<Secret> {
        let given = [d.inline.is_some(), d.env.is_some(), d.file.is_some()]
            .iter()
            .filter(|b| **b)
            .count();
        if given > 1 {
            self.err(
                d.at.clone(),
                format!("`{key}`, `{key}_env` and `{key}_file` are exclusive: give one"),
            );
            return None;
        }
        if let Some(v) = &d.inline {
            if v.value.is_empty() {
                self.err(v.at.clone(), format!("`{key}` is empty"));
                return None;
            }
            return Some(Secret::new(v.value.clone()));
        }
        if let Some(v) = &d.env {
            return match std::env::var(&v.value) {
                Ok(s) if !s.is_empty() => Some(Secret::new(s)),
                _ => {
                    self.err(
                        v.at.clone(),
                        format!(
                            "`{key}_env`: environment variable `{}` is not set or empty",
                            v.value
                        ),
                    );
                    None
                }
            };
        }
        if let Some(v) = &d.file {
            let path = self.path(&v.value);
            return match std::fs::read_to_string(&path) {
                Ok(s) if !s.trim().is_empty() => {
                    Some(Secret::new(s.trim_end_matches(['\r', '\n']).to_string()))
                }
                Ok(_) => {
                    self.err(
                        v.at.clone(),
                        format!("`{key}_file`: `{}` is empty", path.display()),
                    );
                    None
                }
                Err(e) => {
                    self.err(
                        v.at.clone(),
                        format!("`{key}_file`: cannot read `{}`: {e}", path.display()),
                    );
                    None
                }
            };
        }
        if required {
            self.err(
                d.at.clone(),
                format!("missing `{key}` (or `{key}_env` / `{key}_file`)"),
            );
        }
        None
    }

    fn webhook(&mut self, w: &WebhookEntry) -> Option<Webhook> {
        let url_at = self.at(&w.url);
        let url = w.url.get_ref();
        match reqwest::Url::parse(url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
            Ok(u) => self.err(
                url_at.clone(),
                format!(
                    "webhook `url`: scheme `{}` is not http or https",
                    u.scheme()
                ),
            ),
            Err(e) => self.err(
                url_at.clone(),
                format!("webhook `url`: `{url}` is not a URL ({e})"),
            ),
        }
        let draft = self.secret_draft(&w.secret, &w.secret_env, &w.secret_file, url_at);
        let secret = self.secret(&draft, "secret", true)?;
        Some(Webhook {
            url: url.clone(),
            secret,
            timeout: w.timeout_ms.map(Duration::from_millis),
        })
    }

    fn config(&mut self, raw: RawConfig) -> Option<Config> {
        // [gateway]
        let g = &raw.gateway;
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
                chrono::FixedOffset::east_opt(8 * 3600).expect("valid offset")
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

        // [[townships]]
        let mut townships = Vec::new();
        let mut codes: HashMap<String, At> = HashMap::new();
        for t in &raw.townships {
            let code = t.code.get_ref();
            let at = self.at(&t.code);
            if !is_code(code) {
                self.err(
                    at.clone(),
                    format!("township `code`: `{code}` must be 1-64 of a-z, 0-9, `_`, `-`"),
                );
            }
            if let Some(prev) = codes.get(code) {
                self.err(
                    at.clone(),
                    format!(
                        "township `{code}` is defined twice (first at line {})",
                        prev.line
                    ),
                );
            }
            codes.insert(code.clone(), at);
            if t.name.trim().is_empty() {
                self.err(
                    self.at(&t.code),
                    format!("township `{code}`: `name` is empty"),
                );
            }
            let webhook = t.webhook.as_ref().and_then(|w| self.webhook(w));
            townships.push(Township {
                code: code.clone(),
                name: t.name.clone(),
                webhook,
            });
        }
        let known_codes = || {
            let mut v: Vec<&String> = codes.keys().collect();
            v.sort();
            v.into_iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let known = known_codes();
        let check_township = |me: &mut Self, v: &Valued<String>, what: &str| {
            if !codes.contains_key(&v.value) {
                me.err(
                    v.at.clone(),
                    format!(
                        "{what} `township`: township `{}` does not exist (known: {known})",
                        v.value
                    ),
                );
            }
        };

        // [api]
        let listen = match g_listen(&raw.api.listen) {
            Some(a) => a,
            None => {
                self.err(
                    self.at(&raw.api.listen),
                    format!(
                        "`listen`: `{}` is not an address like `127.0.0.1:8080`",
                        raw.api.listen.get_ref()
                    ),
                );
                "127.0.0.1:8080".parse().expect("valid address")
            }
        };
        if raw.api.max_body_bytes < 256 {
            self.err(
                self.at(&raw.api.listen),
                "`max_body_bytes` must be at least 256",
            );
        }
        let mut tokens = Vec::new();
        let mut names = HashSet::new();
        for t in &raw.api.tokens {
            let at = self.at(&t.name);
            if !names.insert(t.name.get_ref().clone()) {
                self.err(
                    at.clone(),
                    format!("token name `{}` is used twice", t.name.get_ref()),
                );
            }
            let scope_text = t.scope.get_ref();
            let scope = match scope_text.as_str() {
                "admin" => Some(Scope::Admin),
                "ingest" => Some(Scope::Ingest),
                s => {
                    match s.strip_prefix("township:") {
                        Some(code) if codes.contains_key(code) => {
                            Some(Scope::Township(code.to_string()))
                        }
                        Some(code) => {
                            self.err(self.at(&t.scope), format!("token `{}` `scope`: township `{code}` does not exist (known: {})", t.name.get_ref(), known_codes()));
                            None
                        }
                        None => {
                            self.err(self.at(&t.scope), format!("token `{}` `scope`: `{s}` is not `admin`, `ingest` or `township:<code>`", t.name.get_ref()));
                            None
                        }
                    }
                }
            };
            let draft = self.secret_draft(&t.token, &t.token_env, &t.token_file, at.clone());
            let secret = self.secret(&draft, "token", true);
            if let Some(s) = &secret {
                if s.expose().len() < 16 {
                    self.err(
                        at.clone(),
                        format!("token `{}` is shorter than 16 characters", t.name.get_ref()),
                    );
                }
            }
            if let (Some(scope), Some(secret)) = (scope, secret) {
                if tokens.iter().any(|x: &Token| x.secret == secret) {
                    self.err(
                        at,
                        format!(
                            "token `{}` has the same value as another token",
                            t.name.get_ref()
                        ),
                    );
                }
                tokens.push(Token {
                    name: t.name.get_ref().clone(),
                    secret,
                    scope,
                });
            }
        }

        // cameras (TOML then CSV)
        let mut camera_drafts: Vec<CameraDraft> = raw
            .cameras
            .iter()
            .map(|c| CameraDraft {
                id: self.valued(&c.id),
                name: c.name.clone(),
                township: self.valued(&c.township),
                url: self.valued(&c.url),
                username: c.username.clone(),
                password: self.secret_draft(
                    &c.password,
                    &c.password_env,
                    &c.password_file,
                    self.at(&c.id),
                ),
                onvif_events: c
                    .onvif_events
                    .as_ref()
                    .map(|v| v.iter().map(|e| self.valued(e)).collect()),
                vqd_interval_s: c.vqd_interval_s,
            })
            .collect();
        if let Some(p) = &raw.registry.cameras_csv {
            match csv::cameras(&self.path(p.get_ref())) {
                Ok(more) => camera_drafts.extend(more),
                Err(errs) => self.errors.extend(errs),
            }
        }
        let mut cameras = Vec::new();
        let mut camera_ids: HashMap<String, At> = HashMap::new();
        for c in &camera_drafts {
            self.register_id("camera", &c.id, &mut camera_ids);
            check_township(self, &c.township, &format!("camera `{}`", c.id.value));
            match reqwest::Url::parse(&c.url.value) {
                Ok(u) if u.scheme() != "rtsp" && u.scheme() != "rtsps" => {
                    self.err(c.url.at.clone(), format!("camera `{}` `url`: scheme `{}` is not rtsp", c.id.value, u.scheme()))
                }
                Ok(u) if !u.username().is_empty() || u.password().is_some() => self.err(
                    c.url.at.clone(),
                    format!("camera `{}` `url`: credentials must not be in the URL; use `username` and `password_env` / `password_file`", c.id.value),
                ),
                Ok(_) => {}
                Err(e) => self.err(c.url.at.clone(), format!("camera `{}` `url`: not a URL ({e})", c.id.value)),
            }
            let password = self.secret(&c.password, "password", false);
            let (mut motion_events, mut tamper_events) = (false, true);
            if let Some(events) = &c.onvif_events {
                (motion_events, tamper_events) = (false, false);
                for e in events {
                    match e.value.as_str() {
                        "motion" => motion_events = true,
                        "tamper" => tamper_events = true,
                        other => self.err(
                            e.at.clone(),
                            format!(
                                "camera `{}` `onvif_events`: `{other}` is not \"motion\" or \"tamper\"",
                                c.id.value
                            ),
                        ),
                    }
                }
            }
            cameras.push(Camera {
                id: c.id.value.clone(),
                name: c.name.clone(),
                township: c.township.value.clone(),
                url: c.url.value.clone(),
                username: c.username.clone(),
                password,
                motion_events,
                tamper_events,
                vqd_interval_s: c.vqd_interval_s,
            });
        }

        // units (TOML then CSV)
        let mut unit_drafts: Vec<UnitDraft> = raw
            .units
            .iter()
            .map(|u| UnitDraft {
                id: self.valued(&u.id),
                name: u.name.clone(),
                township: self.valued(&u.township),
                heartbeat_timeout_s: u.heartbeat_timeout_s,
                gb26875_address: u.gb26875_address.map(|a| Valued {
                    value: a,
                    at: self.at(&u.id),
                }),
                cameras: u.cameras.iter().map(|c| self.valued(c)).collect(),
                camera_links: u
                    .camera_links
                    .iter()
                    .map(|l| {
                        let cams = l.cameras.iter().map(|c| self.valued(c)).collect();
                        (l.system_addr, l.component_addr, cams)
                    })
                    .collect(),
                utc_offset: u.utc_offset.as_ref().map(|o| self.valued(o)),
                gb26875_peers: u.gb26875_peers.iter().map(|p| self.valued(p)).collect(),
            })
            .collect();
        if let Some(p) = &raw.registry.units_csv {
            match csv::units(&self.path(p.get_ref())) {
                Ok(more) => unit_drafts.extend(more),
                Err(errs) => self.errors.extend(errs),
            }
        }
        let mut units = Vec::new();
        let mut unit_ids: HashMap<String, At> = HashMap::new();
        let mut addresses: HashMap<u64, String> = HashMap::new();
        for u in &unit_drafts {
            self.register_id("unit", &u.id, &mut unit_ids);
            check_township(self, &u.township, &format!("unit `{}`", u.id.value));
            for c in u
                .cameras
                .iter()
                .chain(u.camera_links.iter().flat_map(|l| &l.2))
            {
                if !camera_ids.contains_key(&c.value) {
                    self.err(
                        c.at.clone(),
                        format!(
                            "unit `{}` `cameras`: camera `{}` does not exist",
                            u.id.value, c.value
                        ),
                    );
                }
            }
            if let Some(a) = &u.gb26875_address {
                if a.value >= 1 << 48 {
                    self.err(
                        a.at.clone(),
                        format!(
                            "unit `{}` `gb26875_address`: {} does not fit in 6 bytes",
                            u.id.value, a.value
                        ),
                    );
                }
                if let Some(other) = addresses.insert(a.value, u.id.value.clone()) {
                    self.err(
                        a.at.clone(),
                        format!(
                            "unit `{}` `gb26875_address`: {} is already used by unit `{other}`",
                            u.id.value, a.value
                        ),
                    );
                }
            }
            let utc_offset = u.utc_offset.as_ref().and_then(|o| {
                let parsed = parse_offset(&o.value);
                if parsed.is_none() {
                    self.err(
                        o.at.clone(),
                        format!(
                            "unit `{}` `utc_offset`: `{}` is not an offset like `+08:00`",
                            u.id.value, o.value
                        ),
                    );
                }
                parsed
            });
            let mut gb26875_peers = Vec::new();
            for p in &u.gb26875_peers {
                match p.value.parse::<std::net::IpAddr>() {
                    Ok(ip) => gb26875_peers.push(ip),
                    Err(_) => self.err(
                        p.at.clone(),
                        format!(
                            "unit `{}` `gb26875_peers`: `{}` is not an IP address",
                            u.id.value, p.value
                        ),
                    ),
                }
            }
            units.push(Unit {
                id: u.id.value.clone(),
                name: u.name.clone(),
                township: u.township.value.clone(),
                heartbeat_timeout_s: u.heartbeat_timeout_s,
                gb26875_address: u.gb26875_address.as_ref().map(|a| a.value),
                cameras: u.cameras.iter().map(|c| c.value.clone()).collect(),
                camera_links: u
                    .camera_links
                    .iter()
                    .map(
                        |(system_addr, component_addr, cams)| alerts::registry::CameraLink {
                            system_addr: *system_addr,
                            component_addr: *component_addr,
                            cameras: cams.iter().map(|c| c.value.clone()).collect(),
                        },
                    )
                    .collect(),
                utc_offset,
                gb26875_peers,
            });
        }

        let city = raw.city.as_ref().and_then(|c| self.webhook(&c.webhook));
        let profiles = self.profiles(&raw.profiles, &raw.registry.profile_files);
        let mqtt = raw
            .mqtt
            .as_ref()
            .and_then(|m| self.mqtt(m, profiles.clone()));
        let mut thresholds = Vec::new();
        for t in &raw.thresholds {
            let at = self.at(&t.analog_type);
            let analog_type = *t.analog_type.get_ref();
            if alerts::codes::analog_type(analog_type).is_none() {
                self.err(at.clone(), format!("[[thresholds]] `analog_type`: {analog_type} is not a GB/T 26875.3 analog type (1-12)"));
            }
            match alerts::threshold::Limits::from_values(
                t.above,
                t.clear_below,
                t.below,
                t.clear_above,
            ) {
                Ok(limits) => thresholds.push(alerts::threshold::Rule {
                    analog_type,
                    component_type: t.component_type,
                    limits,
                }),
                Err(e) => self.err(at, format!("[[thresholds]] {e}")),
            }
        }
        // component-specific rules first, so they win over general ones
        thresholds.sort_by_key(|r| r.component_type.is_none());

        let rtsp = self.rtsp(&raw.rtsp, &raw.health, &raw.vqd);
        let video = self.video(&raw.vqd, &raw.snapshots, &raw.linkage);
        let gb26875 = raw.gb26875.as_ref().and_then(|g| {
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
            if g.idle_timeout_s == 0 || g.max_connections == 0 {
                self.err(
                    self.at(&g.listen),
                    "[gb26875] `idle_timeout_s` and `max_connections` must be at least 1",
                );
            }
            Some(ingest::gb26875::server::Gb26875Config {
                listen,
                idle_timeout: Duration::from_secs(g.idle_timeout_s),
                max_connections: g.max_connections,
                offset,
                max_frames_per_s: g.max_frames_per_s.max(1),
            })
        });

        // [outbox], [delivery]
        let o = &raw.outbox;
        let file_at = At {
            file: self.src.file.clone(),
            line: 0,
            column: 0,
        };
        if o.max_pending_events == 0 {
            self.err(
                file_at.clone(),
                "[outbox] `max_pending_events` must be at least 1",
            );
        }
        if o.max_batch == 0 || o.max_batch > 65_536 {
            self.err(
                file_at.clone(),
                "[outbox] `max_batch` must be between 1 and 65536",
            );
        }
        let d = &raw.delivery;
        if d.timeout_ms == 0 || d.connect_timeout_ms == 0 || d.backoff_initial_ms == 0 {
            self.err(
                file_at.clone(),
                "[delivery] timeouts and `backoff_initial_ms` must be positive",
            );
        }
        if d.backoff_initial_ms > d.backoff_max_ms {
            self.err(
                file_at,
                "[delivery] `backoff_initial_ms` is larger than `backoff_max_ms`",
            );
        }

        if !self.errors.is_empty() {
            return None;
        }
        Some(Config {
            path: self.src.file.as_ref().clone(),
            data_dir,
            offset,
            log_format,
            api: ApiConfig {
                listen,
                max_body_bytes: raw.api.max_body_bytes,
                metrics_public: raw.api.metrics_public,
                tokens,
            },
            health: HealthConfig {
                camera_offline_after: Duration::from_secs(raw.health.camera_offline_after_s),
                camera_stall_after: Duration::from_secs(raw.health.camera_stall_after_s),
                unit_offline_after: Duration::from_secs(raw.health.unit_offline_after_s),
            },
            video,
            dedup_window: Duration::from_secs(raw.normalize.dedup_window_s),
            linkage_window: Duration::from_secs(raw.linkage.feedback_window_s),
            thresholds,
            profiles,
            rtsp,
            gb26875,
            quarantine_unknown_units: raw.registry.quarantine_unknown_units,
            outbox: OutboxConfig {
                max_pending: o.max_pending_events,
                group_commit: o.group_commit,
                max_batch: o.max_batch,
                cache_bytes: o.cache_mb.max(1) << 20,
            },
            retention: Duration::from_secs(o.retention_days.saturating_mul(86_400)),
            delivery: DeliveryConfig {
                timeout: Duration::from_millis(d.timeout_ms),
                connect_timeout: Duration::from_millis(d.connect_timeout_ms),
                backoff_initial: Duration::from_millis(d.backoff_initial_ms),
                backoff_max: Duration::from_millis(d.backoff_max_ms),
                ..DeliveryConfig::default()
            },
            registry: Registry::new(townships, units, cameras),
            city,
            mqtt,
        })
    }
}

fn g_listen(s: &Spanned<String>) -> Option<SocketAddr> {
    s.get_ref().parse().ok()
}

#[cfg(test)]
mod tests;
