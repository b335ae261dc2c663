//! The registry: townships, units and cameras. Loaded and validated by the gateway's config
//! loader, then shared read-only; a reload replaces it whole ([`LiveRegistry`]).

use crate::secret::Secret;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// A township command center and where its events go.
#[derive(Debug, Clone)]
pub struct Township {
    /// Registry code (`lanjiang`).
    pub code: String,
    /// Display name (`兰江街道`).
    pub name: String,
    /// Its webhook; `None` when the township only pulls events through the API.
    pub webhook: Option<Webhook>,
}

/// A department (派驻机构: fire brigade, police station, …) that townships assign events to.
#[derive(Debug, Clone)]
pub struct Department {
    /// Code (`fire-brigade`).
    pub code: String,
    /// Display name (`兰溪市消防救援大队`).
    pub name: String,
    /// Townships it serves; empty = all.
    pub townships: Vec<String>,
    /// Where its assignments go; `None` when it works through the API only.
    pub webhook: Option<Webhook>,
}

impl Department {
    /// Whether it serves `township`.
    pub fn serves(&self, township: &str) -> bool {
        self.townships.is_empty() || self.townships.iter().any(|t| t == township)
    }

    /// Its delivery queue.
    pub fn route(&self) -> String {
        department_route(&self.code)
    }
}

/// Registry ids are at most this many characters (the config checks it): anything longer is
/// unknown by definition, and is shown cut to this length.
pub const MAX_ID_CHARS: usize = 64;

/// An id as it may be shown, logged or kept: cut to [`MAX_ID_CHARS`] (with `…`) — an id from the
/// wire can be megabytes long.
pub fn shown_id(id: &str) -> String {
    match id.char_indices().nth(MAX_ID_CHARS) {
        Some((cut, _)) => format!("{}…", &id[..cut]),
        None => id.to_string(),
    }
}

/// The delivery queue of a department.
pub fn department_route(code: &str) -> String {
    format!("dept:{code}")
}

/// The delivery queue of the city center.
pub const CITY_ROUTE: &str = "city";

/// A webhook endpoint.
#[derive(Debug, Clone)]
pub struct Webhook {
    /// `http://` or `https://` URL.
    pub url: String,
    /// HMAC-SHA256 key for `X-Gateway-Signature`.
    pub secret: Secret,
    /// Per-request timeout; the delivery default when `None`.
    pub timeout: Option<Duration>,
}

/// A key fire-safety unit.
#[derive(Debug, Clone, PartialEq)]
pub struct Unit {
    /// Registry id (`unit-0001`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Township code.
    pub township: String,
    /// Silence after which the unit counts as offline.
    pub heartbeat_timeout_s: Option<u64>,
    /// The GB/T 26875.3 transmission device's address.
    pub gb26875_address: Option<u64>,
    /// Cameras linked for video verification.
    pub cameras: Vec<String>,
    /// Cameras for particular components or zones (they win over `cameras`).
    pub camera_links: Vec<CameraLink>,
    /// The time zone of its devices' clocks (`None`: the gateway's).
    pub utc_offset: Option<chrono::FixedOffset>,
    /// When not empty, its GB/T 26875.3 device may connect from these addresses only.
    pub gb26875_peers: Vec<std::net::IpAddr>,
    /// Where it is.
    pub place: crate::place::Place,
    /// Whom to call there (personal data).
    pub contacts: crate::place::Contacts,
}

/// Cameras watching one component (a detector, a call point) or one zone of a unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraLink {
    /// The fire system's address (any system when `None`).
    pub system_addr: Option<u8>,
    /// The component's address.
    pub component_addr: u32,
    /// The cameras.
    pub cameras: Vec<String>,
}

