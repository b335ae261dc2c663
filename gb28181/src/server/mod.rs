//! The GB/T 28181 platform: devices register here (digest), keep alive, answer our catalog,
//! device-info and status queries, notify catalog changes and alarms. What they say becomes
//! camera observations handed to the pipeline — the same door, events and uptime log as RTSP
//! cameras, with `source.protocol = "gb28181"`.
//!
//! One task reads every message in order ([`handle`]); answers to our own requests go to the
//! request waiting for them ([`crate::sip::transaction::Asking`]); queries run as tasks of
//! their own ([`ask`]); a one-second tick ([`tick`]) judges liveness, completes catalogs,
//! keeps the registry's channels in step and saves the device list.

mod alarm;
mod ask;
mod catalog;
mod handle;
mod picture;
mod receive;
mod roster;
mod tick;
mod view;

use crate::devices::{Devices, LivenessConfig};
use crate::media::MediaTransport;
use crate::sip::digest::Nonces;
use crate::sip::transaction::{Answered, Asking};
use crate::sip::transport::{self, SipTransport, TransportConfig};
use alerts::{Pipeline, Secret};
use chrono::FixedOffset;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

pub use catalog::CATALOG_PAGE_WAIT;
pub use picture::{Picture, PictureError};
pub use roster::DeviceChange;
use roster::Roster;
pub use view::{ChannelView, DeviceView};

/// A device allowed to register.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceConfig {
    /// Its 20-digit id.
    pub id: String,
    /// The township its channels belong to (`None`: by their civil codes).
    pub township: Option<String>,
    /// Its own password (`None`: the server's).
    pub password: Option<Secret>,
    /// A name for people.
    pub name: Option<String>,
    /// How it sends streams (`None`: the platform's [`Gb28181Config::media`]).
    pub media: Option<MediaTransport>,
}

/// Settings of the platform.
#[derive(Debug, Clone)]
pub struct Gb28181Config {
    /// Sockets.
    pub transport: TransportConfig,
    /// Our 20-digit id.
    pub sip_id: String,
    /// Our SIP domain (the realm of the challenge).
    pub domain: String,
    /// The password devices register with (unless their own is set).
    pub password: Secret,
    /// Liveness.
    pub liveness: LivenessConfig,
    /// Devices allowed to register (at start; [`Server::update_devices`] replaces them).
    pub devices: Vec<DeviceConfig>,
    /// Civil-code prefixes of channels, and the township each maps to (longest prefix wins; at
    /// start, as `devices`).
    pub civil_codes: Vec<(String, String)>,
    /// Channels whose township is set one by one (before their device's and civil code's).
    pub channels: Vec<(String, String)>,
    /// How long a catalog subscription lasts (refreshed before it ends; 0: no subscription).
    pub subscribe_expires: Duration,
    /// The same alarm (device, subject, method, type) again within this long is counted, not
    /// raised again.
    pub alarm_dedup: Duration,
    /// How often each online channel's picture is pulled and checked (`None`: never).
    pub picture_interval: Option<Duration>,
    /// How devices send the streams pulled for pictures (unless their own `media` says).
    pub media: MediaTransport,
    /// Where the device list is kept across restarts (`None`: not kept).
    pub state_file: Option<PathBuf>,
    /// The time zone of the `Date` in a registration's 200 (devices set their clocks by it).
    pub offset: FixedOffset,
}

/// What the message task and the tick share.
#[derive(Default)]
pub(crate) struct State {
    pub(crate) devices: Devices,
    pub(crate) nonces: Nonces,
    pub(crate) answered: Answered,
    pub(crate) catalogs: catalog::Assemblies,
    /// Catalog subscriptions: device → when it must be refreshed.
    pub(crate) subscribed: HashMap<String, tokio::time::Instant>,
    /// Something worth saving changed.
    pub(crate) dirty: bool,
    /// The channel set in the registry needs refreshing.
    pub(crate) channels_changed: bool,
}

