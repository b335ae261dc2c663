//! The devices and their channels, and what their liveness says — a pure core: every call
//! takes `now`; [`Devices::tick`] returns what changed as camera observations for the
//! pipeline, exactly like an RTSP camera's health.
//!
//! * A device is **online** from a successful REGISTER until it unregisters (`Expires: 0`),
//!   its registration expires, or `misses` keepalive periods pass without a keepalive (or a
//!   new REGISTER). A keepalive while the registration holds brings it back online.
//! * A **channel**'s state is the device's and its own: device online and channel `ON` →
//!   `online`; channel `OFF`/`VLOST`/`DEFECT` → `offline` (reason `channel_off` …); a status
//!   not known yet → `unknown` (never guessed online); device offline → `offline` with the
//!   device's reason (`keepalive_timeout`, `unregistered`, `registration_expired`).
//! * Only channels mapped to a township are watched (the source maps them); the first look at
//!   a channel that is online tells nobody, anything else that changes is a state change.

use crate::manscdp::{CatalogItem, Charset};
use crate::sip::Peer;
use alerts::camera::{CameraObservation, CameraState, Observed, StateChange, StreamMeasures};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How liveness is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LivenessConfig {
    /// The keepalive period devices are set to (a keepalive not seen within it is a miss).
    pub keepalive_timeout: Duration,
    /// Missed periods in a row before a device is offline.
    pub keepalive_misses: u32,
    /// State-change events per channel per hour at most (a flapping channel); changes beyond
    /// are counted, and the township hears the state once the budget refills.
    pub events_per_hour: u32,
}

impl Default for LivenessConfig {
    fn default() -> Self {
        Self {
            keepalive_timeout: Duration::seconds(60),
            keepalive_misses: 3,
            events_per_hour: 12,
        }
    }
}

/// One registered device (an IPC, an NVR, a lower platform).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Device {
    /// Its 20-digit id.
    pub id: String,
    /// Where it registered from (requests to it go there).
    pub peer: Peer,
    /// Registered at.
    pub registered_at: DateTime<Utc>,
    /// The registration ends at.
    pub expires_at: DateTime<Utc>,
    /// Its last sign of life (REGISTER or keepalive).
    pub last_seen: DateTime<Utc>,
    /// Keepalives received.
    pub keepalives: u64,
    /// The last keepalive's `Status` (`OK`, `ERROR`).
    pub status: Option<String>,
    /// Sub-devices the last keepalive listed as faulty.
    pub faulty: Vec<String>,
    /// How it writes its bodies (queries to it are written the same way).
    pub charset: Charset,
    /// `User-Agent`, as sent.
    pub user_agent: Option<String>,
    /// Its channels, by id.
    pub channels: BTreeMap<String, Channel>,
    /// DeviceInfo's answer (name, manufacturer, model, firmware…).
    pub info: serde_json::Map<String, serde_json::Value>,
    /// DeviceStatus's answer.
    pub device_status: serde_json::Map<String, serde_json::Value>,
    /// When the last whole catalog came.
    pub catalog_at: Option<DateTime<Utc>>,
    /// Unregistered (`Expires: 0`) and not registered since.
    pub unregistered: bool,
    /// The last state the tick judged (`None`: not yet).
    #[serde(skip)]
    pub online: Option<bool>,
}

/// A channel of a device.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Channel {
    /// What the catalog says of it.
    pub item: CatalogItem,
    /// On (`Some(true)`), off, or not known.
    pub on: Option<bool>,
    /// Why it is off (`channel_off`, `vlost`, `defect`), as the device said.
    pub off_reason: Option<String>,
    /// The township it belongs to (`None`: not mapped, not watched).
    pub township: Option<String>,
    /// The state the township last heard (`None`: nothing yet).
    #[serde(skip)]
    pub reported: Option<CameraState>,
    /// Since when the township's last heard state holds.
    #[serde(skip)]
    pub reported_since: Option<DateTime<Utc>>,
    /// The state judged at the last tick, and since when.
    #[serde(skip)]
    pub state: Option<(CameraState, DateTime<Utc>)>,
    /// The event budget left, and when it was last refilled.
    #[serde(skip)]
    pub budget: Option<(f64, DateTime<Utc>)>,
    /// State changes held back by the event budget.
    #[serde(skip)]
    pub suppressed: u64,
}