impl Unit {
    /// The cameras to look through for a report from this component: those linked to it,
    /// else the unit's.
    pub fn cameras_for(&self, system_addr: u8, component_addr: Option<u32>) -> &[String] {
        component_addr
            .and_then(|c| {
                self.camera_links.iter().find(|l| {
                    l.component_addr == c && l.system_addr.is_none_or(|s| s == system_addr)
                })
            })
            .map_or(&self.cameras, |l| &l.cameras)
    }
}

/// A camera.
#[derive(Debug, Clone, PartialEq)]
pub struct Camera {
    /// Registry id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Township code.
    pub township: String,
    /// RTSP URL without credentials.
    pub url: String,
    /// RTSP username.
    pub username: Option<String>,
    /// RTSP password.
    pub password: Option<Secret>,
    /// Raise `camera.motion` from the camera's ONVIF metadata stream (off by default).
    pub motion_events: bool,
    /// Raise `camera.tamper` from the camera's ONVIF metadata stream (on by default).
    pub tamper_events: bool,
    /// Picture-check interval of this camera, seconds (`None`: the `[vqd]` default; 0: off).
    pub vqd_interval_s: Option<u64>,
    /// The `[vqd.profiles.<name>]` whose thresholds this camera is judged by (`None`: `[vqd]`'s).
    pub vqd_profile: Option<String>,
    /// Where it is.
    pub place: crate::place::Place,
    /// For a channel of a GB/T 28181 device: the device's id (the camera is watched through
    /// the device's registration and catalog, not over RTSP; `url` is empty).
    pub gb28181: Option<String>,
}

impl Camera {
    /// The protocol it is watched over.
    pub fn protocol(&self) -> crate::signal::Protocol {
        match self.gb28181 {
            Some(_) => crate::signal::Protocol::Gb28181,
            None => crate::signal::Protocol::Rtsp,
        }
    }
}

/// The whole registry, indexed.
#[derive(Debug, Default, Clone)]
pub struct Registry {
    townships: Vec<Arc<Township>>,
    township_index: HashMap<String, usize>,
    units: HashMap<String, Arc<Unit>>,
    units_by_township: HashMap<String, Vec<Arc<Unit>>>,
    units_by_address: HashMap<u64, Arc<Unit>>,
    cameras: HashMap<String, Arc<Camera>>,
    departments: Vec<Arc<Department>>,
    city: Option<Webhook>,
}

impl Registry {
    /// Builds an index over already-validated entries (the config loader checks references and
    /// uniqueness and reports errors with file and line; this only indexes).
    pub fn new(townships: Vec<Township>, units: Vec<Unit>, cameras: Vec<Camera>) -> Self {
        let townships: Vec<Arc<Township>> = townships.into_iter().map(Arc::new).collect();
        let township_index = townships
            .iter()
            .enumerate()
            .map(|(i, t)| (t.code.clone(), i))
            .collect();
        let units: HashMap<String, Arc<Unit>> = units
            .into_iter()
            .map(|u| (u.id.clone(), Arc::new(u)))
            .collect();
        let mut units_by_township: HashMap<String, Vec<Arc<Unit>>> = HashMap::new();
        for u in units.values() {
            units_by_township
                .entry(u.township.clone())
                .or_default()
                .push(u.clone());
        }
        for list in units_by_township.values_mut() {
            list.sort_by(|a, b| a.id.cmp(&b.id));
        }
        let units_by_address = units
            .values()
            .filter_map(|u| Some((u.gb26875_address?, u.clone())))
            .collect();
        Self {
            townships,
            township_index,
            units,
            units_by_township,
            units_by_address,
            cameras: cameras
                .into_iter()
                .map(|c| (c.id.clone(), Arc::new(c)))
                .collect(),
            departments: Vec::new(),
            city: None,
        }
    }

    /// With departments (already validated).
    pub fn with_departments(mut self, departments: Vec<Department>) -> Self {
        self.departments = departments.into_iter().map(Arc::new).collect();
        self
    }

    /// With the city center's webhook.
    pub fn with_city(mut self, city: Option<Webhook>) -> Self {
        self.city = city;
        self
    }

