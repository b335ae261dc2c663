//! Config reload (SIGHUP, `POST /api/v1/admin/reload`): the config file and its registries are
//! read and checked again, and applied whole or not at all.
//!
//! * A config that does not check is refused; the running one keeps serving, and the errors are
//!   logged and returned.
//! * Taken without a restart: units and cameras (added, removed, changed), GB/T 28181 devices
//!   and civil codes (a device removed is forgotten with its channels), townships' names and
//!   webhooks, departments' and the city's webhooks, API tokens, the API's TLS certificate, key
//!   and client CA (for new connections), threshold rules and the vendor profiles (HTTP push and
//!   MQTT share one handle; a change of the topics they subscribe needs a restart). No connection that did not change is dropped: MQTT, GB/T 26875.3
//!   and the RTSP sessions of untouched cameras carry on; a unit kept keeps its online state, a
//!   new one starts unseen; a camera added gets a session, a camera removed loses its own.
//! * A change to anything else (listen addresses, the MQTT, GB/T 26875.3, GB/T 28181 and RTSP settings,
//!   which townships and departments there are, data_dir, outbox, delivery, timing — and the
//!   first cameras of a gateway started without any) is refused as a whole, naming what needs a
//!   restart — a reload never half-applies a config.

use crate::api::auth::Auth;
use crate::config::{self, Config};
use alerts::live::Live;
use alerts::pipeline::RegistryChange;
use alerts::secret::Secret;
use alerts::Pipeline;
use cameras::rtsp::{CameraChange, Cameras};
use ingest::profile::Profiles;
use prometheus::{IntCounterVec, Opts};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Why a reload was refused (the running config is kept either way).
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReloadError {
    /// The new config does not check.
    #[error("the new configuration is invalid ({} error(s))", .0.len())]
    Invalid(Vec<String>),
    /// The new config changes what only a restart applies.
    #[error("the new configuration changes what only a restart applies: {}", .0.join("; "))]
    NeedsRestart(Vec<String>),
}

/// What a reload applied.
#[derive(Debug, Clone, Serialize)]
pub struct Reloaded {
    /// Units added, removed and changed.
    #[serde(flatten)]
    pub units: RegistryChange,
    /// Cameras added, removed and changed.
    #[serde(flatten)]
    pub cameras: CameraChange,
    /// GB/T 28181 devices added, removed and changed.
    #[serde(flatten)]
    pub gb28181: gb28181::DeviceChange,
    /// API tokens now valid.
    pub tokens: usize,
    /// What is valid but worth a second look.
    pub warnings: Vec<String>,
}

/// The camera source of the running gateway, as a reload sees it.
pub enum CameraSource {
    /// Watching cameras: a reload adds and removes sessions.
    Running(Arc<Cameras>),
    /// `[rtsp]` enabled but the gateway started without cameras: the first need a restart.
    NotStarted,
    /// `[rtsp] enabled = false`: cameras are registry entries only.
    Disabled,
}

/// The parts of a running gateway a reload replaces.
pub struct Targets {
    /// The registry and threshold rules.
    pub pipeline: Arc<Pipeline>,
    /// The API's tokens.
    pub auth: Arc<Live<Auth>>,
    /// Vendor profiles (HTTP push and MQTT).
    pub profiles: Arc<Live<Profiles>>,
    /// The watched cameras.
    pub cameras: CameraSource,
    /// The API's TLS configuration, when it speaks HTTPS (a reload reads the files again).
    pub tls: Option<Arc<Live<rustls::ServerConfig>>>,
    /// The GB/T 28181 platform, when it runs (its device list and civil codes are replaced).
    pub gb28181: Option<Arc<gb28181::Server>>,
}

/// Reloads a running gateway's config: the file it reads again, what it may not change, and
/// what it replaces.
pub struct Reloader {
    path: PathBuf,
    /// What only a restart may change, as the running gateway was started with it.
    fixed: Fixed,
    targets: Targets,
    one_at_a_time: tokio::sync::Mutex<()>,
    /// `gateway_config_reloads_total{result}`: `ok`, `invalid`, `restart_required`.
    results: IntCounterVec,
}

