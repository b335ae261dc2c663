//! `gwchaos`: mixed load with faults injected, and an oracle at the end.
//!
//! Load: HTTP pushes (with `Idempotency-Key`, retried until answered 202), MQTT QoS 1 through a
//! real mosquitto, GB/T 26875.3 devices over TCP (an alarm is resent, unchanged, until
//! confirmed). Every alarm has a component address of its own, so the oracle can follow it.
//!
//! Faults, one at a time at random moments: `kill -9` of the gateway (restarted after a pause),
//! a township's receiver down (503), failing (500), gone (410) or slow, a broker restart, the
//! gateway's small tmpfs `data_dir` filled (below `min_free_mb`, or to the last byte) and freed,
//! slowloris on HTTP and on GB/T 26875.3, an oversized MQTT message.
//!
//! Oracle, once the faults stop and the receivers take everything again: every acknowledged
//! alarm (202, PUBACK, confirm) was delivered to its unit's township (0 lost), a message
//! delivered more than once always carried the same event id, `/healthz` answered within 1 s
//! whenever the gateway was up, and the gateway's RSS stayed under a bound.

use clap::Parser;
use gateway_sim::camsim::{CamSim, CamSimConfig};
use gateway_sim::harness::{
    free_port, township_secret, Gateway, TestConfig, Tmpfs, ADMIN_TOKEN, INGEST_TOKEN,
};
use gateway_sim::mosquitto::Mosquitto;
use gateway_sim::receiver::Receiver;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "gwchaos/faults.rs"]
mod faults;
#[path = "gwchaos/load.rs"]
mod load;
#[path = "gwchaos/oracle.rs"]
mod oracle;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The townships of the run.
const TOWNSHIPS: [&str; 4] = ["lanjiang", "yunshan", "shanghua", "nvbu"];

#[derive(Parser, Debug, Clone)]
#[command(about = "Mixed load with faults injected into a real gateway, and an oracle")]
pub struct Args {
    /// The gateway binary.
    #[arg(long, default_value = "target/release/gateway")]
    gateway: PathBuf,
    /// How long load and faults run.
    #[arg(long, default_value_t = 120)]
    seconds: u64,
    /// Mean pause between two faults.
    #[arg(long, default_value_t = 6)]
    fault_every_s: u64,
    /// At least this many `kill -9` (spread over the run, besides the random faults).
    #[arg(long, default_value_t = 3)]
    kills: u32,
    /// HTTP pushers (each pushes one alarm at a time).
    #[arg(long, default_value_t = 4)]
    pushers: usize,
    /// Pause of each HTTP pusher between two alarms, ms.
    #[arg(long, default_value_t = 25)]
    push_pause_ms: u64,
    /// MQTT alarms per second.
    #[arg(long, default_value_t = 50)]
    mqtt_rate: u64,
    /// GB/T 26875.3 devices (each raises one alarm at a time).
    #[arg(long, default_value_t = 4)]
    devices: u32,
    /// RTSP cameras (camsim), watched throughout; all must be online again at the end.
    #[arg(long, default_value_t = 4)]
    cameras: u32,
    /// Size of the gateway's tmpfs `data_dir`, MiB (default: 256 + 2 per second of the run,
    /// about twice what the outbox grew to in a half-hour run at the default load, ~1 MiB/s —
    /// the disk faults fill the rest).
    #[arg(long)]
    tmpfs_mb: Option<u64>,
    /// The gateway's RSS must stay under this, MiB.
    #[arg(long, default_value_t = 400)]
    rss_limit_mb: u64,
    /// Random seed (the faults' order and timing); random when not given.
    #[arg(long)]
    seed: Option<u64>,
    /// Where the run's files go (kept when the run fails).
    #[arg(long, default_value = "target/chaos")]
    workdir: PathBuf,
}

/// The gateway under test and what the load needs to reach it.
pub struct Target {
    gw: Option<Gateway>,
    api: SocketAddr,
    gb: SocketAddr,
}

