//! The camera source on a manual clock: real RTSP sessions against camsim, a real outbox, the
//! pipeline's camera door — and time that moves only when the test moves it. The default
//! health thresholds (stalled after 10 s, offline after 30 s) are reached in well under a
//! second of real time, and the events come out with the durations the clock says.

use alerts::dedup::Dedup;
use alerts::linkage::Linkage;
use alerts::liveness::Liveness;
use alerts::outbox::{LiveEvent, Outbox, OutboxConfig};
use alerts::registry::{Camera, Registry, Township};
use alerts::threshold::Thresholds;
use alerts::{Clock, ManualClock, Metrics, Pipeline, Trackers};
use cameras::rtsp::{Cameras, RtspConfig};
use cameras::video::pool::{DecoderPool, PoolConfig};
use gateway_sim::camsim::{CamSim, CamSimConfig, Fault};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;

/// Real time a test waits at most for one condition.
const REAL_WAIT: Duration = Duration::from_secs(20);

struct Rig {
    clock: Arc<ManualClock>,
    store: Arc<alerts::outbox::Store>,
    cameras: Arc<Cameras>,
    events: broadcast::Receiver<Arc<LiveEvent>>,
    /// Committed events not yet asked for, oldest first.
    seen: Vec<Value>,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

fn camera(id: &str, url: String) -> Camera {
    camera_as(id, url, None)
}

fn camera_as(id: &str, url: String, password: Option<&str>) -> Camera {
    Camera {
        id: id.into(),
        name: format!("路口{id}"),
        township: "lanjiang".into(),
        url,
        username: password.map(|_| "viewer".to_string()),
        password: password.map(|p| alerts::Secret::new(p.to_string())),
        motion_events: false,
        tamper_events: false,
        vqd_interval_s: Some(0),
        vqd_profile: None,
        place: Default::default(),
        gb28181: None,
    }
}

async fn rig(cameras: Vec<Camera>) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let township = Township {
        code: "lanjiang".into(),
        name: "兰江街道".into(),
        webhook: None,
    };
    let registry = Arc::new(Registry::new(vec![township], Vec::new(), cameras));
    let metrics = Metrics::new();
    let outbox = Outbox::open(
        &dir.path().join("outbox.redb"),
        ["lanjiang".to_string()],
        OutboxConfig::default(),
        metrics.clone(),
    )
    .unwrap();
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let trackers = Trackers {
        dedup: Dedup::new(Duration::ZERO, 10),
        liveness: Liveness::new(Vec::new(), &Default::default(), clock.now()),
        linkage: Linkage::new(Duration::from_secs(120)),
        thresholds: Thresholds::new(Vec::new()),
        quarantine: None,
    };
    let events = outbox.subscribe();
    let store = outbox.store().clone();
    let offset = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
    let pipeline = Pipeline::new(
        registry.clone(),
        outbox,
        trackers,
        clock.clone(),
        offset,
        metrics,
    );
    // the default thresholds: stalled after 10 s, offline after 30 s
    let config = RtspConfig {
        reconnect_max: Duration::from_millis(200),
        tick: Duration::from_millis(20),
        ..RtspConfig::default()
    };
    let cameras = Arc::new(Cameras::new(&registry, &config, clock.clone()));
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let pool = DecoderPool::new(PoolConfig::default());
    let task =
        cameras::rtsp::start(cameras.clone(), config, Arc::new(pipeline), pool, stop_rx).await;
    Rig {
        clock,
        store,
        cameras,
        events,
        seen: Vec::new(),
        stop,
        task,
        _dir: dir,
    }
}

