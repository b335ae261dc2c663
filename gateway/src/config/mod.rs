//! Configuration: one TOML file (unknown keys are errors), optional CSV registries, secrets from
//! the file, an environment variable or a file path. Validated completely before anything runs;
//! every error names the file, the line and the key or value.
//!
//! Relative paths (data_dir, CSV files, secret files) are resolved against the directory of the
//! configuration file, so a config and its registries can move together.
//!
//! One file per part of the config, each with its checks: [`api`] (`[api]`, tokens),
//! `registry` (townships, cameras, units, their CSV files), `mqtt`, `video` (`[rtsp]`,
//! `[vqd]`, `[snapshots]`, `[linkage]`), `sections` (`[gateway]`, `[[thresholds]]`,
//! `[gb26875]`, `[outbox]`, `[delivery]`), `profiles`; `raw` is the TOML schema, `csv` the CSV
//! registries. `Validator::config` below runs them in file order and assembles the result.

pub mod api;
mod cases;
mod csv;
pub mod error;
mod gb28181;
mod mqtt;
mod place;
mod profiles;
mod raw;
mod registry;
mod sections;
mod video;

use alerts::delivery::DeliveryConfig;
use alerts::outbox::OutboxConfig;
use alerts::registry::{Registry, Webhook};
use alerts::Secret;
pub use api::{ApiConfig, Scope, Token};
use error::Source;
pub use error::{At, ConfigError, ConfigErrors};
use raw::{RawConfig, WebhookEntry};
pub(crate) use registry::{CameraDraft, UnitDraft};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
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
    /// What is valid but worth a second look (`gateway check` prints them, `run` logs them).
    pub warnings: Vec<String>,
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
    /// How cases are opened: dispatch rules, info kinds that stay open.
    pub cases: alerts::pipeline::CasePolicy,
    /// `[assessment]` weights of the score.
    pub assessment: alerts::assessment::Weights,
    /// `[reports] weekly`: when the weekly report is made (`None`: never).
    pub weekly: Option<crate::weekly::Schedule>,
    /// The MQTT source, when configured.
    pub mqtt: Option<ingest::mqtt::MqttConfig>,
    /// Vendor profiles (MQTT topics and HTTP push).
    pub profiles: ingest::profile::Profiles,
    /// The camera source, unless `[rtsp] enabled = false`.
    pub rtsp: Option<cameras::rtsp::RtspConfig>,
    /// The GB/T 26875.3 server, when `[gb26875]` is configured.
    pub gb26875: Option<ingest::gb26875::server::Gb26875Config>,
    /// The GB/T 28181 platform, when `[gb28181]` is configured.
    pub gb28181: Option<::gb28181::Gb28181Config>,
}

impl Config {
    /// The outbox file.
    pub fn outbox_path(&self) -> PathBuf {
        self.data_dir.join("outbox.redb")
    }

    /// Where the weekly reports are kept.
    pub fn reports_dir(&self) -> PathBuf {
        self.data_dir.join("reports")
    }

    /// Where a running gateway records the address its API is bound to (the `outbox`
    /// commands ask it there; with `listen` on port 0 nothing else says which port it is).
    pub fn api_addr_path(&self) -> PathBuf {
        self.data_dir.join("api.addr")
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
        warnings: Vec::new(),
        cameras_unread: false,
        vqd_profiles: raw.vqd.profiles.keys().cloned().collect(),
        gb28181_channels: raw.gb28181.is_some(),
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
    /// Said once, loading goes on (unknown CSV columns, a registry decoded from GBK…).
    warnings: Vec<String>,
    /// The cameras' CSV could not be read: units naming cameras are not checked against it
    /// (one error, not one more per unit).
    cameras_unread: bool,
    /// The `[vqd.profiles]` defined, which cameras may name.
    vqd_profiles: std::collections::BTreeSet<String>,
    /// `[gb28181]` runs: units may name GB/T 28181 channels (20-digit ids its devices'
    /// catalogs will report) beside configured cameras.
    gb28181_channels: bool,
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
        let (data_dir, offset, log_format) = self.gateway(&raw.gateway);
        let (townships, known) = self.townships(&raw.townships);
        let (departments, dept_codes) = self.departments(&raw.departments, &known);
        let cases = self.case_policy(
            &raw.dispatch,
            &raw.sla,
            &raw.lifecycle,
            &departments,
            &known,
        );
        let api = self.api(&raw.api, &known, &dept_codes);
        let registry = raw.registry.cameras_csv.as_ref();
        let (cameras, camera_ids) = self.cameras(&raw.cameras, registry, &known);
        let registry = raw.registry.units_csv.as_ref();
        let units = self.units(&raw.units, registry, &known, &camera_ids);
        let mut warnings = std::mem::take(&mut self.warnings);
        warnings.extend(registry::cross_township_links(&units, &cameras));
        let city = raw.city.as_ref().and_then(|c| self.webhook(&c.webhook));
        let profiles = self.profiles(&raw.profiles, &raw.registry.profile_files);
        let mqtt = raw
            .mqtt
            .as_ref()
            .and_then(|m| self.mqtt(m, profiles.clone()));
        let thresholds = self.thresholds(&raw.thresholds);
        let rtsp = self.rtsp(&raw.rtsp, &raw.health, &raw.vqd);
        let video = self.video(&raw.vqd, &raw.snapshots, &raw.linkage);
        let gb26875 = raw.gb26875.as_ref().and_then(|g| self.gb26875(g, offset));
        let gb28181 = raw.gb28181.as_ref().and_then(|g| {
            let dedup = Duration::from_secs(raw.normalize.dedup_window_s);
            self.gb28181(g, &known, &data_dir, offset, dedup)
        });
        let (outbox, retention) = self.outbox(&raw.outbox);
        let delivery = self.delivery(&raw.delivery);
        if !self.errors.is_empty() {
            return None;
        }
        Some(Config {
            path: self.src.file.as_ref().clone(),
            warnings,
            data_dir,
            offset,
            log_format,
            api,
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
            gb28181,
            quarantine_unknown_units: raw.registry.quarantine_unknown_units,
            outbox,
            retention,
            delivery,
            registry: Registry::new(townships, units, cameras)
                .with_departments(departments)
                .with_city(city.clone()),
            city,
            cases,
            assessment: self.weights(&raw.assessment),
            weekly: self.weekly(&raw.reports.weekly),
            mqtt,
        })
    }
}

fn g_listen(s: &Spanned<String>) -> Option<SocketAddr> {
    s.get_ref().parse().ok()
}

#[cfg(test)]
mod tests;
