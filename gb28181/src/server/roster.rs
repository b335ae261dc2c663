//! Which devices may register and how channels map to townships — what a config reload may
//! change while the platform runs: a device added may register at once, a device removed is
//! forgotten (its channels leave the registry), a township or civil code changed moves the
//! channels it maps.

use super::{DeviceConfig, Gb28181Config, Server};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;

/// The devices allowed to register, and the civil-code prefixes of townships.
#[derive(Debug, Default)]
pub(crate) struct Roster {
    pub(crate) devices: HashMap<String, DeviceConfig>,
    pub(crate) civil_codes: Vec<(String, String)>,
    /// Channels whose township is set one by one.
    pub(crate) channels: HashMap<String, String>,
}

impl Roster {
    pub(super) fn new(config: &Gb28181Config) -> Self {
        Self {
            devices: config
                .devices
                .iter()
                .map(|d| (d.id.clone(), d.clone()))
                .collect(),
            civil_codes: config.civil_codes.clone(),
            channels: config.channels.iter().cloned().collect(),
        }
    }

    /// The township of a channel: its own (`[gb28181.channels]`), else its device's, else the
    /// longest configured prefix of its civil code (or, without one, of its own id's first 8
    /// digits); `None`: not mapped.
    pub(crate) fn township_of(
        &self,
        device: &str,
        item: &crate::manscdp::CatalogItem,
    ) -> Option<String> {
        let own = self.channels.get(&item.id).cloned();
        if let Some(t) = own.or_else(|| self.devices.get(device)?.township.clone()) {
            return Some(t);
        }
        let code = item
            .civil_code
            .as_deref()
            .unwrap_or(&item.id[..8.min(item.id.len())]);
        self.civil_codes
            .iter()
            .filter(|(prefix, _)| code.starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _)| prefix.len())
            .map(|(_, t)| t.clone())
    }
}

/// What a new device list changed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeviceChange {
    /// Devices now allowed that were not.
    pub gb28181_devices_added: Vec<String>,
    /// Devices no longer allowed (forgotten, with their channels).
    pub gb28181_devices_removed: Vec<String>,
    /// Devices whose township, name, password or media changed.
    pub gb28181_devices_changed: Vec<String>,
}

impl Server {
    /// The devices allowed and the civil codes, as configured now.
    pub(crate) fn roster(&self) -> Arc<Roster> {
        self.roster.read().clone()
    }

    /// Takes a new configuration's device list, civil codes and channel townships (the rest of
    /// `config` is not read): registered devices no longer listed are forgotten (they are
    /// refused from now on), and every channel's township is worked out again; the registry
    /// follows at the next tick.
    pub fn update_devices(&self, config: &Gb28181Config) -> DeviceChange {
        let new = Arc::new(Roster::new(config));
        let old = std::mem::replace(&mut *self.roster.write(), new.clone());
        let mut change = DeviceChange::default();
        for (id, d) in &new.devices {
            match old.devices.get(id) {
                None => change.gb28181_devices_added.push(id.clone()),
                Some(was) if was != d => change.gb28181_devices_changed.push(id.clone()),
                Some(_) => {}
            }
        }
        change.gb28181_devices_removed = old
            .devices
            .keys()
            .filter(|id| !new.devices.contains_key(*id))
            .cloned()
            .collect();
        for v in [
            &mut change.gb28181_devices_added,
            &mut change.gb28181_devices_removed,
            &mut change.gb28181_devices_changed,
        ] {
            v.sort();
        }
        self.forget_and_remap(&new);
        change
    }

    /// Devices not listed (any more) forgotten, channels mapped again — after a reload, and
    /// at start for the device list kept from the last run; the `gateway_camera_up` series of
    /// a channel gone or moved to another township goes with it.
    pub(super) fn forget_and_remap(&self, roster: &Roster) {
        let up = &self.pipeline.metrics().cameras.up;
        let unset = |id: &str, township: &Option<String>| {
            if let Some(t) = township {
                let _ = up.remove_label_values(&[id, t.as_str()]);
            }
        };
        let mut s = self.state.lock();
        let mut failing = self.failing.lock();
        let removed: Vec<String> = s
            .devices
            .by_id
            .keys()
            .filter(|id| !roster.devices.contains_key(*id))
            .cloned()
            .collect();
        for id in &removed {
            if let Some(d) = s.devices.by_id.remove(id) {
                for (c, channel) in &d.channels {
                    failing.remove(c);
                    unset(c, &channel.township);
                }
                tracing::info!(device = %id, channels = d.channels.len(), "GB/T 28181 device not in the configuration: forgotten");
            }
            s.subscribed.remove(id);
        }
        for d in s.devices.by_id.values_mut() {
            let device = d.id.clone();
            for (id, c) in d.channels.iter_mut() {
                let township = roster.township_of(&device, &c.item);
                if township != c.township {
                    unset(id, &c.township);
                    c.township = township;
                }
            }
        }
        s.channels_changed = true;
        s.dirty = true;
    }
}
