//! The one-second tick: catalogs whose pages stopped are applied, liveness is judged and what
//! changed goes to the pipeline, the registry's channels follow the catalogs, subscriptions
//! are refreshed, the gauges set and the device list saved.

use super::Server;
use crate::devices::{Channel, Devices};
use alerts::camera::CameraState;
use alerts::camera_tally::TownshipCount;
use alerts::place::{Datum, Location, Place};
use alerts::registry::Camera;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The device list is saved at most this often (when something changed).
const SAVE_EVERY: Duration = Duration::from_secs(5);

/// Ticks every `every` until `stop` turns true.
pub(super) async fn run(server: Arc<Server>, every: Duration, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let refused = alerts::outage::Outage::new();
    let mut saved = Instant::now() - SAVE_EVERY;
    loop {
        tokio::select! {
            _ = stop.changed() => {
                server.save(&mut saved, true).await;
                return;
            }
            _ = tick.tick() => {}
        }
        let observations = server.judge();
        match server.pipeline.observe_cameras(observations).await {
            Ok(_) if refused.recovered() => {
                tracing::info!("GB/T 28181 camera events committed again")
            }
            Ok(_) => {}
            Err(e) if refused.failed() => {
                tracing::warn!(error = %e, "GB/T 28181 camera events wait: the outbox cannot take them now")
            }
            Err(_) => {}
        }
        server.refresh_subscriptions();
        server.save(&mut saved, false).await;
    }
}

impl Server {
    /// Applies stale catalogs, brings the registry's channels up to date and judges liveness.
    fn judge(&self) -> Vec<alerts::camera::CameraObservation> {
        let now = self.pipeline.clock().now();
        let mut s = self.state.lock();
        self.flush_catalogs(&mut s, Instant::now());
        let live = self.pipeline.live_registry();
        // a config reload puts a registry without channels in place: put them back
        let registry = live.get();
        let missing = s.devices.by_id.values().any(|d| {
            d.channels
                .iter()
                .any(|(id, c)| c.township.is_some() && registry.camera(id).is_none())
        });
        if s.channels_changed || missing {
            s.channels_changed = false;
            let channels = channel_cameras(&s.devices);
            live.replace(Arc::new(registry.with_channels(channels)));
        }
        let seen = s.devices.tick(&self.config.liveness, now);
        self.count(&s.devices);
        seen
    }

    /// The channels' township counts and `gateway_camera_up`, beside the RTSP cameras'. An
    /// online channel is intact unless its picture checks fail.
    fn count(&self, devices: &Devices) {
        let tally = &self.pipeline.metrics().cameras;
        let failing = self.failing.lock();
        let mut counts: HashMap<String, TownshipCount> = HashMap::new();
        for (id, c) in devices.by_id.values().flat_map(|d| d.channels.iter()) {
            let Some(township) = &c.township else {
                continue;
            };
            let online = c.state.is_some_and(|(s, _)| s == CameraState::Online);
            let n = counts.entry(township.clone()).or_default();
            n.watched += 1;
            n.online += usize::from(online);
            n.intact += usize::from(online && !failing.contains(id));
            tally
                .up
                .with_label_values(&[id.as_str(), township.as_str()])
                .set(i64::from(online));
        }
        tally.report("gb28181", counts);
    }

    /// Subscriptions about to end are renewed.
    fn refresh_subscriptions(self: &Arc<Self>) {
        let due: Vec<String> = {
            let mut s = self.state.lock();
            let now = tokio::time::Instant::now();
            let due: Vec<String> = s
                .subscribed
                .iter()
                .filter(|(_, at)| **at <= now)
                .map(|(d, _)| d.clone())
                .collect();
            for d in &due {
                s.subscribed.remove(d);
            }
            due
        };
        for device in due {
            let server = self.clone();
            tokio::spawn(async move {
                if server.subscribe(&device).await.is_err() {
                    let _ = server.query(&device, "Catalog").await;
                }
            });
        }
    }

    /// Saves the device list when it changed (at most every few seconds, unless `now`).
    async fn save(&self, saved: &mut Instant, now: bool) {
        let Some(path) = self.config.state_file.clone() else {
            return;
        };
        if !now && saved.elapsed() < SAVE_EVERY {
            return;
        }
        let json = {
            let mut s = self.state.lock();
            if !s.dirty {
                return;
            }
            s.dirty = false;
            serde_json::to_vec(&s.devices).unwrap_or_default()
        };
        *saved = Instant::now();
        // written on a blocking thread that owns the bytes (no second copy of a list that is
        // megabytes for thousands of channels)
        let written = tokio::task::spawn_blocking(move || {
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, json)?;
            std::fs::rename(&tmp, &path)
        })
        .await;
        if let Ok(Err(e)) = written {
            tracing::warn!(error = %e, "cannot save the GB/T 28181 device list");
        }
    }
}

/// The saved device list, if any (a missing or unreadable file: none).
pub(super) fn restore(path: Option<&Path>) -> Devices {
    let Some(bytes) = path.and_then(|p| std::fs::read(p).ok()) else {
        return Devices::default();
    };
    serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "cannot read the saved GB/T 28181 device list; starting without it");
        Devices::default()
    })
}

/// The cameras of every mapped channel.
fn channel_cameras(devices: &Devices) -> Vec<Arc<Camera>> {
    devices
        .by_id
        .values()
        .flat_map(|d| {
            d.channels
                .iter()
                .filter_map(move |(id, c)| Some(Arc::new(camera(&d.id, id, c)?)))
        })
        .collect()
}

/// The camera of a channel (`None`: not mapped to a township).
pub(super) fn camera(device: &str, id: &str, c: &Channel) -> Option<Camera> {
    let location = match (c.item.latitude, c.item.longitude) {
        (Some(lat), Some(lon)) => Some(Location {
            lat,
            lon,
            datum: Datum::Wgs84,
        }),
        _ => None,
    };
    let name = c.item.name.clone().unwrap_or_else(|| id.to_string());
    let place = Place {
        address: c.item.address.clone(),
        location,
    };
    Some(device_camera(device, id, name, c.township.clone()?, place))
}

/// A camera watched through GB/T 28181 device `device` (no RTSP, no picture checks until a
/// picture is pulled).
pub(super) fn device_camera(
    device: &str,
    id: &str,
    name: String,
    township: String,
    place: Place,
) -> Camera {
    Camera {
        id: id.to_string(),
        name,
        township,
        url: String::new(),
        username: None,
        password: None,
        motion_events: false,
        tamper_events: true,
        vqd_interval_s: Some(0),
        vqd_profile: None,
        place,
        gb28181: Some(device.to_string()),
    }
}
