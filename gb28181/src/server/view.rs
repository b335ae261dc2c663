//! The devices and their channels as the API shows them.

use super::Server;
use crate::devices::{Channel, Device};
use crate::manscdp::Charset;
use crate::sip::Transport;
use alerts::camera::CameraState;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// A device, as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceView {
    /// 20-digit id.
    pub id: String,
    /// The configured name, else DeviceInfo's `DeviceName`.
    pub name: Option<String>,
    /// The configured township (`None`: channels mapped by civil code).
    pub township: Option<String>,
    /// Online (registered and keeping alive).
    pub online: bool,
    /// Why not, when offline (`keepalive_timeout`, `unregistered`, `registration_expired`).
    pub offline_reason: Option<&'static str>,
    /// `udp` or `tcp`.
    pub transport: Transport,
    /// Where it registered or last kept alive from.
    pub address: String,
    /// Registered at.
    #[serde(serialize_with = "alerts::time::serialize")]
    pub registered_at: DateTime<Utc>,
    /// The registration ends at.
    #[serde(serialize_with = "alerts::time::serialize")]
    pub expires_at: DateTime<Utc>,
    /// The last sign of life.
    #[serde(serialize_with = "alerts::time::serialize")]
    pub last_seen_at: DateTime<Utc>,
    /// Keepalives received.
    pub keepalives: u64,
    /// The last keepalive's Status.
    pub status: Option<String>,
    /// Sub-devices the last keepalive listed as faulty.
    pub faulty: Vec<String>,
    /// User-Agent.
    pub user_agent: Option<String>,
    /// How it writes.
    pub charset: Charset,
    /// DeviceInfo's answer.
    pub info: serde_json::Map<String, serde_json::Value>,
    /// DeviceStatus's answer.
    pub device_status: serde_json::Map<String, serde_json::Value>,
    /// The last whole catalog.
    #[serde(serialize_with = "alerts::time::option::serialize")]
    pub catalog_at: Option<DateTime<Utc>>,
    /// Channels (cameras) it reported.
    pub channels_total: usize,
    /// Channels not mapped to a township (listed, not watched).
    pub channels_unmapped: usize,
    /// The channels (in a list: those the caller may see; in a count: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels: Option<Vec<ChannelView>>,
}

/// A channel, as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ChannelView {
    /// 20-digit id (the camera's id).
    pub id: String,
    /// The device that reported it.
    pub device: String,
    /// Name.
    pub name: Option<String>,
    /// Township (`None`: not mapped — not watched, no events).
    pub township: Option<String>,
    /// The catalog's word: `on`, `off` or `unknown`.
    pub status: &'static str,
    /// The camera's state: the device's and the channel's together.
    pub state: Option<CameraState>,
    /// Since when that state holds.
    #[serde(serialize_with = "alerts::time::option::serialize")]
    pub since: Option<DateTime<Utc>>,
    /// Why offline.
    pub reason: Option<String>,
    /// State changes held back by the event budget (`[gb28181] events_per_hour`).
    pub suppressed_transitions: u64,
    /// Civil code.
    pub civil_code: Option<String>,
    /// Address.
    pub address: Option<String>,
    /// Manufacturer.
    pub manufacturer: Option<String>,
    /// Model.
    pub model: Option<String>,
}

impl Server {
    /// Every device, ordered by id, with its channels when `with_channels`; `visible` says
    /// which townships the caller may see (`None`: all).
    pub fn devices(&self, visible: Option<&[String]>, with_channels: bool) -> Vec<DeviceView> {
        let s = self.state.lock();
        s.devices
            .by_id
            .values()
            .filter_map(|d| self.view(d, visible, with_channels))
            .collect()
    }

