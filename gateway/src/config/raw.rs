//! The configuration file as written: serde structures with `deny_unknown_fields`, spans kept
//! on every value that is checked after parsing, so errors can name the line.

use serde::Deserialize;
use toml::Spanned;

pub use super::cases::{
    DepartmentEntry, DispatchEntry, LifecycleSection, ReportsSection, SlaEntry,
};
pub use super::registry::{CameraEntry, TownshipEntry, UnitEntry};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub gateway: GatewaySection,
    #[serde(default)]
    pub api: ApiSection,
    #[serde(default)]
    pub health: HealthSection,
    #[serde(default)]
    pub vqd: VqdSection,
    #[serde(default)]
    pub normalize: NormalizeSection,
    #[serde(default)]
    pub linkage: LinkageSection,
    #[serde(default)]
    pub snapshots: SnapshotsSection,
    #[serde(default)]
    pub thresholds: Vec<ThresholdEntry>,
    #[serde(default)]
    pub profiles: Vec<ProfileEntry>,
    #[serde(default)]
    pub outbox: OutboxSection,
    #[serde(default)]
    pub delivery: DeliverySection,
    #[serde(default)]
    pub registry: RegistrySection,
    pub mqtt: Option<MqttSection>,
    #[serde(default)]
    pub rtsp: RtspSection,
    pub gb26875: Option<Gb26875Section>,
    pub gb28181: Option<Gb28181Section>,
    #[serde(default)]
    pub townships: Vec<TownshipEntry>,
    pub city: Option<CitySection>,
    #[serde(default)]
    pub departments: Vec<DepartmentEntry>,
    #[serde(default)]
    pub dispatch: Vec<DispatchEntry>,
    #[serde(default)]
    pub sla: Vec<SlaEntry>,
    #[serde(default)]
    pub lifecycle: LifecycleSection,
    #[serde(default)]
    pub assessment: alerts::assessment::Weights,
    #[serde(default)]
    pub reports: ReportsSection,
    #[serde(default)]
    pub units: Vec<UnitEntry>,
    #[serde(default)]
    pub cameras: Vec<CameraEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySection {
    #[serde(default = "default_data_dir")]
    pub data_dir: Spanned<String>,
    #[serde(default = "default_offset")]
    pub utc_offset: Spanned<String>,
    #[serde(default = "default_log_format")]
    pub log_format: Spanned<String>,
}

impl Default for GatewaySection {
    fn default() -> Self {
        Self {
            data_dir: default_data_dir(),
            utc_offset: default_offset(),
            log_format: default_log_format(),
        }
    }
}

fn default_data_dir() -> Spanned<String> {
    Spanned::new(0..0, "data".into())
}
fn default_offset() -> Spanned<String> {
    Spanned::new(0..0, "+08:00".into())
}
fn default_log_format() -> Spanned<String> {
    Spanned::new(0..0, "text".into())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSection {
    #[serde(default = "default_listen")]
    pub listen: Spanned<String>,
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    #[serde(default = "yes")]
    pub metrics_public: bool,
    #[serde(default)]
    pub tokens: Vec<TokenEntry>,
    #[serde(default = "default_header_timeout_s")]
    pub header_timeout_s: u64,
    #[serde(default = "default_request_timeout_s")]
    pub request_timeout_s: u64,
    #[serde(default = "default_api_max_connections")]
    pub max_connections: usize,
    #[serde(default)]
    pub tls_cert: Option<Spanned<String>>,
    #[serde(default)]
    pub tls_key: Option<Spanned<String>>,
    #[serde(default)]
    pub tls_client_ca: Option<Spanned<String>>,
    #[serde(default)]
    pub cors_origins: Vec<Spanned<String>>,
}

fn default_header_timeout_s() -> u64 {
    10
}
fn default_request_timeout_s() -> u64 {
    30
}
fn default_api_max_connections() -> usize {
    1024
}

impl Default for ApiSection {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            max_body_bytes: default_max_body(),
            metrics_public: true,
            header_timeout_s: default_header_timeout_s(),
            request_timeout_s: default_request_timeout_s(),
            max_connections: default_api_max_connections(),
            tokens: Vec::new(),
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            cors_origins: Vec::new(),
        }
    }
}