impl Reloader {
    /// For a gateway started from `path` with `fixed` (see [`Fixed::of`]).
    pub fn new(path: PathBuf, fixed: Fixed, targets: Targets) -> Self {
        let results = IntCounterVec::new(
            Opts::new(
                "gateway_config_reloads_total",
                "Config reloads (SIGHUP, POST /api/v1/admin/reload) by result",
            ),
            &["result"],
        )
        .expect("metric");
        let _ = targets
            .pipeline
            .metrics()
            .registry
            .register(Box::new(results.clone()));
        for r in ["ok", "invalid", "restart_required"] {
            results.with_label_values(&[r]);
        }
        Self {
            path,
            fixed,
            targets,
            one_at_a_time: tokio::sync::Mutex::new(()),
            results,
        }
    }

    /// Reads, checks and applies the config file; logs the outcome.
    pub async fn reload(&self) -> Result<Reloaded, ReloadError> {
        let _one = self.one_at_a_time.lock().await;
        let path = self.path.clone();
        let loaded = tokio::task::spawn_blocking(move || config::load(&path))
            .await
            .expect("config load does not panic");
        let result = match loaded {
            Err(errors) => Err(ReloadError::Invalid(
                errors.0.iter().map(|e| e.to_string()).collect(),
            )),
            Ok(new) => self.apply(new).await,
        };
        self.log(&result);
        result
    }

    async fn apply(&self, new: Config) -> Result<Reloaded, ReloadError> {
        let mut changed: Vec<String> = Fixed::of(&new)
            .0
            .into_iter()
            .filter(|(part, print)| self.fixed.0.get(part) != Some(print))
            .map(|(part, _)| format!("{part} changed"))
            .collect();
        let t = &self.targets;
        let no_cameras = t.pipeline.registry().camera_count() == 0;
        if matches!(t.cameras, CameraSource::NotStarted)
            && no_cameras
            && new.registry.camera_count() > 0
        {
            changed.push("cameras added to a gateway started without any (the camera source starts with the first camera)".into());
        }
        if !changed.is_empty() {
            return Err(ReloadError::NeedsRestart(changed));
        }
        let timeouts: Vec<(String, Duration)> = new
            .registry
            .units()
            .map(|u| {
                let t = u.heartbeat_timeout_s.map(Duration::from_secs);
                (u.id.clone(), t.unwrap_or(new.health.unit_offline_after))
            })
            .collect();
        if let (Some(live), Some(tls)) = (&t.tls, &new.api.tls) {
            live.replace(tls.server.clone());
        }
        t.auth.replace(Arc::new(Auth::new(&new.api.tokens)));
        t.profiles.replace(Arc::new(new.profiles));
        t.pipeline.replace_thresholds(new.thresholds);
        let registry = Arc::new(new.registry);
        let units = t.pipeline.replace_registry(registry.clone(), timeouts);
        let cameras = match &t.cameras {
            CameraSource::Running(c) => c.update(&registry, &t.pipeline).await,
            _ => CameraChange::default(),
        };
        let gb28181 = match (&t.gb28181, &new.gb28181) {
            (Some(platform), Some(g)) => platform.update_devices(g),
            _ => Default::default(),
        };
        Ok(Reloaded {
            units,
            cameras,
            gb28181,
            tokens: new.api.tokens.len(),
            warnings: new.warnings,
        })
    }

    fn log(&self, result: &Result<Reloaded, ReloadError>) {
        let label = match result {
            Ok(r) => {
                tracing::info!(
                    units_added = r.units.units_added.len(),
                    units_removed = r.units.units_removed.len(),
                    units_changed = r.units.units_changed.len(),
                    cameras_added = r.cameras.cameras_added.len(),
                    cameras_removed = r.cameras.cameras_removed.len(),
                    cameras_changed = r.cameras.cameras_changed.len(),
                    gb28181_devices_added = r.gb28181.gb28181_devices_added.len(),
                    gb28181_devices_removed = r.gb28181.gb28181_devices_removed.len(),
                    gb28181_devices_changed = r.gb28181.gb28181_devices_changed.len(),
                    tokens = r.tokens,
                    "config reloaded"
                );
                for w in &r.warnings {
                    tracing::warn!("config: {w}");
                }
                "ok"
            }
            Err(ReloadError::Invalid(errors)) => {
                tracing::error!(
                    errors = errors.len(),
                    "config reload refused: the new configuration is invalid; the running one is kept"
                );
                for e in errors {
                    tracing::error!("config: {e}");
                }
                "invalid"
            }
            Err(e @ ReloadError::NeedsRestart(_)) => {
                tracing::error!("config reload refused: {e}; the running configuration is kept");
                "restart_required"
            }
        };
        self.results.with_label_values(&[label]).inc();
    }

