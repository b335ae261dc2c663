//! The registry sections — `[[townships]]`, `[[cameras]]` and `[[units]]` (TOML, then the CSV
//! registries) — as written and as checked.

use super::error::At;
use super::place::{ContactsEntry, LocationEntry, PlaceDraft};
use super::raw::WebhookEntry;
use super::{csv, is_code, parse_offset, SecretDraft, Validator, Valued};
use alerts::place::Contacts;
use alerts::registry::{Camera, CameraLink, Township, Unit};
use serde::Deserialize;
use std::collections::HashMap;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TownshipEntry {
    pub code: Spanned<String>,
    pub name: String,
    pub webhook: Option<WebhookEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitEntry {
    pub id: Spanned<String>,
    pub name: String,
    pub township: Spanned<String>,
    pub heartbeat_timeout_s: Option<u64>,
    pub gb26875_address: Option<u64>,
    #[serde(default)]
    pub cameras: Vec<Spanned<String>>,
    pub utc_offset: Option<Spanned<String>>,
    #[serde(default)]
    pub gb26875_peers: Vec<Spanned<String>>,
    #[serde(default)]
    pub camera_links: Vec<CameraLinkEntry>,
    pub address: Option<String>,
    pub location: Option<LocationEntry>,
    pub contacts: Option<ContactsEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraLinkEntry {
    pub system_addr: Option<u8>,
    pub component_addr: u32,
    pub cameras: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraEntry {
    pub id: Spanned<String>,
    pub name: String,
    pub township: Spanned<String>,
    pub url: Spanned<String>,
    pub username: Option<String>,
    pub password: Option<Spanned<String>>,
    pub password_env: Option<Spanned<String>>,
    pub password_file: Option<Spanned<String>>,
    pub onvif_events: Option<Vec<Spanned<String>>>,
    pub vqd_interval_s: Option<u64>,
    pub vqd_profile: Option<Spanned<String>>,
    pub address: Option<String>,
    pub location: Option<LocationEntry>,
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
    pub place: PlaceDraft,
    pub contacts: Contacts,
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
    /// Picture-check thresholds: a `[vqd.profiles.<name>]`.
    pub vqd_profile: Option<Valued<String>>,
    pub place: PlaceDraft,
}

/// Units that link cameras of another township: valid (a camera may watch a unit across a
/// boundary), but its alarms' snapshots then go to the unit's township, not the camera's.
pub(super) fn cross_township_links(units: &[Unit], cameras: &[Camera]) -> Vec<String> {
    let township: HashMap<&str, &str> = cameras
        .iter()
        .map(|c| (c.id.as_str(), c.township.as_str()))
        .collect();
    let mut out = Vec::new();
    for u in units {
        let linked = u
            .cameras
            .iter()
            .chain(u.camera_links.iter().flat_map(|l| &l.cameras));
        for c in linked {
            if let Some(t) = township.get(c.as_str()).filter(|t| **t != u.township) {
                out.push(format!(
                    "unit `{}` (township `{}`) links camera `{c}` of township `{t}`: the snapshots of its alarms are shown to `{}` (and to the departments its alarms are assigned to), not to `{t}`",
                    u.id, u.township, u.township
                ));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The township codes the config defines, for the checks of everything that names one.
pub(super) struct Townships {
    codes: HashMap<String, At>,
}

impl Townships {
    /// Whether `code` is defined.
    pub(super) fn contains(&self, code: &str) -> bool {
        self.codes.contains_key(code)
    }

    /// Every code, sorted, for error messages.
    pub(super) fn known(&self) -> String {
        let mut v: Vec<&str> = self.codes.keys().map(String::as_str).collect();
        v.sort();
        v.join(", ")
    }
}

impl Validator {
    /// `[[townships]]`: codes unique and well-formed, names given, webhooks valid.
    pub(super) fn townships(&mut self, raw: &[TownshipEntry]) -> (Vec<Township>, Townships) {
        let mut townships = Vec::new();
        let mut codes: HashMap<String, At> = HashMap::new();
        for t in raw {
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
        (townships, Townships { codes })
    }

    /// An error unless `v` names a defined township.
    pub(super) fn check_township(&mut self, known: &Townships, v: &Valued<String>, what: &str) {
        if !known.contains(&v.value) {
            self.err(
                v.at.clone(),
                format!(
                    "{what} `township`: township `{}` does not exist (known: {})",
                    v.value,
                    known.known()
                ),
            );
        }
    }

    /// `[[cameras]]` and `[registry] cameras_csv`; also the ids seen, for the units' checks.
    pub(super) fn cameras(
        &mut self,
        raw: &[CameraEntry],
        csv_path: Option<&Spanned<String>>,
        known: &Townships,
    ) -> (Vec<Camera>, HashMap<String, At>) {
        let mut drafts: Vec<CameraDraft> = raw.iter().map(|c| self.camera_draft(c)).collect();
        if let Some(p) = csv_path {
            match csv::cameras(&self.path(p.get_ref())) {
                Ok((more, warnings)) => {
                    drafts.extend(more);
                    self.warnings.extend(warnings);
                }
                Err(errs) => {
                    self.cameras_unread = true;
                    self.errors.extend(errs);
                }
            }
        }
        let mut ids: HashMap<String, At> = HashMap::new();
        let cameras = drafts
            .iter()
            .map(|c| {
                self.register_id("camera", &c.id, &mut ids);
                self.check_township(known, &c.township, &format!("camera `{}`", c.id.value));
                self.camera(c)
            })
            .collect();
        (cameras, ids)
    }

    fn camera_draft(&self, c: &CameraEntry) -> CameraDraft {
        CameraDraft {
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
            vqd_profile: c.vqd_profile.as_ref().map(|p| self.valued(p)),
            place: PlaceDraft::toml(&c.address, &c.location, &self.at(&c.id), self),
        }
    }

    /// One camera's own checks: an rtsp URL without credentials, its password, its ONVIF
    /// event kinds.
    fn camera(&mut self, c: &CameraDraft) -> Camera {
        let id = &c.id.value;
        match reqwest::Url::parse(&c.url.value) {
            Ok(u) if u.scheme() != "rtsp" && u.scheme() != "rtsps" => self.err(
                c.url.at.clone(),
                format!("camera `{id}` `url`: scheme `{}` is not rtsp", u.scheme()),
            ),
            Ok(u) if !u.username().is_empty() || u.password().is_some() => self.err(
                c.url.at.clone(),
                format!("camera `{id}` `url`: credentials must not be in the URL; use `username` and `password_env` / `password_file`"),
            ),
            Ok(_) => {}
            Err(e) => self.err(c.url.at.clone(), format!("camera `{id}` `url`: not a URL ({e})")),
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
                            "camera `{id}` `onvif_events`: `{other}` is not \"motion\" or \"tamper\""
                        ),
                    ),
                }
            }
        }
        if let Some(p) = c.vqd_profile.as_ref() {
            if !self.vqd_profiles.contains(&p.value) {
                self.err(
                    p.at.clone(),
                    format!("camera `{id}` `vqd_profile`: no [vqd.profiles.{}]", p.value),
                );
            }
        }
        Camera {
            id: id.clone(),
            name: c.name.clone(),
            township: c.township.value.clone(),
            url: c.url.value.clone(),
            username: c.username.clone(),
            password,
            motion_events,
            tamper_events,
            vqd_interval_s: c.vqd_interval_s,
            vqd_profile: c.vqd_profile.as_ref().map(|p| p.value.clone()),
            place: self.place(&format!("camera `{id}`"), &c.place),
            gb28181: None,
        }
    }

    /// `[[units]]` and `[registry] units_csv`: cameras they name must exist, GB/T 26875.3
    /// addresses fit in 6 bytes and are unique.
    pub(super) fn units(
        &mut self,
        raw: &[UnitEntry],
        csv_path: Option<&Spanned<String>>,
        known: &Townships,
        camera_ids: &HashMap<String, At>,
    ) -> Vec<Unit> {
        let mut drafts: Vec<UnitDraft> = raw.iter().map(|u| self.unit_draft(u)).collect();
        if let Some(p) = csv_path {
            match csv::units(&self.path(p.get_ref())) {
                Ok((more, warnings)) => {
                    drafts.extend(more);
                    self.warnings.extend(warnings);
                }
                Err(errs) => self.errors.extend(errs),
            }
        }
        let mut ids: HashMap<String, At> = HashMap::new();
        let mut addresses: HashMap<u64, String> = HashMap::new();
        drafts
            .iter()
            .map(|u| {
                self.register_id("unit", &u.id, &mut ids);
                self.check_township(known, &u.township, &format!("unit `{}`", u.id.value));
                self.unit(u, camera_ids, &mut addresses)
            })
            .collect()
    }

    fn unit_draft(&self, u: &UnitEntry) -> UnitDraft {
        UnitDraft {
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
            place: PlaceDraft::toml(&u.address, &u.location, &self.at(&u.id), self),
            contacts: u.contacts.as_ref().map(Contacts::from).unwrap_or_default(),
        }
    }

    /// One unit's own checks.
    fn unit(
        &mut self,
        u: &UnitDraft,
        camera_ids: &HashMap<String, At>,
        addresses: &mut HashMap<u64, String>,
    ) -> Unit {
        let id = &u.id.value;
        let linked = u.camera_links.iter().flat_map(|l| &l.2);
        for c in u.cameras.iter().chain(linked) {
            let channel = self.gb28181_channels && ::gb28181::id::is_id(&c.value);
            if !camera_ids.contains_key(&c.value) && channel {
                self.warnings.push(format!(
                    "unit `{id}` `cameras`: `{}` is not a configured camera; taken as a GB/T 28181 channel",
                    c.value
                ));
            } else if !camera_ids.contains_key(&c.value) && !self.cameras_unread {
                self.err(
                    c.at.clone(),
                    format!("unit `{id}` `cameras`: camera `{}` does not exist", c.value),
                );
            }
        }
        if let Some(a) = &u.gb26875_address {
            self.gb26875_address(id, a, addresses);
        }
        let utc_offset = u.utc_offset.as_ref().and_then(|o| {
            let parsed = parse_offset(&o.value);
            if parsed.is_none() {
                self.err(
                    o.at.clone(),
                    format!(
                        "unit `{id}` `utc_offset`: `{}` is not an offset like `+08:00`",
                        o.value
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
                        "unit `{id}` `gb26875_peers`: `{}` is not an IP address",
                        p.value
                    ),
                ),
            }
        }
        Unit {
            id: id.clone(),
            name: u.name.clone(),
            township: u.township.value.clone(),
            heartbeat_timeout_s: u.heartbeat_timeout_s,
            gb26875_address: u.gb26875_address.as_ref().map(|a| a.value),
            cameras: u.cameras.iter().map(|c| c.value.clone()).collect(),
            camera_links: u
                .camera_links
                .iter()
                .map(|(system_addr, component_addr, cams)| CameraLink {
                    system_addr: *system_addr,
                    component_addr: *component_addr,
                    cameras: cams.iter().map(|c| c.value.clone()).collect(),
                })
                .collect(),
            utc_offset,
            gb26875_peers,
            place: self.place(&format!("unit `{id}`"), &u.place),
            contacts: u.contacts.clone(),
        }
    }

    fn gb26875_address(&mut self, unit: &str, a: &Valued<u64>, used: &mut HashMap<u64, String>) {
        if a.value >= 1 << 48 {
            self.err(
                a.at.clone(),
                format!(
                    "unit `{unit}` `gb26875_address`: {} does not fit in 6 bytes",
                    a.value
                ),
            );
        }
        if let Some(other) = used.insert(a.value, unit.to_string()) {
            self.err(
                a.at.clone(),
                format!(
                    "unit `{unit}` `gb26875_address`: {} is already used by unit `{other}`",
                    a.value
                ),
            );
        }
    }
}