    /// The channels watched and online now (mapped to a township, their device online and
    /// their status ON): those whose pictures can be pulled.
    pub fn online_channels(&self) -> Vec<String> {
        let s = self.state.lock();
        s.devices
            .by_id
            .values()
            .flat_map(|d| d.channels.iter())
            .filter(|(_, c)| c.township.is_some())
            .filter(|(_, c)| matches!(c.state, Some((alerts::camera::CameraState::Online, _))))
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Notes whether a channel's picture checks fail (an online channel with a failing picture
    /// is not intact: 完好率).
    pub fn set_picture_failing(&self, id: &str, failing: bool) {
        let mut f = self.failing.lock();
        if failing {
            f.insert(id.to_string());
        } else {
            f.remove(id);
        }
    }

    /// Whether `id` is a channel of a registered device.
    pub fn has_channel(&self, id: &str) -> bool {
        let s = self.state.lock();
        s.devices
            .by_id
            .values()
            .any(|d| d.channels.contains_key(id))
    }

    /// The watched channels (mapped to a township) of every device, ordered by id — those of
    /// `visible` townships only, when given.
    pub fn channels(&self, visible: Option<&[String]>) -> Vec<ChannelView> {
        let mut all: Vec<ChannelView> = self
            .state
            .lock()
            .devices
            .by_id
            .values()
            .flat_map(|d| d.channels.iter().map(move |(id, c)| (d, id, c)))
            .filter(|(_, _, c)| {
                c.township
                    .as_ref()
                    .is_some_and(|t| visible.is_none_or(|v| v.contains(t)))
            })
            .map(|(d, id, c)| channel_view(&d.id, id, c))
            .collect();
        // sorted after the lock is let go: the message task waits for it
        all.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        all
    }

    /// One watched channel (`None`: not a channel of a registered device, or not mapped).
    pub fn channel(&self, id: &str) -> Option<ChannelView> {
        let s = self.state.lock();
        s.devices.by_id.values().find_map(|d| {
            let c = d.channels.get(id).filter(|c| c.township.is_some())?;
            Some(channel_view(&d.id, id, c))
        })
    }

    /// Whether a channel's picture checks fail now.
    pub fn picture_failing(&self, id: &str) -> bool {
        self.failing.lock().contains(id)
    }

    /// One device with its channels (`None`: unknown, or none of it visible).
    pub fn device(&self, id: &str, visible: Option<&[String]>) -> Option<DeviceView> {
        let s = self.state.lock();
        self.view(s.devices.by_id.get(id)?, visible, true)
    }

    fn view(
        &self,
        d: &Device,
        visible: Option<&[String]>,
        with_channels: bool,
    ) -> Option<DeviceView> {
        let roster = self.roster();
        let config = roster.devices.get(&d.id);
        let sees = |t: &Option<String>| match (visible, t) {
            (None, _) => true,
            (Some(v), Some(t)) => v.contains(t),
            (Some(_), None) => false,
        };
        let township = config.and_then(|c| c.township.clone());
        let channels: Vec<ChannelView> = d
            .channels
            .iter()
            .filter(|(_, c)| sees(&c.township))
            .map(|(id, c)| channel_view(&d.id, id, c))
            .collect();
        if visible.is_some() && !sees(&township) && channels.is_empty() {
            return None;
        }
        let now = self.pipeline.clock().now();
        let (online, reason, _) = crate::devices::device_state(d, &self.config.liveness, now);
        Some(DeviceView {
            id: d.id.clone(),
            name: config.and_then(|c| c.name.clone()).or_else(|| {
                d.info
                    .get("DeviceName")
                    .and_then(|v| v.as_str())
                    .map(str::to_string)
            }),
            township,
            online,
            offline_reason: (!online).then_some(reason),
            transport: d.peer.transport,
            address: d.peer.addr.to_string(),
            registered_at: d.registered_at,
            expires_at: d.expires_at,
            last_seen_at: d.last_seen,
            keepalives: d.keepalives,
            status: d.status.clone(),
            faulty: d.faulty.clone(),
            user_agent: d.user_agent.clone(),
            charset: d.charset,
            info: d.info.clone(),
            device_status: d.device_status.clone(),
            catalog_at: d.catalog_at,
            channels_total: d.channels.len(),
            channels_unmapped: d.channels.values().filter(|c| c.township.is_none()).count(),
            channels: with_channels.then_some(channels),
        })
    }
}

fn channel_view(device: &str, id: &str, c: &Channel) -> ChannelView {
    ChannelView {
        id: id.to_string(),
        device: device.to_string(),
        name: c.item.name.clone(),
        township: c.township.clone(),
        status: match c.on {
            Some(true) => "on",
            Some(false) => "off",
            None => "unknown",
        },
        state: c.state.map(|(s, _)| s),
        since: c.state.map(|(_, at)| at),
        reason: c.off_reason.clone(),
        suppressed_transitions: c.suppressed,
        civil_code: c.item.civil_code.clone(),
        address: c.item.address.clone(),
        manufacturer: c.item.manufacturer.clone(),
        model: c.item.model.clone(),
    }
}