    /// The same registry with the GB/T 28181 channels replaced by `channels` (cameras
    /// discovered from the devices' catalogs; the configured cameras stay as they are).
    pub fn with_channels(&self, channels: impl IntoIterator<Item = Arc<Camera>>) -> Self {
        let mut r = self.clone();
        r.cameras.retain(|_, c| c.gb28181.is_none());
        for c in channels {
            r.cameras.entry(c.id.clone()).or_insert(c);
        }
        r
    }

    /// Departments in configuration order.
    pub fn departments(&self) -> &[Arc<Department>] {
        &self.departments
    }

    /// The department with this code.
    pub fn department(&self, code: &str) -> Option<&Arc<Department>> {
        self.departments.iter().find(|d| d.code == code)
    }

    /// The city center's webhook.
    pub fn city(&self) -> Option<&Webhook> {
        self.city.as_ref()
    }

    /// The webhook of a delivery queue (a township's code, `dept:<code>` or `city`).
    pub fn webhook(&self, route: &str) -> Option<&Webhook> {
        if route == CITY_ROUTE {
            return self.city.as_ref();
        }
        match route.strip_prefix("dept:") {
            Some(code) => self.department(code)?.webhook.as_ref(),
            None => self.township(route)?.webhook.as_ref(),
        }
    }

    /// Every delivery queue with its webhook: each township's, each department's
    /// (`dept:<code>`) and the city's (`city`), for the delivery workers.
    pub fn destinations(&self) -> Vec<Arc<Township>> {
        let departments = self.departments.iter().map(|d| Township {
            code: d.route(),
            name: d.name.clone(),
            webhook: d.webhook.clone(),
        });
        let city = self.city.iter().map(|w| Township {
            code: CITY_ROUTE.to_string(),
            name: "市综治中心".to_string(),
            webhook: Some(w.clone()),
        });
        self.townships
            .iter()
            .cloned()
            .chain(departments.chain(city).map(Arc::new))
            .collect()
    }

    /// Townships in configuration order.
    pub fn townships(&self) -> &[Arc<Township>] {
        &self.townships
    }

    /// Whether events of township `code` are delivered (it has a webhook); a township without
    /// one reads its events through the API.
    pub fn delivers_to(&self, code: &str) -> bool {
        self.township(code).is_some_and(|t| t.webhook.is_some())
    }

    /// A township by code.
    pub fn township(&self, code: &str) -> Option<&Arc<Township>> {
        self.township_index.get(code).map(|&i| &self.townships[i])
    }

    /// A unit by id.
    pub fn unit(&self, id: &str) -> Option<&Arc<Unit>> {
        self.units.get(id)
    }

    /// The unit whose GB/T 26875.3 transmission device has this address (0 is an address).
    pub fn unit_by_address(&self, address: u64) -> Option<&Arc<Unit>> {
        self.units_by_address.get(&address)
    }

    /// A camera by id.
    pub fn camera(&self, id: &str) -> Option<&Arc<Camera>> {
        self.cameras.get(id)
    }

    /// All units (unordered).
    pub fn units(&self) -> impl Iterator<Item = &Arc<Unit>> {
        self.units.values()
    }

    /// The units of a township, by id.
    pub fn units_in(&self, township: &str) -> &[Arc<Unit>] {
        self.units_by_township
            .get(township)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// All cameras (unordered).
    pub fn cameras(&self) -> impl Iterator<Item = &Arc<Camera>> {
        self.cameras.values()
    }

    /// Number of units.
    pub fn unit_count(&self) -> usize {
        self.units.len()
    }

    /// Number of cameras.
    pub fn camera_count(&self) -> usize {
        self.cameras.len()
    }
}

/// The registry in use: readers take the current one (an `Arc`, kept as long as they need it),
/// a config reload puts a new one in its place.
pub type LiveRegistry = crate::live::Live<Registry>;