/// Why a keepalive was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotRegistered {
    /// Never registered here.
    Unknown,
    /// Its registration has ended: it must register again.
    Expired,
}

/// Every device that registered.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Devices {
    /// By id.
    pub by_id: BTreeMap<String, Device>,
}

impl Devices {
    /// A successful REGISTER (or refresh). Returns the old address when it moved.
    pub fn registered(
        &mut self,
        id: &str,
        peer: Peer,
        expires: Duration,
        user_agent: Option<&str>,
        now: DateTime<Utc>,
    ) -> Option<Peer> {
        let d = self.by_id.entry(id.to_string()).or_insert_with(|| Device {
            id: id.to_string(),
            peer,
            registered_at: now,
            expires_at: now,
            last_seen: now,
            keepalives: 0,
            status: None,
            faulty: Vec::new(),
            charset: Charset::default(),
            user_agent: None,
            channels: BTreeMap::new(),
            info: serde_json::Map::new(),
            device_status: serde_json::Map::new(),
            catalog_at: None,
            unregistered: false,
            online: None,
        });
        let moved = (d.peer != peer).then_some(d.peer);
        d.peer = peer;
        if d.unregistered || d.expires_at <= now {
            d.registered_at = now;
        }
        d.expires_at = now + expires;
        d.last_seen = now;
        d.unregistered = false;
        if let Some(ua) = user_agent {
            d.user_agent = Some(ua.chars().take(128).collect());
        }
        moved
    }

    /// `Expires: 0`: offline at once.
    pub fn unregistered(&mut self, id: &str, now: DateTime<Utc>) {
        if let Some(d) = self.by_id.get_mut(id) {
            d.unregistered = true;
            d.expires_at = now;
        }
    }

    /// A keepalive. Returns the old address when it came from a new one (a NAT rebinding).
    pub fn keepalive(
        &mut self,
        id: &str,
        peer: Peer,
        status: Option<&str>,
        faulty: Vec<String>,
        now: DateTime<Utc>,
    ) -> Result<Option<Peer>, NotRegistered> {
        let d = self.by_id.get_mut(id).ok_or(NotRegistered::Unknown)?;
        if d.unregistered || d.expires_at <= now {
            return Err(NotRegistered::Expired);
        }
        let moved = (d.peer != peer).then_some(d.peer);
        d.peer = peer;
        d.last_seen = now;
        d.keepalives += 1;
        d.status = status.map(|s| s.chars().take(16).collect());
        d.faulty = faulty;
        Ok(moved)
    }

    /// Catalog items (a page of a response, or a NOTIFY's changes), each channel mapped by
    /// `township_of`. Items of other kinds (regions, groups, alarm inputs) are not kept.
    pub fn catalog(
        &mut self,
        id: &str,
        items: Vec<CatalogItem>,
        township_of: impl Fn(&Device, &CatalogItem) -> Option<String>,
    ) {
        let Some(d) = self.by_id.get_mut(id) else {
            return;
        };
        for item in items {
            if !crate::id::is_camera(&item.id) {
                continue;
            }
            let event = item.event.as_deref().map(str::to_ascii_uppercase);
            if event.as_deref() == Some("DEL") {
                d.channels.remove(&item.id);
                continue;
            }
            // a status change carries the id and the event only: keep what the catalog said
            let word = match event.as_deref() {
                Some("ON" | "OFF" | "VLOST" | "DEFECT") => event.clone(),
                _ => item.status.clone(),
            };
            let on = word.as_deref().and_then(crate::manscdp::status_on);
            let off_reason =
                word.filter(|_| on == Some(false))
                    .map(|w| match w.to_ascii_uppercase().as_str() {
                        "VLOST" => "vlost".to_string(),
                        "DEFECT" => "defect".to_string(),
                        _ => "channel_off".to_string(),
                    });
            let township = township_of(d, &item);
            let status_only = matches!(event.as_deref(), Some("ON" | "OFF" | "VLOST" | "DEFECT"));
            match d.channels.get_mut(&item.id) {
                Some(c) => {
                    if !status_only {
                        c.item = item;
                        c.township = township;
                    }
                    c.on = on;
                    c.off_reason = off_reason;
                }
                None => {
                    d.channels.insert(
                        item.id.clone(),
                        Channel {
                            item,
                            on,
                            off_reason,
                            township,
                            reported: None,
                            reported_since: None,
                            state: None,
                            budget: None,
                            suppressed: 0,
                        },
                    );
                }
            }
        }
    }