/// Everything the load, the faults and the oracle share.
pub struct World {
    args: Args,
    target: tokio::sync::RwLock<Target>,
    /// The gateway is up (started and not being killed): `/healthz` must answer.
    up: AtomicBool,
    /// The load stops.
    stop: AtomicBool,
    /// The faults stop.
    calm: AtomicBool,
    config_path: PathBuf,
    /// The gateway's own small `data_dir` filesystem (`None`: no root and no user namespaces
    /// here; the disk faults are left out).
    tmpfs: Option<Tmpfs>,
    broker: tokio::sync::Mutex<Mosquitto>,
    receiver: Receiver,
    /// Units by township, and the GB/T 26875.3 device addresses' units.
    units: Vec<(String, String)>,
    gb_units: Vec<(u64, String)>,
    /// Cameras by township.
    cameras: Vec<(String, String)>,
    /// The cameras' server (faults are injected into it).
    sim: Option<CamSim>,
    /// Acknowledged alarms: component address → (source, township, event id when known).
    acked: Mutex<HashMap<u32, Acked>>,
    /// MQTT alarms published (the broker acknowledges them all before the oracle runs).
    mqtt_published: Mutex<Vec<(u32, String)>>,
    /// The MQTT publisher, kept once the load stops (its unacknowledged publishes go on).
    publisher: tokio::sync::Mutex<Option<gateway_sim::mosquitto::Publisher>>,
    health: Mutex<HealthStats>,
    rss_max: AtomicU64,
    faults: Mutex<Vec<String>>,
    kills: AtomicU64,
}

/// An acknowledged alarm.
#[derive(Debug, Clone)]
pub struct Acked {
    source: &'static str,
    township: String,
    id: Option<String>,
}

/// `/healthz` while the gateway was up.
#[derive(Debug, Default)]
pub struct HealthStats {
    probes: u64,
    late: u64,
    max_ms: f64,
}

impl World {
    async fn api(&self) -> SocketAddr {
        self.target.read().await.api
    }

    fn township_of(&self, unit: &str) -> String {
        self.units
            .iter()
            .find(|(u, _)| u == unit)
            .map(|(_, t)| t.clone())
            .unwrap_or_default()
    }

    fn fault(&self, what: String) {
        println!(
            "  {:>6.1} s  {what}",
            self.started().elapsed().as_secs_f64()
        );
        self.faults.lock().push(what);
    }

    fn started(&self) -> Instant {
        *STARTED.get_or_init(Instant::now)
    }
}

static STARTED: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

/// The run's cameras: `cam-<n>` at camsim's camera `n`, townships in turn.
fn cameras(args: &Args) -> Vec<(String, String)> {
    (1..=args.cameras)
        .map(|n| {
            let t = TOWNSHIPS[n as usize % TOWNSHIPS.len()];
            (format!("cam-{n}"), t.to_string())
        })
        .collect()
}

fn config(
    args: &Args,
    data_dir: &std::path::Path,
    receiver: &Receiver,
    broker: &Mosquitto,
    gb_port: u16,
    sim: Option<&CamSim>,
) -> TestConfig {
    let base = format!("http://{}", receiver.addr());
    let mut config = TestConfig::new(data_dir, &base, &TOWNSHIPS, 3);
    // the third unit of each township is a GB/T 26875.3 device
    for (n, (id, _)) in config.units.clone().iter().enumerate() {
        if id.ends_with("-u3") {
            config
                .unit_extra
                .push((id.clone(), format!("gb26875_address = {}", 100 + n)));
        }
    }
    config.extra = format!(
        "[outbox]\nmin_free_mb = 16\n\n\
         [delivery]\nbackoff_initial_ms = 50\nbackoff_max_ms = 1000\ntimeout_ms = 2000\n\n\
         [mqtt]\nurl = \"{}\"\nclient_id = \"gw-chaos\"\ntopics = [\"fire/#\"]\n\
         reconnect_initial_ms = 50\nreconnect_max_ms = 1000\n\n\
         [gb26875]\nlisten = \"127.0.0.1:{gb_port}\"\nidle_timeout_s = 20\nlogin_timeout_s = 3\n\n",
        broker.url()
    );
    if let Some(sim) = sim {
        config.extra += "[health]\ncamera_offline_after_s = 5\ncamera_stall_after_s = 3\n\n[rtsp]\nreconnect_max_s = 2\n\n";
        for (n, (id, township)) in cameras(args).iter().enumerate() {
            config.extra += &format!(
                "[[cameras]]\nid = \"{id}\"\nname = \"路口{id}\"\ntownship = \"{township}\"\nurl = \"{}\"\n\n",
                sim.url(n as u32 + 1)
            );
        }
    }
    config
}