    /// Reloads on every SIGHUP until `stop` turns true.
    pub async fn on_sighup(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "no SIGHUP handler: reload through the API only");
                return;
            }
        };
        loop {
            tokio::select! {
                _ = hup.recv() => {
                    tracing::info!("SIGHUP: reloading the configuration");
                    let _ = self.reload().await;
                }
                _ = stop.changed() => return,
            }
        }
    }
}

/// A secret as a comparable print (never the secret).
fn print(secret: &Secret) -> String {
    Sha256::digest(secret.expose().as_bytes())[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Each part of a config only a restart applies, printed for comparison (secrets as prints).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fixed(BTreeMap<&'static str, String>);

impl Fixed {
    /// Of `config` (take it before the config is taken apart to start the gateway).
    pub fn of(config: &Config) -> Self {
        Self(fixed(config))
    }
}

fn fixed(c: &Config) -> BTreeMap<&'static str, String> {
    let mut parts = BTreeMap::new();
    let mut put = |part: &'static str, text: String| {
        parts.insert(part, text);
    };
    put("data_dir", format!("{:?}", c.data_dir));
    put("time zone (offset)", format!("{:?}", c.offset));
    put("log format", format!("{:?}", c.log_format));
    let api = &c.api;
    put(
        "[api] (other than tokens)",
        format!(
            "{:?} {} {} {:?} {:?} {} {:?}",
            api.listen,
            api.max_body_bytes,
            api.metrics_public,
            api.header_timeout,
            api.request_timeout,
            api.max_connections,
            api.cors_origins
        ),
    );
    put("[api] TLS on or off", format!("{}", api.tls.is_some()));
    put("[health]", format!("{:?}", c.health));
    put("[video]", format!("{:?}", c.video));
    put(
        "dedup, linkage and quarantine settings",
        format!(
            "{:?} {:?} {}",
            c.dedup_window, c.linkage_window, c.quarantine_unknown_units
        ),
    );
    put("[outbox]", format!("{:?} {:?}", c.outbox, c.retention));
    put("[delivery]", format!("{:?}", c.delivery));
    put(
        "[lifecycle], [[sla]], [[dispatch]]",
        format!("{:?}", c.cases),
    );
    put(
        "[assessment], [reports]",
        format!("{:?} {:?}", c.assessment, c.weekly),
    );
    put("[mqtt] (and the topics its profiles subscribe)", mqtt(c));
    put("[rtsp]", format!("{:?}", c.rtsp));
    put("[gb26875]", format!("{:?}", c.gb26875));
    put(
        "[gb28181] (other than its devices and civil codes)",
        gb28181(c),
    );
    put(
        "townships, departments and the city (which, and which have a webhook)",
        routes(c),
    );
    parts
}

/// `[mqtt]` as a restart would apply it: its settings, its password's print and the topic
/// filters of its profiles (the profiles' mappings and limits are taken live).
fn mqtt(c: &Config) -> String {
    let Some(m) = &c.mqtt else {
        return "off".into();
    };
    let mut settings = m.clone();
    settings.profiles = Default::default();
    format!(
        "{settings:?} {:?} {:?}",
        m.credentials.as_ref().map(|(_, s)| print(s)),
        c.profiles.filters()
    )
}

/// `[gb28181]` as a restart would apply it — its password by its print; the devices, civil
/// codes and channel townships are taken live.
fn gb28181(c: &Config) -> String {
    let Some(g) = &c.gb28181 else {
        return "off".into();
    };
    let mut settings = g.clone();
    settings.devices = Vec::new();
    settings.civil_codes = Vec::new();
    settings.channels = Vec::new();
    format!("{settings:?} {}", print(&g.password))
}

fn routes(c: &Config) -> String {
    let mut routes: Vec<String> = c
        .registry
        .destinations()
        .iter()
        .map(|d| format!("{}:{}", d.code, d.webhook.is_some()))
        .collect();
    routes.sort();
    routes.join(",")
}