fn default_listen() -> Spanned<String> {
    Spanned::new(0..0, "127.0.0.1:8080".into())
}
fn default_max_body() -> usize {
    64 * 1024
}
fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    pub name: Spanned<String>,
    pub token: Option<Spanned<String>>,
    pub token_env: Option<Spanned<String>>,
    pub token_file: Option<Spanned<String>>,
    pub scope: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthSection {
    #[serde(default = "d30")]
    pub camera_offline_after_s: u64,
    #[serde(default = "d10")]
    pub camera_stall_after_s: u64,
    #[serde(default = "d90")]
    pub unit_offline_after_s: u64,
}

impl Default for HealthSection {
    fn default() -> Self {
        Self {
            camera_offline_after_s: 30,
            camera_stall_after_s: 10,
            unit_offline_after_s: 90,
        }
    }
}

fn d10() -> u64 {
    10
}
fn d30() -> u64 {
    30
}
fn d60() -> u64 {
    60
}
fn d90() -> u64 {
    90
}

/// `[vqd]` and the threshold overrides it shares with each `[vqd.profiles.<name>]`: one list of
/// the thresholds' names (they are `cameras::video::vqd::Thresholds`' fields).
macro_rules! vqd_section {
    ($($field:ident),* $(,)?) => {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct VqdSection {
            #[serde(default = "d60")]
            pub interval_s: u64,
            #[serde(default = "d2")]
            pub confirm_samples: u32,
            #[serde(default = "d1")]
            pub decoders: usize,
            #[serde(default = "default_cpu_budget")]
            pub cpu_budget: f64,
            #[serde(default = "d10")]
            pub baseline_samples: u64,
            /// Named threshold sets a camera picks with `vqd_profile`.
            #[serde(default)]
            pub profiles: std::collections::BTreeMap<String, ThresholdOverrides>,
            $(pub $field: Option<f64>,)*
        }

        /// Thresholds set in `[vqd]` or in a profile; the rest as they were.
        #[derive(Debug, Default, Clone, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct ThresholdOverrides {
            $(pub $field: Option<f64>,)*
        }

        impl VqdSection {
            /// The thresholds `[vqd]` itself sets.
            pub fn overrides(&self) -> ThresholdOverrides {
                ThresholdOverrides { $($field: self.$field,)* }
            }
        }

        impl ThresholdOverrides {
            /// `t` with these set.
            pub fn apply(&self, mut t: cameras::video::vqd::Thresholds) -> cameras::video::vqd::Thresholds {
                $(if let Some(x) = self.$field {
                    t.$field = x;
                })*
                t
            }
        }
    };
}

vqd_section!(
    black_luma,
    black_std,
    dark_luma,
    bright_luma,
    min_contrast,
    max_uniform,
    max_edge_width,
    min_sharpness,
    max_frozen_change,
    cast_distance,
    cast_ratio,
    max_covered,
    cast_shift,
    min_view_match,
);

impl Default for VqdSection {
    fn default() -> Self {
        toml::from_str("").expect("defaults")
    }
}

fn d1() -> usize {
    1
}

fn d2() -> u32 {
    2
}

