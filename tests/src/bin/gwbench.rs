//! `gwbench`: benchmarks of the spine, run against the real `gateway` binary on loopback.
//!
//! * `throughput` — durable ingest → delivered, N concurrent HTTP pushers, with group commit
//!   and with one fsync per commit, side by side.
//! * `latency` — HTTP push → webhook received at a fixed offered rate: p50/p90/p99/max.
//! * `video` — picture checks off vs on with many cameras, and fire alarm → delivered with its
//!   snapshot (see `gwbench/video.rs`).
//! * `backlog` — N events committed while every township is down (nothing listens): the
//!   gateway's RSS as the backlog grows, then the drain rate when the receivers come back.
//!
//! Each prints Markdown rows for docs/benchmarks.md. Pushers and receivers run in this process,
//! on the same 2 cores as the gateway: the figures include their cost.

use clap::{Parser, Subcommand};
use gateway_sim::harness::{free_port, metric, township_secret, Gateway, TestConfig, INGEST_TOKEN};
use gateway_sim::receiver::{now_us, Receiver};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "gwbench/cameras.rs"]
mod cameras;
#[path = "gwbench/cases.rs"]
mod cases;
#[path = "gwbench/common.rs"]
mod common;
#[path = "gwbench/console.rs"]
mod console;
#[path = "gwbench/gb.rs"]
mod gb;
#[path = "gwbench/http.rs"]
mod http;
#[path = "gwbench/memory.rs"]
mod memory;
#[path = "gwbench/mqtt.rs"]
mod mqtt;
#[path = "gwbench/registry.rs"]
mod registry;
#[path = "gwbench/sip.rs"]
mod sip;
#[path = "gwbench/units.rs"]
mod units;
#[path = "gwbench/video.rs"]
mod video;

use cameras::cameras;
use common::*;
use gb::gb_devices;
use http::{backlog, ceiling, latency, throughput};
use mqtt::mqtt;
use units::many_units;

/// Judges the scene set (or the held-out scenes) with the shipped thresholds and prints the
/// report.
fn scenes(full: bool, every: bool, holdout: bool) {
    use gateway_sim::scenes;
    let started = Instant::now();
    let t = ::cameras::video::vqd::Thresholds::default();
    let set = if holdout {
        scenes::HOLDOUT
    } else {
        scenes::SCENES
    };
    let samples = scenes::judge_all(&scenes::plan(set, full), &t);
    println!(
        "{} ({}), judged in {:.0} s\n",
        if holdout {
            "held-out scenes"
        } else {
            "scene set"
        },
        if full { "full" } else { "reduced" },
        started.elapsed().as_secs_f64()
    );
    println!("{}", scenes::report(&samples, every));
}

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TOWNSHIPS: [&str; 16] = gateway_sim::harness::LANXI_TOWNSHIPS;
const UNITS_PER_TOWNSHIP: usize = 4;