/// The running platform.
pub struct Server {
    pub(crate) config: Gb28181Config,
    pub(crate) transport: Arc<SipTransport>,
    pub(crate) state: Mutex<State>,
    pub(crate) asking: Asking,
    pub(crate) pipeline: Arc<Pipeline>,
    /// The devices allowed and the civil codes (a config reload replaces them).
    roster: parking_lot::RwLock<Arc<Roster>>,
    pub(crate) sn: AtomicU64,
    pub(crate) tag: String,
    pub(crate) pictures: picture::Pictures,
    /// Channels whose picture checks fail (set by the checks, read by the township counts).
    pub(crate) failing: Mutex<std::collections::HashSet<String>>,
}

/// Messages waiting for the message task at most (beyond, UDP datagrams are dropped and
/// counted, TCP connections wait).
const QUEUE: usize = 4096;

impl Server {
    /// Binds the sockets, restores the saved devices and starts reading, ticking every `tick`
    /// until `stop` turns true. The task returned ends once the device list is saved.
    pub async fn start(
        config: Gb28181Config,
        pipeline: Arc<Pipeline>,
        tick: Duration,
        stop: watch::Receiver<bool>,
    ) -> std::io::Result<(Arc<Server>, tokio::task::JoinHandle<()>)> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let rejected = pipeline.metrics().ingest_rejected_total.clone();
        let transport =
            transport::bind(config.transport.clone(), tx, rejected, stop.clone()).await?;
        let roster = Roster::new(&config);
        let server = Arc::new(Server {
            state: Mutex::new(State {
                devices: tick::restore(config.state_file.as_deref()),
                channels_changed: true,
                ..State::default()
            }),
            config,
            transport,
            asking: Asking::default(),
            pipeline,
            roster: parking_lot::RwLock::new(Arc::new(roster)),
            sn: AtomicU64::new(1),
            tag: crate::sip::token(),
            pictures: Default::default(),
            failing: Default::default(),
        });
        // the device list kept from the last run, as the configuration maps it now
        server.forget_and_remap(&server.roster());
        server.resume().await;
        tokio::spawn(handle::run(server.clone(), rx, stop.clone()));
        let ticking = tokio::spawn(tick::run(server.clone(), tick, stop));
        Ok((server, ticking))
    }

    /// How often each online channel's picture is checked (`None`: never).
    pub fn picture_interval(&self) -> Option<Duration> {
        self.config.picture_interval
    }

    /// The UDP address bound.
    pub fn udp_addr(&self) -> Option<std::net::SocketAddr> {
        self.transport.udp_addr()
    }

    /// The TCP address bound.
    pub fn tcp_addr(&self) -> Option<std::net::SocketAddr> {
        self.transport.tcp_addr()
    }

    /// The password of a device.
    pub(crate) fn password_of(&self, device: &str) -> Secret {
        self.roster()
            .devices
            .get(device)
            .and_then(|d| d.password.clone())
            .unwrap_or_else(|| self.config.password.clone())
    }

    /// The township of a channel (see [`Roster::township_of`]).
    pub(crate) fn township_of(
        &self,
        device: &str,
        item: &crate::manscdp::CatalogItem,
    ) -> Option<String> {
        self.roster().township_of(device, item)
    }

    /// After a restart: the channels' last reported states, from the uptime log.
    async fn resume(&self) {
        let ids: Vec<String> = {
            let s = self.state.lock();
            s.devices
                .by_id
                .values()
                .flat_map(|d| d.channels.keys().cloned())
                .collect()
        };
        let resumed = self
            .pipeline
            .resume_cameras(ids.iter().map(String::as_str))
            .await;
        let mut s = self.state.lock();
        for d in s.devices.by_id.values_mut() {
            for (id, c) in d.channels.iter_mut() {
                if let Some(state) = resumed.get(id) {
                    c.reported = Some(*state);
                }
            }
        }
    }

    /// A fresh serial number for a query.
    pub(crate) fn next_sn(&self) -> u64 {
        self.sn.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }
}