fn default_cpu_budget() -> f64 {
    0.5
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotsSection {
    #[serde(default = "default_snapshot_width")]
    pub max_width: u32,
    #[serde(default = "default_snapshot_quality")]
    pub quality: u8,
    #[serde(default = "default_snapshot_cache_ms")]
    pub cache_ms: u64,
    #[serde(default = "default_snapshot_max_age")]
    pub max_age_s: u64,
    #[serde(default = "default_evidence_days")]
    pub evidence_max_age_days: u64,
    #[serde(default = "default_evidence_mb")]
    pub evidence_max_mb: u64,
}

impl Default for SnapshotsSection {
    fn default() -> Self {
        toml::from_str("").expect("defaults")
    }
}

fn default_snapshot_width() -> u32 {
    1280
}

fn default_snapshot_quality() -> u8 {
    5
}

fn default_snapshot_cache_ms() -> u64 {
    1000
}

fn default_snapshot_max_age() -> u64 {
    10
}

fn default_evidence_days() -> u64 {
    30
}

fn default_evidence_mb() -> u64 {
    1024
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NormalizeSection {
    #[serde(default = "d60")]
    pub dedup_window_s: u64,
}

impl Default for NormalizeSection {
    fn default() -> Self {
        Self { dedup_window_s: 60 }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkageSection {
    #[serde(default = "default_feedback_window")]
    pub feedback_window_s: u64,
    #[serde(default = "default_video_deadline")]
    pub video_deadline_ms: u64,
    #[serde(default = "default_video_kinds")]
    pub video_kinds: Vec<Spanned<String>>,
}

impl Default for LinkageSection {
    fn default() -> Self {
        toml::from_str("").expect("defaults")
    }
}

fn default_read_batch() -> u64 {
    250
}

fn default_video_deadline() -> u64 {
    2000
}

fn default_video_kinds() -> Vec<Spanned<String>> {
    vec![Spanned::new(0..0, "fire.alarm".to_string())]
}

fn default_feedback_window() -> u64 {
    120
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxSection {
    #[serde(default = "default_max_pending")]
    pub max_pending_events: u64,
    #[serde(default = "yes")]
    pub group_commit: bool,
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
    #[serde(default = "default_retention")]
    pub retention_days: u64,
    #[serde(default = "default_cache_mb")]
    pub cache_mb: usize,
    #[serde(default = "default_min_free_mb")]
    pub min_free_mb: u64,
}

impl Default for OutboxSection {
    fn default() -> Self {
        Self {
            max_pending_events: default_max_pending(),
            group_commit: true,
            max_batch: default_max_batch(),
            retention_days: default_retention(),
            cache_mb: default_cache_mb(),
            min_free_mb: default_min_free_mb(),
        }
    }
}

fn default_max_pending() -> u64 {
    2_000_000
}
fn default_max_batch() -> usize {
    4096
}
fn default_cache_mb() -> usize {
    64
}
fn default_min_free_mb() -> u64 {
    256
}
fn default_retention() -> u64 {
    90
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliverySection {
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    #[serde(default = "default_backoff_initial_ms")]
    pub backoff_initial_ms: u64,
    #[serde(default = "default_backoff_max_ms")]
    pub backoff_max_ms: u64,
    #[serde(default = "default_refused_attempts")]
    pub refused_attempts: u32,
    #[serde(default = "yes")]
    pub legacy_signature: bool,
}

fn default_refused_attempts() -> u32 {
    5
}

impl Default for DeliverySection {
    fn default() -> Self {
        Self {
            timeout_ms: default_timeout_ms(),
            connect_timeout_ms: default_connect_timeout_ms(),
            backoff_initial_ms: default_backoff_initial_ms(),
            backoff_max_ms: default_backoff_max_ms(),
            refused_attempts: default_refused_attempts(),
            legacy_signature: true,
        }
    }
}

fn default_timeout_ms() -> u64 {
    5000
}
fn default_connect_timeout_ms() -> u64 {
    3000
}
fn default_backoff_initial_ms() -> u64 {
    500
}
fn default_backoff_max_ms() -> u64 {
    60_000
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrySection {
    pub units_csv: Option<Spanned<String>>,
    pub cameras_csv: Option<Spanned<String>>,
    #[serde(default)]
    pub quarantine_unknown_units: bool,
    #[serde(default)]
    pub profile_files: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookEntry {
    pub url: Spanned<String>,
    pub secret: Option<Spanned<String>>,
    pub secret_env: Option<Spanned<String>>,
    pub secret_file: Option<Spanned<String>>,
    pub timeout_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CitySection {
    pub webhook: WebhookEntry,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttSection {
    pub url: Spanned<String>,
    #[serde(default = "default_client_id")]
    pub client_id: Spanned<String>,
    pub username: Option<String>,
    pub password: Option<Spanned<String>>,
    pub password_env: Option<Spanned<String>>,
    pub password_file: Option<Spanned<String>>,
    pub ca_file: Option<Spanned<String>>,
    #[serde(default)]
    pub topics: Vec<Spanned<String>>,
    #[serde(default = "default_topic_pattern")]
    pub topic_pattern: Spanned<String>,
    #[serde(default = "default_qos")]
    pub qos: Spanned<u8>,
    pub version: Option<Spanned<String>>,
    pub shared_group: Option<Spanned<String>>,
    #[serde(default = "d30")]
    pub keep_alive_s: u64,
    #[serde(default = "default_max_body")]
    pub max_payload_bytes: usize,
    #[serde(default = "default_mqtt_in_flight")]
    pub max_in_flight: usize,
    #[serde(default = "default_backoff_initial_ms")]
    pub reconnect_initial_ms: u64,
    #[serde(default = "default_reconnect_max_ms")]
    pub reconnect_max_ms: u64,
}

fn default_client_id() -> Spanned<String> {
    Spanned::new(0..0, "gateway-1".into())
}
fn default_topic_pattern() -> Spanned<String> {
    Spanned::new(0..0, "fire/{unit_id}/{channel}".into())
}
fn default_qos() -> Spanned<u8> {
    Spanned::new(0..0, 1)
}
fn default_mqtt_in_flight() -> usize {
    1024
}
fn default_reconnect_max_ms() -> u64 {
    30_000
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdEntry {
    pub analog_type: Spanned<u8>,
    pub component_type: Option<u8>,
    pub above: Option<f64>,
    pub clear_below: Option<f64>,
    pub below: Option<f64>,
    pub clear_above: Option<f64>,
}

/// A file of vendor profiles (`[registry] profile_files`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileFile {
    #[serde(default)]
    pub profiles: Vec<ProfileEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileEntry {
    pub name: Spanned<String>,
    pub topic: Option<Spanned<String>>,
    pub unit_path: Option<Spanned<String>>,
    pub time_path: Option<Spanned<String>>,
    pub time_format: Option<Spanned<String>>,
    #[serde(default = "one")]
    pub system_type: u8,
    #[serde(default = "one")]
    pub system_addr: u8,
    #[serde(default)]
    pub fields: Vec<FieldEntry>,
}

fn one() -> u8 {
    1
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldEntry {
    pub path: Spanned<String>,
    #[serde(default)]
    pub optional: bool,
    pub system_type: Option<u8>,
    pub system_addr: Option<u8>,
    pub component_type: Option<u8>,
    pub component_addr: Option<u32>,
    pub analog_type: Option<Spanned<u8>>,
    pub scale: Option<f64>,
    pub offset: Option<f64>,
    pub above: Option<f64>,
    pub clear_below: Option<f64>,
    pub below: Option<f64>,
    pub clear_above: Option<f64>,
    pub status: Option<Spanned<std::collections::BTreeMap<String, FlagNames>>>,
    pub description: Option<String>,
}

/// One status flag or several.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum FlagNames {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RtspSection {
    #[serde(default = "yes")]
    pub enabled: bool,
    pub transport: Option<Spanned<String>>,
    #[serde(default = "d10")]
    pub step_timeout_s: u64,
    #[serde(default = "d60")]
    pub reconnect_max_s: u64,
    #[serde(default = "d10")]
    pub degrade_after_s: u64,
    #[serde(default = "default_min_fps_ratio")]
    pub min_fps_ratio: f64,
    #[serde(default = "default_max_loss_ratio")]
    pub max_loss_ratio: f64,
    #[serde(default = "d10")]
    pub max_keyframe_interval_s: u64,
    #[serde(default = "default_read_batch")]
    pub read_batch_ms: u64,
    #[serde(default = "default_events_per_hour")]
    pub events_per_hour: u32,
}

impl Default for RtspSection {
    fn default() -> Self {
        Self {
            enabled: true,
            transport: None,
            step_timeout_s: 10,
            reconnect_max_s: 60,
            degrade_after_s: 10,
            min_fps_ratio: default_min_fps_ratio(),
            max_loss_ratio: default_max_loss_ratio(),
            max_keyframe_interval_s: 10,
            read_batch_ms: default_read_batch(),
            events_per_hour: default_events_per_hour(),
        }
    }
}

fn default_min_fps_ratio() -> f64 {
    0.5
}

fn default_max_loss_ratio() -> f64 {
    0.05
}

fn default_events_per_hour() -> u32 {
    12
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gb26875Section {
    pub listen: Spanned<String>,
    #[serde(default = "d90")]
    pub idle_timeout_s: u64,
    #[serde(default = "default_gb_login_timeout_s")]
    pub login_timeout_s: u64,
    #[serde(default = "default_gb_max_connections")]
    pub max_connections: usize,
    #[serde(default = "default_gb_max_per_peer")]
    pub max_connections_per_peer: usize,
    #[serde(default = "default_gb_max_frames")]
    pub max_frames_per_s: u32,
}

fn default_gb_max_per_peer() -> usize {
    256
}

fn default_gb_login_timeout_s() -> u64 {
    10
}

fn default_gb_max_frames() -> u32 {
    200
}

fn default_gb_max_connections() -> usize {
    20_000
}

/// `[gb28181]`: the GB/T 28181 platform devices register to.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gb28181Section {
    pub listen_udp: Option<Spanned<String>>,
    pub listen_tcp: Option<Spanned<String>>,
    pub sip_id: Spanned<String>,
    pub domain: Option<Spanned<String>>,
    pub password: Option<Spanned<String>>,
    pub password_env: Option<Spanned<String>>,
    pub password_file: Option<Spanned<String>>,
    #[serde(default = "d60")]
    pub keepalive_timeout_s: u64,
    #[serde(default = "d3u32")]
    pub keepalive_misses: u32,
    /// State-change events per channel per hour at most.
    #[serde(default = "d12u32")]
    pub events_per_hour: u32,
    #[serde(default = "d600")]
    pub subscribe_expires_s: u64,
    #[serde(default = "default_gb_max_connections")]
    pub max_connections: usize,
    #[serde(default = "d30")]
    pub idle_timeout_s: u64,
    #[serde(default = "d3600")]
    pub vqd_interval_s: u64,
    /// How devices send pulled streams: `tcp_passive`, `tcp_active` or `udp`.
    #[serde(default)]
    pub media: ::gb28181::media::MediaTransport,
    /// Civil-code prefix → township code.
    #[serde(default)]
    pub civil_codes: std::collections::BTreeMap<String, Spanned<String>>,
    /// Channel id → township code (before the device's and the civil code's).
    #[serde(default)]
    pub channels: std::collections::BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    pub devices: Vec<Gb28181DeviceEntry>,
}

/// `[[gb28181.devices]]`: a device allowed to register.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gb28181DeviceEntry {
    pub id: Spanned<String>,
    pub township: Option<Spanned<String>>,
    pub name: Option<String>,
    pub password: Option<Spanned<String>>,
    pub password_env: Option<Spanned<String>>,
    pub password_file: Option<Spanned<String>>,
    /// This device's own way of sending streams.
    pub media: Option<::gb28181::media::MediaTransport>,
}

fn d3u32() -> u32 {
    3
}

fn d12u32() -> u32 {
    12
}

fn d600() -> u64 {
    600
}

fn d3600() -> u64 {
    3600
}