#[tokio::main]
async fn main() {
    let mut args = Args::parse();
    std::fs::create_dir_all(&args.workdir).expect("workdir");
    args.workdir = std::fs::canonicalize(&args.workdir).expect("workdir");
    let seed = args.seed.unwrap_or_else(rand::random);
    assert!(
        args.gateway.exists(),
        "no gateway binary at {}",
        args.gateway.display()
    );
    std::fs::create_dir_all(&args.workdir).expect("workdir");
    let dir = tempfile::tempdir_in(&args.workdir).expect("tempdir");
    println!(
        "# gwchaos: {} s, seed {seed}, gateway {}",
        args.seconds,
        args.gateway.display()
    );
    let secrets: Vec<(String, String)> = TOWNSHIPS
        .iter()
        .map(|t| (t.to_string(), township_secret(t)))
        .collect();
    let receiver = Receiver::start("127.0.0.1:0".parse().unwrap(), &secrets, true)
        .await
        .expect("receiver");
    let broker_dir = dir.path().join("broker");
    std::fs::create_dir_all(&broker_dir).unwrap();
    let broker = Mosquitto::start(&broker_dir)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let data_dir = dir.path().join("data");
    let tmpfs_mb = args.tmpfs_mb.unwrap_or(256 + 2 * args.seconds);
    let tmpfs = Tmpfs::mount(&data_dir, tmpfs_mb)
        .map_err(|e| println!("no tmpfs, so no disk faults: {e}"))
        .ok();
    let gb_port = free_port();
    let sim = match args.cameras {
        0 => None,
        n => Some(
            CamSim::start(CamSimConfig::local(n))
                .await
                .unwrap_or_else(|e| panic!("{e}")),
        ),
    };
    let config = config(&args, &data_dir, &receiver, &broker, gb_port, sim.as_ref());
    let config_path = config.write(dir.path());
    let gw = start(&args.gateway, &config_path, tmpfs.as_ref())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let gb_units = config
        .unit_extra
        .iter()
        .map(|(u, l)| (l.rsplit(' ').next().unwrap().parse().unwrap(), u.clone()))
        .collect();
    let world = Arc::new(World {
        target: tokio::sync::RwLock::new(Target {
            api: gw.addr,
            gb: SocketAddr::from(([127, 0, 0, 1], gb_port)),
            gw: Some(gw),
        }),
        args: args.clone(),
        up: AtomicBool::new(true),
        stop: AtomicBool::new(false),
        calm: AtomicBool::new(false),
        config_path,
        tmpfs,
        broker: tokio::sync::Mutex::new(broker),
        receiver,
        units: config.units.clone(),
        gb_units,
        cameras: if sim.is_some() {
            cameras(&args)
        } else {
            Vec::new()
        },
        sim,
        acked: Mutex::new(HashMap::new()),
        mqtt_published: Mutex::new(Vec::new()),
        publisher: tokio::sync::Mutex::new(None),
        health: Mutex::new(HealthStats::default()),
        rss_max: AtomicU64::new(0),
        faults: Mutex::new(Vec::new()),
        kills: AtomicU64::new(0),
    });
    world.started();
    let watchers = vec![
        tokio::spawn(load::probe_health(world.clone())),
        tokio::spawn(load::sample_rss(world.clone())),
    ];
    let mut load = load::start(world.clone());
    let chaos = tokio::spawn(faults::run(world.clone(), seed));
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    world.calm.store(true, Ordering::SeqCst);
    chaos.await.expect("faults");
    world.stop.store(true, Ordering::SeqCst);
    for t in load.drain(..) {
        let _ = tokio::time::timeout(Duration::from_secs(30), t).await;
    }
    let verdict = oracle::check(&world).await;
    for w in watchers {
        w.abort();
    }
    if let Some(gw) = world.target.write().await.gw.as_mut() {
        let _ = gw.terminate().await;
    }
    if verdict {
        println!("\nPASS");
    } else {
        let kept = dir.keep();
        println!("\nFAIL (files kept in {})", kept.display());
        std::process::exit(1);
    }
}

/// Starts the gateway, on its tmpfs when there is one.
pub async fn start(
    bin: &std::path::Path,
    config: &std::path::Path,
    tmpfs: Option<&Tmpfs>,
) -> Result<Gateway, String> {
    match tmpfs {
        Some(fs) => Gateway::start_in_tmpfs(bin, config, fs).await,
        None => Gateway::start(bin, config).await,
    }
}

/// The bearer token of the pushers and of the admin.
pub fn tokens() -> (&'static str, &'static str) {
    (INGEST_TOKEN, ADMIN_TOKEN)
}