#[derive(Parser)]
#[command(about = "Benchmarks of the gateway's event spine")]
struct Args {
    /// The gateway binary (build it with `cargo build --release`).
    #[arg(long, default_value = "target/release/gateway")]
    gateway: PathBuf,
    /// Working directory for data (the outbox file can reach gigabytes for `backlog`).
    #[arg(long, default_value = "target/bench")]
    workdir: PathBuf,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Ingest → delivered throughput, group commit vs one fsync per commit.
    Throughput {
        /// Events with group commit.
        #[arg(long, default_value_t = 200_000)]
        events: u64,
        /// Events with one fsync per commit (slower: fewer).
        #[arg(long, default_value_t = 20_000)]
        single_events: u64,
        /// Concurrent HTTP pushers.
        #[arg(long, default_value_t = 16)]
        pushers: usize,
    },
    /// Push → received latency at a fixed rate.
    Latency {
        /// Offered events per second.
        #[arg(long, default_value_t = 1000)]
        rate: u64,
        /// Duration of the measurement.
        #[arg(long, default_value_t = 30)]
        seconds: u64,
    },
    /// The machine's ceiling: plain HTTP exchanges/s with the same client and server stacks
    /// (16 sequential clients posting an event-sized body to the receiver, no gateway).
    Ceiling {
        /// Requests.
        #[arg(long, default_value_t = 100_000)]
        requests: u64,
        /// Concurrent clients.
        #[arg(long, default_value_t = 16)]
        pushers: usize,
    },
    /// MQTT: a QoS 1 telemetry burst from `mosquitto_pub -l` publishers, received by a raw
    /// `mosquitto_sub -q 1` and by the gateway (side by side, same broker settings), with
    /// alarms published during the gateway's burst to measure publish → webhook latency.
    Mqtt {
        /// Telemetry messages in the burst.
        #[arg(long, default_value_t = 100_000)]
        messages: u64,
        /// Concurrent publishers.
        #[arg(long, default_value_t = 10)]
        publishers: u64,
        /// Interval between alarms during the gateway's burst.
        #[arg(long, default_value_t = 10)]
        alarm_every_ms: u64,
        /// Telemetry in the shipped electrical-fire-monitor vendor profile (one payload = five
        /// readings with limits) instead of standard analog messages.
        #[arg(long)]
        vendor: bool,
    },
    /// Memory: RSS fresh, with many half-sent requests open, after a burst of events, and idle
    /// again afterwards.
    Memory {
        /// Events pushed (and delivered).
        #[arg(long, default_value_t = 300_000)]
        events: u64,
        /// Half-sent HTTP requests held open at once.
        #[arg(long, default_value_t = 10_000)]
        connections: usize,
        /// How long to watch the idle gateway afterwards.
        #[arg(long, default_value_t = 30)]
        idle_s: u64,
    },
    /// `gateway check` on a large registry, as TOML tables and as CSV files.
    Registry {
        /// Units.
        #[arg(long, default_value_t = 100_000)]
        units: usize,
        /// Cameras.
        #[arg(long, default_value_t = 20_000)]
        cameras: usize,
    },
    /// Many units heartbeating over MQTT: the gateway's CPU and RSS, and every unit online.
    Units {
        /// Registered units (spread over the 16 townships).
        #[arg(long, default_value_t = 10_000)]
        units: usize,
        /// Heartbeat interval per unit.
        #[arg(long, default_value_t = 30)]
        interval_s: u64,
        /// Measurement length (two intervals by default).
        #[arg(long, default_value_t = 60)]
        seconds: u64,
    },
    /// Many RTSP cameras (camsim) on one gateway: time to all online, CPU and RSS per stream,
    /// against `ffmpeg -c copy -f null` per camera on a sample; offline/online latency.
    Cameras {
        /// Cameras served by camsim and watched by the gateway.
        #[arg(long, default_value_t = 1000)]
        cameras: u32,
        /// Frames per second of every camera.
        #[arg(long, default_value_t = 25)]
        fps: u32,
        /// Bitrate of every camera.
        #[arg(long, default_value_t = 1000)]
        bitrate_kbps: u32,
        /// ffmpeg processes of the baseline.
        #[arg(long, default_value_t = 10)]
        sample: u32,
        /// Length of each CPU measurement.
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        /// `[rtsp] read_batch_ms` of the gateway.
        #[arg(long, default_value_t = 250)]
        read_batch_ms: u64,
        /// `[vqd] interval_s` of the gateway (0: no picture checks, the streams only).
        #[arg(long, default_value_t = 0)]
        vqd_interval_s: u64,
    },
    /// Picture checks' cost with many cameras (off, then on), and fire alarm → delivered with
    /// its snapshot latency meanwhile.
    Video {
        /// Cameras served by camsim and watched by the gateway.
        #[arg(long, default_value_t = 1000)]
        cameras: u32,
        /// Length of each CPU measurement (at least one interval, so every camera is sampled).
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// `[vqd] interval_s` of the second run.
        #[arg(long, default_value_t = 60)]
        vqd_interval_s: u64,
        /// Fire alarms pushed (one at a time, 200 ms apart) during the second run.
        #[arg(long, default_value_t = 100)]
        alarms: u32,
    },
    /// Many GB/T 26875.3 devices connected and heartbeating; alarm confirm latency meanwhile.
    Devices {
        /// Connected devices (one unit each).
        #[arg(long, default_value_t = 10_000)]
        devices: u32,
        /// Heartbeat interval per device.
        #[arg(long, default_value_t = 30)]
        heartbeat_s: u64,
        /// Measurement length.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// Interval between the probe device's alarms.
        #[arg(long, default_value_t = 100)]
        alarm_every_ms: u64,
    },
    /// GB/T 28181 devices (NVRs with channels) registered over SIP and keeping alive: the
    /// gateway's CPU and memory, and keepalive round trips.
    Sip {
        /// Devices.
        #[arg(long, default_value_t = 1_000)]
        devices: u32,
        /// Channels (cameras) per device.
        #[arg(long, default_value_t = 10)]
        channels: usize,
        /// Keepalive period.
        #[arg(long, default_value_t = 60)]
        keepalive_s: u64,
        /// Measurement length.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// Snapshots pulled afterwards (INVITE → keyframe → JPEG), each of another channel —
        /// this many for each way of sending media.
        #[arg(long, default_value_t = 200)]
        pictures: u32,
        /// How the devices send pulled streams, comma-separated (`tcp_passive`, `tcp_active`,
        /// `udp`): device i takes the (i mod n)-th; the snapshots are timed for each.
        #[arg(long, default_value = "tcp_passive")]
        media: String,
    },
    /// The assessment over a large outbox built in-process on the store API (no gateway).
    Assessment {
        #[command(flatten)]
        scale: cases::Scale,
    },
    /// The operator console at county scale: API routes behind its pages, and page loads in
    /// headless Chromium, over a large outbox with many cameras and units.
    Console {
        /// (Cases older than a day are settled.)
        #[command(flatten)]
        scale: cases::Scale,
        /// Cameras streaming from camsim (the wall's first page); the rest are offline.
        #[arg(long, default_value_t = 100)]
        live: u32,
        /// Requests per API route.
        #[arg(long, default_value_t = 200)]
        requests: usize,
        /// Fresh loads per page in the browser.
        #[arg(long, default_value_t = 10)]
        loads: usize,
    },
    /// The picture checks on the labelled scene set: precision and recall per check.
    Scenes {
        /// Every size (360p, 720p, 1080p) and every blur strength, not the suite's reduced set.
        #[arg(long)]
        full: bool,
        /// List every sample with its measures, not only those judged otherwise than labelled.
        #[arg(long)]
        every: bool,
        /// The held-out scenes, kept out of the tuning, instead of the scene set.
        #[arg(long)]
        holdout: bool,
    },
    /// A supervision tick with many open cases, in-process: none due, then many due at once.
    Supervision {
        /// Open cases.
        #[arg(long, default_value_t = 100_000)]
        open: usize,
        /// Of them, due at the second tick.
        #[arg(long, default_value_t = 1000)]
        due: usize,
    },
    /// Sign and feedback through the API of the real gateway.
    Steps {
        /// Alarms to sign and judge.
        #[arg(long, default_value_t = 2000)]
        alarms: u64,
        /// Concurrent clients.
        #[arg(long, default_value_t = 16)]
        clients: usize,
    },
    /// RSS with a large backlog (townships down), then the drain rate.
    Backlog {
        /// Events to queue.
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        /// Concurrent HTTP pushers.
        #[arg(long, default_value_t = 16)]
        pushers: usize,
    },
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    // the scene set judges pictures in process: no gateway needed
    assert!(
        matches!(args.command, Cmd::Scenes { .. }) || Path::new(&args.gateway).exists(),
        "no gateway binary at {}",
        args.gateway.display()
    );
    match args.command {
        Cmd::Assessment { scale } => cases::assessment_bench(&args.gateway, &args.workdir, &scale),
        Cmd::Console {
            scale,
            live,
            requests,
            loads,
        } => {
            let b = console::ConsoleBench {
                scale,
                live,
                requests,
                loads,
            };
            console::console(&args, b).await
        }
        Cmd::Scenes {
            full,
            every,
            holdout,
        } => scenes(full, every, holdout),
        Cmd::Supervision { open, due } => cases::supervision_bench(&args.workdir, open, due).await,
        Cmd::Steps { alarms, clients } => cases::steps_bench(&args, alarms, clients).await,
        Cmd::Throughput {
            events,
            single_events,
            pushers,
        } => throughput(&args, events, single_events, pushers).await,
        Cmd::Latency { rate, seconds } => latency(&args, rate, seconds).await,
        Cmd::Backlog { events, pushers } => backlog(&args, events, pushers).await,
        Cmd::Ceiling { requests, pushers } => ceiling(requests, pushers).await,
        Cmd::Registry { units, cameras } => registry::registry(&args, units, cameras).await,
        Cmd::Memory {
            events,
            connections,
            idle_s,
        } => memory::memory(&args, events, connections, idle_s).await,
        Cmd::Devices {
            devices,
            heartbeat_s,
            seconds,
            alarm_every_ms,
        } => gb_devices(&args, devices, heartbeat_s, seconds, alarm_every_ms).await,
        Cmd::Sip {
            devices,
            channels,
            keepalive_s,
            seconds,
            pictures,
            ref media,
        } => {
            let media: Vec<String> = media.split(',').map(|m| m.trim().to_string()).collect();
            let run = sip::SipRun {
                devices,
                channels,
                keepalive_s,
                seconds,
                pictures,
                media,
            };
            sip::sip(&args, run).await
        }
        Cmd::Cameras {
            cameras: n,
            fps,
            bitrate_kbps,
            sample,
            seconds,
            read_batch_ms,
            vqd_interval_s,
        } => {
            let gw = format!("[rtsp]\nread_batch_ms = {read_batch_ms}\nreconnect_max_s = 2\n\n[vqd]\ninterval_s = {vqd_interval_s}\n\n");
            cameras(&args, n, (fps, bitrate_kbps), sample, seconds, &gw).await
        }
        Cmd::Units {
            units,
            interval_s,
            seconds,
        } => many_units(&args, units, interval_s, seconds).await,
        Cmd::Video {
            cameras,
            seconds,
            vqd_interval_s,
            alarms,
        } => {
            let b = video::VideoBench {
                cameras,
                seconds,
                vqd_interval_s,
                alarms,
            };
            video::video(&args, b).await
        }
        Cmd::Mqtt {
            messages,
            publishers,
            alarm_every_ms,
            vendor,
        } => mqtt(&args, messages, publishers, alarm_every_ms, vendor).await,
    }
}