impl Rig {
    /// Waits (real time) until `id` satisfies `ok`.
    async fn until_camera(&self, id: &str, ok: impl Fn(&cameras::rtsp::CameraView) -> bool) {
        let deadline = tokio::time::Instant::now() + REAL_WAIT;
        loop {
            let c = self.cameras.get(id).unwrap();
            if ok(&c) {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "{id}: {c:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Moves the clock a second at a time (letting the tick run) until an event of `kind`
    /// for `camera` is committed (or was, unasked for, before); returns it and how much clock
    /// time this call took.
    async fn advance_until(&mut self, camera: &str, kind: &str) -> (Value, chrono::Duration) {
        let started = self.clock.now();
        let deadline = tokio::time::Instant::now() + REAL_WAIT;
        loop {
            while let Ok(e) = self.events.try_recv() {
                self.seen.push(serde_json::from_slice(&e.body).unwrap());
            }
            let at = self
                .seen
                .iter()
                .position(|b| b["kind"] == kind && b["source"]["id"] == camera);
            if let Some(at) = at {
                return (self.seen.remove(at), self.clock.now() - started);
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{camera}: no {kind} after {} s of clock time",
                (self.clock.now() - started).num_seconds()
            );
            self.clock.advance(chrono::Duration::seconds(1));
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}

fn assert_secs_within(took: chrono::Duration, range: std::ops::RangeInclusive<i64>, what: &str) {
    assert!(
        range.contains(&took.num_seconds()),
        "{what} after {took} of clock time, expected {range:?} s"
    );
}

/// Stalls, outages and refused credentials with the default thresholds (stalled after 10 s,
/// offline after 30 s) — the timing the end-to-end camera test used to wait for in real time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_and_offline_follow_the_clock_not_the_wall() {
    let sim = CamSim::start(CamSimConfig::local(2))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let locked = CamSim::start(CamSimConfig {
        credentials: Some(("viewer".into(), "the-right-one".into())),
        ..CamSimConfig::local(1)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let mut rig = rig(vec![
        camera("cam-1", sim.url(1)),
        camera("cam-2", sim.url(2)),
        camera_as("cam-3", locked.url(1), Some("a-wrong-one")),
    ])
    .await;
    rig.until_camera("cam-1", |c| c.connected && c.frames_total > 0)
        .await;
    rig.until_camera("cam-2", |c| c.connected && c.frames_total > 0)
        .await;

    // frames stop, the session stays: stalled once the clock has passed stall_after (10 s)
    let real = std::time::Instant::now();
    sim.set_fault(
        1,
        Some(Fault::Stall {
            after: Duration::ZERO,
        }),
    );
    let (stalled, took) = rig.advance_until("cam-1", "camera.stalled").await;
    assert_eq!(stalled["camera"]["state"], "stalled", "{stalled}");
    assert_secs_within(took, 10..=15, "stalled");
    // frames again: online, away as long as the clock says
    sim.set_fault(1, None);
    let (back, _) = rig.advance_until("cam-1", "camera.online").await;
    assert!(
        back["camera"]["measured"]["away_s"].as_i64().unwrap() >= 10,
        "{back}"
    );

    // refused: offline once the clock has passed offline_after (30 s), with the reason
    sim.set_fault(2, Some(Fault::Refuse));
    rig.until_camera("cam-2", |c| !c.connected).await;
    let (offline, took) = rig.advance_until("cam-2", "camera.offline").await;
    assert_eq!(
        offline["camera"]["reason"], "connection_closed",
        "{offline}"
    );
    assert_secs_within(took, 29..=35, "offline");

    // back: online, and the time away is the clock's
    sim.set_fault(2, None);
    rig.until_camera("cam-2", |c| c.connected).await;
    let (online, _) = rig.advance_until("cam-2", "camera.online").await;
    let away = online["camera"]["measured"]["away_s"].as_i64().unwrap();
    assert!(away >= 30, "{online}");
    // and the outage's ticket is closed by it, with the outage's length on the clock
    let ticket: uuid::Uuid = offline["id"].as_str().unwrap().parse().unwrap();
    let case = rig.store.get(ticket).unwrap().unwrap().state.case.unwrap();
    assert_eq!(case.stage, alerts::case::Stage::Closed);
    assert_eq!(case.verdict, Some(alerts::case::Verdict::Recovered));
    assert_eq!(
        case.resolved_by.map(|u| u.to_string()),
        online["id"].as_str().map(String::from)
    );
    assert!(case.outage_s.unwrap() >= 30, "{case:?}");
    assert_eq!(online["resolves"], serde_json::json!([ticket]));
    assert!(rig.cameras.get("cam-2").unwrap().reconnects >= 1);

    // a wrong password is reported as such, long since (never online)
    let (denied, _) = rig.advance_until("cam-3", "camera.offline").await;
    assert_eq!(denied["camera"]["reason"], "unauthorized", "{denied}");
    assert_eq!(denied["camera"]["state"], "offline");
    assert_eq!(denied["source"]["protocol"], "rtsp");
    assert_eq!(denied["severity"], "major");
    assert!(
        real.elapsed() < Duration::from_secs(20),
        "a minute of camera time took {:?} of real time",
        real.elapsed()
    );
    rig.stop().await;
    sim.stop();
    locked.stop();
}