    /// Judges every device and channel at `now`; returns what changed, as observations of the
    /// channels (the cameras).
    pub fn tick(&mut self, config: &LivenessConfig, now: DateTime<Utc>) -> Vec<CameraObservation> {
        let mut seen = Vec::new();
        for d in self.by_id.values_mut() {
            let (online, reason, since) = device_state(d, config, now);
            d.online = Some(online);
            for (id, c) in d.channels.iter_mut() {
                if c.township.is_none() {
                    continue;
                }
                let (state, why, at) = match (online, c.on) {
                    (false, _) => (CameraState::Offline, Some(reason.to_string()), since),
                    (true, Some(true)) => (CameraState::Online, None, now),
                    (true, Some(false)) => (CameraState::Offline, c.off_reason.clone(), now),
                    (true, None) => (CameraState::Unknown, None, now),
                };
                let judged = Judged {
                    state,
                    reason: why,
                    at,
                };
                channel_tick(id, c, judged, (config.events_per_hour, now), &mut seen);
            }
        }
        seen
    }
}

/// A device's liveness at `now`: online, else why and since when.
pub fn device_state(
    d: &Device,
    config: &LivenessConfig,
    now: DateTime<Utc>,
) -> (bool, &'static str, DateTime<Utc>) {
    let silent_after = d.last_seen + config.keepalive_timeout * config.keepalive_misses as i32;
    if d.unregistered {
        (false, "unregistered", d.expires_at)
    } else if d.expires_at <= now {
        (false, "registration_expired", d.expires_at)
    } else if silent_after <= now {
        (false, "keepalive_timeout", d.last_seen)
    } else {
        (true, "", now)
    }
}

/// A channel's state as judged at a tick: why (offline), and since when.
struct Judged {
    state: CameraState,
    reason: Option<String>,
    at: DateTime<Utc>,
}

/// One channel's judged state against what was last judged and reported: the state entered
/// (always, for the uptime log), and the change told to the township within the event budget
/// of `per_hour` changes (refilled continuously, as an RTSP camera's).
fn channel_tick(
    id: &str,
    c: &mut Channel,
    judged: Judged,
    (per_hour, now): (u32, DateTime<Utc>),
    seen: &mut Vec<CameraObservation>,
) {
    let mut saw = |what| {
        seen.push(CameraObservation {
            camera: id.to_string(),
            what,
        })
    };
    let Judged { state, reason, at } = judged;
    let entered = c.state.map(|(s, _)| s) != Some(state);
    if entered {
        let since = match c.state {
            Some((_, before)) => at.max(before),
            None => at,
        };
        c.state = Some((state, since));
        saw(Observed::Entered { state, since });
    }
    let cap = f64::from(per_hour);
    let tokens = match c.budget {
        Some((left, refilled)) => {
            (left + (now - refilled).num_milliseconds() as f64 / 3_600_000.0 * cap).min(cap)
        }
        None => cap,
    };
    c.budget = Some((tokens, now));
    let (state, since) = c.state.expect("set above");
    if state == CameraState::Unknown || c.reported == Some(state) {
        return;
    }
    let from = c.reported.unwrap_or(CameraState::Unknown);
    if from == CameraState::Unknown && state == CameraState::Online {
        // the first look at a channel that works: nothing to tell
        c.reported = Some(state);
        c.reported_since = Some(since);
        return;
    }
    if tokens < 1.0 {
        c.suppressed += u64::from(entered);
        return;
    }
    c.budget = Some((tokens - 1.0, now));
    let away = (state == CameraState::Online && from == CameraState::Offline)
        .then(|| c.reported_since.map(|s| since - s))
        .flatten()
        .filter(|d| *d > Duration::zero());
    c.reported = Some(state);
    c.reported_since = Some(since);
    saw(Observed::Changed(StateChange {
        from,
        to: state,
        at: since,
        reason: reason.filter(|_| state == CameraState::Offline),
        measured: StreamMeasures::default(),
        away,
    }));
}

#[cfg(test)]
mod tests;
