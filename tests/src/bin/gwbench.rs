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

#[path = "gwbench/video.rs"]
mod video;

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

struct Setup {
    _dir: tempfile::TempDir,
    gw: Gateway,
    units: Vec<String>,
}

async fn start_gateway(args: &Args, receiver_base: &str, extra: &str) -> Setup {
    std::fs::create_dir_all(&args.workdir).expect("workdir");
    let dir = tempfile::tempdir_in(&args.workdir).expect("tempdir");
    let mut config = TestConfig::new(
        &dir.path().join("data"),
        receiver_base,
        &TOWNSHIPS,
        UNITS_PER_TOWNSHIP,
    );
    config.extra = extra.to_string();
    let path = config.write(dir.path());
    let gw = Gateway::start(&args.gateway, &path, config.listen)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let units = config.units.iter().map(|(id, _)| id.clone()).collect();
    Setup {
        _dir: dir,
        gw,
        units,
    }
}

async fn receiver(addr: &str) -> Receiver {
    receiver_recording(addr, false).await
}

/// A receiver for the 16 townships that keeps the bodies it receives when `record`.
async fn receiver_recording(addr: &str, record: bool) -> Receiver {
    let secrets: Vec<(String, String)> = TOWNSHIPS
        .iter()
        .map(|t| (t.to_string(), township_secret(t)))
        .collect();
    Receiver::start(addr.parse().expect("addr"), &secrets, record)
        .await
        .expect("receiver")
}

/// (utime+stime seconds, RSS bytes, peak RSS bytes) of a process.
/// CPU seconds of a process's live threads, to the nanosecond (`/proc/PID/task/*/schedstat`);
/// `None` where the kernel does not offer it.
fn cpu_ns(pid: u32) -> Option<f64> {
    let mut total = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total as f64 / 1e9)
}

/// (CPU seconds, RSS, peak RSS) of a process. CPU comes from the scheduler's nanosecond
/// accounting when available (the 10 ms ticks of `/proc/PID/stat` are too coarse for a process
/// that uses a few milliseconds a second, such as one `ffmpeg -c copy`).
fn proc_stats(pid: u32) -> (f64, u64, u64) {
    let (_, rss, peak) = proc_stats_ticks(pid);
    match cpu_ns(pid) {
        Some(cpu) => (cpu, rss, peak),
        None => proc_stats_ticks(pid),
    }
}

fn proc_stats_ticks(pid: u32) -> (f64, u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: f64 = fields
        .get(11)
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        + fields
            .get(12)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = |key: &str| -> u64 {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
            * 1024
    };
    (ticks / 100.0, kb("VmRSS:"), kb("VmHWM:"))
}

fn body(n: u64) -> serde_json::Value {
    json!({"system_type": 1, "system_addr": 1, "component_type": 40, "component_addr": n,
           "status": ["fire"], "description": format!("bench t={}", now_us())})
}

/// Pushes `total` distinct events (component addresses `first..first + total`, so none is a
/// repeat that dedup would absorb) with `pushers` sequential clients; returns (accepted, seconds).
async fn push_all(
    base: &str,
    units: &[String],
    first: u64,
    total: u64,
    pushers: usize,
) -> (u64, f64) {
    let next = Arc::new(AtomicU64::new(first));
    let total = first + total;
    let accepted = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..pushers {
        let (next, accepted, base, units) = (
            next.clone(),
            accepted.clone(),
            base.to_string(),
            units.to_vec(),
        );
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .expect("client");
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    return;
                }
                let unit = &units[(n as usize) % units.len()];
                let url = format!("{base}/api/v1/ingest/{unit}/status");
                loop {
                    match client
                        .post(&url)
                        .bearer_auth(INGEST_TOKEN)
                        .json(&body(n))
                        .send()
                        .await
                    {
                        Ok(r) if r.status().as_u16() == 202 => break,
                        Ok(r) if r.status().as_u16() == 503 => {
                            tokio::time::sleep(Duration::from_millis(50)).await
                        }
                        Ok(r) => panic!("push answered {}", r.status()),
                        Err(e) => panic!("push failed: {e}"),
                    }
                }
                accepted.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.expect("pusher");
    }
    (
        accepted.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64(),
    )
}

async fn wait_delivered(receiver: &Receiver, total: u64, limit: Duration) -> f64 {
    let started = Instant::now();
    while (receiver.unique() as u64) < total {
        assert!(
            started.elapsed() < limit,
            "only {} of {total} delivered after {limit:?}",
            receiver.unique()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed().as_secs_f64()
}

async fn throughput(args: &Args, events: u64, single_events: u64, pushers: usize) {
    println!("| mode | events | pushers | ingest (acked/s) | end-to-end delivered/s | gateway CPU (cores) | gateway CPU per event | harness CPU (cores) | gateway peak RSS |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for (mode, total, extra) in [
        ("group commit", events, "[outbox]\ngroup_commit = true\n"),
        (
            "one fsync per commit",
            single_events,
            "[outbox]\ngroup_commit = false\n",
        ),
    ] {
        let receiver = receiver("127.0.0.1:0").await;
        let base = format!("http://{}", receiver.addr());
        let setup = start_gateway(args, &base, extra).await;
        let pid = setup.gw.pid();
        let (cpu0, _, _) = proc_stats(pid);
        // the pushers and the receiver run in this process: their CPU is the harness's share
        let (own0, _, _) = proc_stats(std::process::id());
        let started = Instant::now();
        let (accepted, push_secs) =
            push_all(&setup.gw.url(""), &setup.units, 0, total, pushers).await;
        wait_delivered(&receiver, total, Duration::from_secs(600)).await;
        let secs = started.elapsed().as_secs_f64();
        let (cpu1, _, peak) = proc_stats(pid);
        let (own1, _, _) = proc_stats(std::process::id());
        assert_eq!(receiver.bad_signatures(), 0);
        println!(
            "| {mode} | {total} | {pushers} | {:.0} | {:.0} | {:.2} | {:.0} µs | {:.2} | {} MiB |",
            accepted as f64 / push_secs,
            total as f64 / secs,
            (cpu1 - cpu0) / secs,
            (cpu1 - cpu0) / total as f64 * 1e6,
            (own1 - own0) / secs,
            peak >> 20
        );
        receiver.stop();
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

async fn latency(args: &Args, rate: u64, seconds: u64) {
    let receiver = receiver("127.0.0.1:0").await;
    let base = format!("http://{}", receiver.addr());
    let setup = start_gateway(args, &base, "").await;
    let url = setup.gw.url("");
    // warm-up: connections, page cache
    push_all(&url, &setup.units, 0, 2000, 8).await;
    wait_delivered(&receiver, 2000, Duration::from_secs(60)).await;
    receiver.clear();
    let lanes = 8u64;
    let per_lane = Duration::from_secs_f64(lanes as f64 / rate as f64);
    let total = rate * seconds;
    let counter = Arc::new(AtomicU64::new(1_000_000));
    let mut tasks = Vec::new();
    for _ in 0..lanes {
        let (url, units, counter) = (url.clone(), setup.units.clone(), counter.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut tick = tokio::time::interval(per_lane);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            for _ in 0..total / lanes {
                tick.tick().await;
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let unit = &units[(n as usize) % units.len()];
                let r = client
                    .post(format!("{url}/api/v1/ingest/{unit}/status"))
                    .bearer_auth(INGEST_TOKEN)
                    .json(&body(n))
                    .send()
                    .await
                    .expect("push");
                assert_eq!(r.status().as_u16(), 202);
            }
        }));
    }
    for t in tasks {
        t.await.expect("lane");
    }
    let sent = total / lanes * lanes;
    wait_delivered(&receiver, sent, Duration::from_secs(120)).await;
    let mut l = receiver.take_latencies_us();
    l.sort_unstable();
    println!("| offered rate | events | p50 | p90 | p99 | max |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| {rate}/s | {} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms |",
        l.len(),
        percentile(&l, 0.50),
        percentile(&l, 0.90),
        percentile(&l, 0.99),
        percentile(&l, 1.0)
    );
}

async fn backlog(args: &Args, events: u64, pushers: usize) {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let extra = "[outbox]\nmax_pending_events = 5000000\n[delivery]\nbackoff_initial_ms = 100\nbackoff_max_ms = 1000\n";
    let setup = start_gateway(args, &base, extra).await;
    let pid = setup.gw.pid();
    let url = setup.gw.url("");
    println!("| events queued (townships down) | gateway RSS |");
    println!("|---|---|");
    let step = events / 4;
    let started = Instant::now();
    for i in 1..=4u64 {
        push_all(&url, &setup.units, (i - 1) * step, step, pushers).await;
        let (_, rss, _) = proc_stats(pid);
        println!("| {} | {} MiB |", i * step, rss >> 20);
    }
    let ingest_secs = started.elapsed().as_secs_f64();
    let queued = step * 4;
    let receiver = receiver(&format!("127.0.0.1:{port}")).await;
    let drain = wait_delivered(&receiver, queued, Duration::from_secs(1800)).await;
    let (_, rss, peak) = proc_stats(pid);
    println!();
    println!(
        "ingest with townships down: {:.0} events/s; drain after they return: {queued} events in {drain:.1} s = {:.0} events/s; RSS after drain {} MiB, peak {} MiB",
        queued as f64 / ingest_secs,
        queued as f64 / drain,
        rss >> 20,
        peak >> 20
    );
}

/// Writes one file of telemetry lines per publisher; returns (topic, file) pairs.
fn telemetry_files(
    dir: &Path,
    units: &[String],
    messages: u64,
    publishers: u64,
    vendor: bool,
) -> Vec<(String, PathBuf)> {
    (0..publishers)
        .map(|p| {
            let unit = &units[p as usize % units.len()];
            let path = dir.join(format!("telemetry-{p}.txt"));
            let mut text = String::new();
            for n in 0..messages / publishers {
                let payload = if vendor {
                    // residual current sweeps 0-399 mA: past the 300 mA limit once per sweep
                    json!({"ts": 1764295200 + n, "ir": n % 400,
                           "t": {"A": 40.0, "B": 41.5, "C": 39.0}, "state": "NORMAL"})
                } else {
                    json!({"system_type": 1, "system_addr": 1, "component_type": 17,
                        "component_addr": n, "analog_type": 9, "value": (n % 100) as f64 / 100.0})
                };
                text += &payload.to_string();
                text.push('\n');
            }
            std::fs::write(&path, text).expect("write telemetry");
            let topic = if vendor {
                format!("efm/{unit}/up")
            } else {
                format!("fire/{unit}/analog")
            };
            (topic, path)
        })
        .collect()
}

fn publish_files(port: u16, files: &[(String, PathBuf)]) -> Vec<std::process::Child> {
    files
        .iter()
        .enumerate()
        .map(|(i, (topic, path))| {
            std::process::Command::new("mosquitto_pub")
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &port.to_string(),
                    "-q",
                    "1",
                    "-l",
                    "-t",
                    topic,
                ])
                .args(["-i", &format!("bench-pub-{i}")])
                .stdin(std::fs::File::open(path).expect("telemetry file"))
                .spawn()
                .expect("mosquitto_pub (install mosquitto-clients)")
        })
        .collect()
}

async fn mqtt(args: &Args, messages: u64, publishers: u64, alarm_every_ms: u64, vendor: bool) {
    use gateway_sim::mosquitto::{Mosquitto, Publisher};
    std::fs::create_dir_all(&args.workdir).expect("workdir");
    let dir = tempfile::tempdir_in(&args.workdir).expect("tempdir");
    let mut broker = Mosquitto::start(&dir.path().join("broker"))
        .await
        .expect("mosquitto");
    let total = messages / publishers * publishers;

    // 1. the raw limit: one mosquitto_sub -q 1
    let units: Vec<String> = TOWNSHIPS.iter().map(|t| format!("{t}-u1")).collect();
    let files = telemetry_files(dir.path(), &units, total, publishers, vendor);
    let filter = if vendor { "efm/+/up" } else { "fire/+/+" };
    // a persistent session with the subscription, acknowledged before anything is published
    let port = broker.port.to_string();
    let sub_args = [
        "-h",
        "127.0.0.1",
        "-p",
        port.as_str(),
        "-q",
        "1",
        "-t",
        filter,
        "-c",
        "-i",
        "raw-sub",
    ];
    let ready = std::process::Command::new("mosquitto_sub")
        .args(sub_args)
        .arg("-E")
        .status()
        .expect("mosquitto_sub (install mosquitto-clients)");
    assert!(ready.success(), "mosquitto_sub -E: {ready}");
    let mut sub = std::process::Command::new("mosquitto_sub")
        .args(sub_args)
        .args(["-C", &total.to_string()])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("mosquitto_sub");
    let started = Instant::now();
    let pubs = publish_files(broker.port, &files);
    let status = tokio::task::spawn_blocking(move || sub.wait())
        .await
        .expect("join")
        .expect("wait");
    let raw_secs = started.elapsed().as_secs_f64();
    assert!(status.success(), "mosquitto_sub: {status}");
    for mut p in pubs {
        p.wait().expect("publisher");
    }
    let raw_rate = total as f64 / raw_secs;

    // 2. the gateway, same broker, same burst, alarms alongside
    let receiver = receiver("127.0.0.1:0").await;
    let base = format!("http://{}", receiver.addr());
    let profiles = if vendor {
        let file = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../config/profiles/electrical-fire-monitor.toml");
        format!(
            "[registry]\nprofile_files = [{:?}]\n",
            file.display().to_string()
        )
    } else {
        String::new()
    };
    let extra = format!(
        "{profiles}\n[mqtt]\nurl = \"{}\"\nclient_id = \"gw-bench\"\n",
        broker.url()
    );
    let setup = start_gateway(args, &base, &extra).await;
    let pid = setup.gw.pid();
    let gw = &setup.gw;
    let ingested = || async {
        metric(
            &gw.metrics().await,
            "gateway_ingest_messages_total{source=\"mqtt\"}",
        ) as u64
    };
    while metric(&gw.metrics().await, "gateway_mqtt_subscribed") != 1.0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut alarm_pub = Publisher::connect(broker.port, "bench-alarms");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let alarms = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut sent = 0u64;
            let mut tick = tokio::time::interval(Duration::from_millis(alarm_every_ms));
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                alarm_pub
                    .publish(
                        "fire/lanjiang-u2/status",
                        body(10_000_000 + sent).to_string(),
                    )
                    .await;
                sent += 1;
            }
            // every alarm reaches the broker before the publisher goes
            alarm_pub
                .wait_acked(sent, Duration::from_secs(30))
                .await
                .expect("alarms acknowledged");
            sent
        })
    };
    let (cpu0, _, _) = proc_stats(pid);
    let started = Instant::now();
    let pubs = publish_files(broker.port, &files);
    for mut p in pubs {
        tokio::task::spawn_blocking(move || p.wait())
            .await
            .expect("join")
            .expect("publisher");
    }
    stop.store(true, Ordering::Relaxed);
    let sent_alarms = alarms.await.expect("alarms");
    let want = total + sent_alarms;
    while ingested().await < want {
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "gateway processed {} of {want}",
            ingested().await
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let gw_secs = started.elapsed().as_secs_f64();
    let (cpu1, _, peak) = proc_stats(pid);
    wait_delivered(&receiver, sent_alarms, Duration::from_secs(60)).await;
    let mut l = receiver.take_latencies_us();
    l.sort_unstable();
    let gw_rate = want as f64 / gw_secs;
    println!("| subscriber | QoS 1 messages | seconds | messages/s | vs raw |");
    println!("|---|---|---|---|---|");
    println!("| mosquitto_sub -q 1 (raw) | {total} | {raw_secs:.2} | {raw_rate:.0} | 1.00 |");
    println!(
        "| gateway (processed, counted) | {want} | {gw_secs:.2} | {gw_rate:.0} | {:.2} |",
        gw_rate / raw_rate
    );
    println!();
    println!(
        "gateway CPU {:.2} cores, peak RSS {} MiB; alarms during the burst: {} delivered, publish → webhook p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        (cpu1 - cpu0) / gw_secs,
        peak >> 20,
        l.len(),
        percentile(&l, 0.5),
        percentile(&l, 0.99),
        percentile(&l, 1.0)
    );
    broker.stop().await;
}

async fn many_units(args: &Args, units: usize, interval_s: u64, seconds: u64) {
    use gateway_sim::mosquitto::{Mosquitto, Publisher};
    std::fs::create_dir_all(&args.workdir).expect("workdir");
    let dir = tempfile::tempdir_in(&args.workdir).expect("tempdir");
    let broker = Mosquitto::start(&dir.path().join("broker"))
        .await
        .expect("mosquitto");
    let receiver = receiver("127.0.0.1:0").await;
    let base = format!("http://{}", receiver.addr());
    let per_township = units.div_ceil(TOWNSHIPS.len());
    let mut config = TestConfig::new(&dir.path().join("data"), &base, &TOWNSHIPS, per_township);
    config.extra = format!(
        "\n[mqtt]\nurl = \"{}\"\nclient_id = \"gw-units\"\n",
        broker.url()
    );
    let path = config.write(dir.path());
    let gw = Gateway::start(&args.gateway, &path, config.listen)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    while metric(&gw.metrics().await, "gateway_mqtt_subscribed") != 1.0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ids: Vec<String> = config.units.iter().map(|(id, _)| id.clone()).collect();
    let pid = gw.pid();
    let (_, rss_before, _) = proc_stats(pid);
    // 4 publisher connections, each carrying a quarter of the units, spread over the interval
    let lanes = 4usize;
    let started = Instant::now();
    let (cpu0, _, _) = proc_stats(pid);
    let mut tasks = Vec::new();
    for lane in 0..lanes {
        let mine: Vec<String> = ids.iter().skip(lane).step_by(lanes).cloned().collect();
        let port = broker.port;
        tasks.push(tokio::spawn(async move {
            let mut publisher = Publisher::connect(port, &format!("units-{lane}"));
            let gap = Duration::from_secs_f64(interval_s as f64 / mine.len().max(1) as f64);
            let mut tick = tokio::time::interval(gap);
            let mut sent = 0u64;
            let end = Instant::now() + Duration::from_secs(seconds);
            'outer: loop {
                for unit in &mine {
                    tick.tick().await;
                    if Instant::now() >= end {
                        break 'outer;
                    }
                    publisher
                        .publish(&format!("fire/{unit}/heartbeat"), "{}")
                        .await;
                    sent += 1;
                }
            }
            publisher
                .wait_acked(sent, Duration::from_secs(60))
                .await
                .expect("heartbeats acknowledged");
            sent
        }));
    }
    let mut sent = 0;
    for t in tasks {
        sent += t.await.expect("lane");
    }
    let secs = started.elapsed().as_secs_f64();
    let series = "gateway_ingest_messages_total{source=\"mqtt\"}";
    while (metric(&gw.metrics().await, series) as u64) < sent {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (cpu1, rss, peak) = proc_stats(pid);
    let m = gw.metrics().await;
    let ratios: Vec<f64> = TOWNSHIPS
        .iter()
        .map(|t| {
            metric(
                &m,
                &format!("gateway_unit_online_ratio{{township=\"{t}\"}}"),
            )
        })
        .collect();
    let min_ratio = ratios.iter().cloned().fold(f64::MAX, f64::min);
    println!("| units | heartbeat every | messages | gateway CPU (cores) | RSS before / after / peak | lowest township online ratio |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| {} | {interval_s} s | {sent} in {secs:.0} s ({:.0}/s) | {:.3} | {} / {} / {} MiB | {min_ratio:.3} |",
        ids.len(),
        sent as f64 / secs,
        (cpu1 - cpu0) / secs,
        rss_before >> 20,
        rss >> 20,
        peak >> 20
    );
}

async fn ceiling(requests: u64, pushers: usize) {
    let receiver = receiver("127.0.0.1:0").await;
    let url = receiver.url(TOWNSHIPS[0]);
    let secret = township_secret(TOWNSHIPS[0]);
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..pushers {
        let (next, url, secret) = (next.clone(), url.clone(), secret.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            while next.fetch_add(1, Ordering::Relaxed) < requests {
                let body = serde_json::to_vec(&body(0)).expect("json");
                let sig = alerts_signature(secret.as_bytes(), &body);
                let r = client
                    .post(&url)
                    .header("X-Gateway-Signature", sig)
                    .header("Idempotency-Key", "00000000-0000-7000-8000-000000000000")
                    .body(body)
                    .send()
                    .await
                    .expect("post");
                assert!(r.status().is_success());
            }
        }));
    }
    for t in tasks {
        t.await.expect("client");
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "| HTTP exchanges (no gateway) | {requests} | {pushers} | {:.0}/s |",
        requests as f64 / secs
    );
}

fn alerts_signature(secret: &[u8], body: &[u8]) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).expect("key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    assert!(
        Path::new(&args.gateway).exists(),
        "no gateway binary at {}",
        args.gateway.display()
    );
    match args.command {
        Cmd::Throughput {
            events,
            single_events,
            pushers,
        } => throughput(&args, events, single_events, pushers).await,
        Cmd::Latency { rate, seconds } => latency(&args, rate, seconds).await,
        Cmd::Backlog { events, pushers } => backlog(&args, events, pushers).await,
        Cmd::Ceiling { requests, pushers } => ceiling(requests, pushers).await,
        Cmd::Devices {
            devices,
            heartbeat_s,
            seconds,
            alarm_every_ms,
        } => gb_devices(&args, devices, heartbeat_s, seconds, alarm_every_ms).await,
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

fn wait_port(port: u16, within: Duration) {
    let deadline = Instant::now() + within;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn cameras_up(metrics: &str) -> usize {
    metrics
        .lines()
        .filter(|l| l.starts_with("gateway_camera_up{") && l.ends_with(" 1"))
        .count()
}

async fn cameras(
    args: &Args,
    n: u32,
    (fps, kbps): (u32, u32),
    sample: u32,
    seconds: u64,
    gateway_settings: &str,
) {
    use gateway_sim::camsim::{clip::ClipSpec, CamSim, CamSimConfig, Fault};
    // the streams: a camsim process of its own, so its cost is not the gateway's
    let port = free_port();
    let camsim_bin = args.gateway.with_file_name("camsim");
    let mut camsim = std::process::Command::new(&camsim_bin)
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--cameras",
            &n.to_string(),
        ])
        .args([
            "--fps",
            &fps.to_string(),
            "--bitrate-kbps",
            &kbps.to_string(),
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", camsim_bin.display()));
    wait_port(port, Duration::from_secs(120));
    // one more camera, in this process, whose death and return are timed
    let probe = CamSim::start(CamSimConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        cameras: 1,
        clip: ClipSpec {
            fps,
            kbps,
            ..ClipSpec::default()
        },
        credentials: None,
        camera_credentials: Default::default(),
        faults: Default::default(),
        onvif: Default::default(),
    })
    .await
    .expect("probe camsim");
    // few events, each looked at: a receiver that records them
    let receiver = receiver_recording("127.0.0.1:0", true).await;
    let base = format!("http://{}", receiver.addr());
    let mut extra = format!(
        "[health]\ncamera_offline_after_s = 10\ncamera_stall_after_s = 5\n\n{gateway_settings}"
    );
    for i in 1..=n {
        let t = TOWNSHIPS[i as usize % TOWNSHIPS.len()];
        extra += &format!(
            "[[cameras]]\nid = \"cam-{i:04}\"\nname = \"cam {i}\"\ntownship = \"{t}\"\nurl = \"rtsp://127.0.0.1:{port}/cam/{i}\"\n\n"
        );
    }
    extra += &format!(
        "[[cameras]]\nid = \"probe\"\nname = \"probe\"\ntownship = \"lanjiang\"\nurl = \"{}\"\n\n",
        probe.url(1)
    );
    let started = Instant::now();
    let setup = start_gateway(args, &base, &extra).await;
    let gw = &setup.gw;
    let want = n as usize + 1;
    let mut up = 0;
    while up < want {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "only {up} of {want} cameras online"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        up = cameras_up(&gw.metrics().await);
    }
    let all_online = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let pid = gw.pid();
    let (cpu0, _, _) = proc_stats(pid);
    let (sim0, _, _) = proc_stats(camsim.id());
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let secs = t0.elapsed().as_secs_f64();
    let (cpu1, rss, peak) = proc_stats(pid);
    let (sim1, sim_rss, _) = proc_stats(camsim.id());
    let up_now = cameras_up(&gw.metrics().await);
    let gw_cores = (cpu1 - cpu0) / secs;

    // offline and back, timed to the webhook
    let count = |kind: &str| {
        receiver
            .deliveries()
            .iter()
            .filter(|d| d.event_header == kind)
            .count()
    };
    let (off0, on0) = (count("camera.offline"), count("camera.online"));
    let killed = Instant::now();
    probe.set_fault(1, Some(Fault::Refuse));
    while count("camera.offline") == off0 {
        assert!(
            killed.elapsed() < Duration::from_secs(120),
            "no camera.offline"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let to_offline = killed.elapsed().as_secs_f64();
    let back = Instant::now();
    probe.set_fault(1, None);
    while count("camera.online") == on0 {
        assert!(
            back.elapsed() < Duration::from_secs(120),
            "no camera.online"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let to_online = back.elapsed().as_secs_f64();

    // the baseline: what users run instead, one ffmpeg per camera
    let mut ffmpegs: Vec<std::process::Child> = (1..=sample)
        .map(|i| {
            std::process::Command::new("ffmpeg")
                .args([
                    "-hide_banner",
                    "-loglevel",
                    "error",
                    "-rtsp_transport",
                    "tcp",
                    "-i",
                ])
                .arg(format!("rtsp://127.0.0.1:{port}/cam/{i}"))
                .args(["-c", "copy", "-f", "null", "-"])
                .stdin(std::process::Stdio::null())
                .spawn()
                .expect("ffmpeg (apt install ffmpeg)")
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let before: Vec<f64> = ffmpegs.iter().map(|c| proc_stats(c.id()).0).collect();
    let f0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let fsecs = f0.elapsed().as_secs_f64();
    let after: Vec<(f64, u64, u64)> = ffmpegs.iter().map(|c| proc_stats(c.id())).collect();
    for c in &mut ffmpegs {
        let _ = c.kill();
        let _ = c.wait();
    }
    let ff_cpu: f64 = before
        .iter()
        .zip(&after)
        .map(|(b, a)| (a.0 - b) / fsecs)
        .sum::<f64>()
        / sample as f64;
    let ff_rss = after.iter().map(|a| a.1).sum::<u64>() as f64 / sample as f64;
    let _ = camsim.kill();
    let _ = camsim.wait();

    let gw_stream_cpu = gw_cores / want as f64;
    let gw_stream_rss = rss as f64 / want as f64;
    println!("{want} cameras ({n} from a camsim process + 1 probe), {fps} fps, {kbps} kbps, TCP interleaved");
    println!();
    println!("| | streams | CPU (cores) | CPU per stream | RSS | RSS per stream |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| gateway | {want} ({up_now} online) | {gw_cores:.3} | {:.3} % | {} MiB (peak {} MiB) | {:.0} KiB |",
        gw_stream_cpu * 100.0,
        rss >> 20,
        peak >> 20,
        gw_stream_rss / 1024.0
    );
    println!(
        "| ffmpeg -c copy -f null (baseline, {sample} processes) | 1 each | {:.3} each | {:.3} % | {:.0} MiB each | {:.0} KiB |",
        ff_cpu,
        ff_cpu * 100.0,
        ff_rss / 1048576.0,
        ff_rss / 1024.0
    );
    println!(
        "| gateway advantage | | | {:.1}× less | | {:.1}× less |",
        ff_cpu / gw_stream_cpu,
        ff_rss / gw_stream_rss
    );
    println!();
    println!(
        "all {want} online {all_online:.1} s after the gateway was started; camsim itself: {:.2} cores, {} MiB",
        (sim1 - sim0) / secs,
        sim_rss >> 20
    );
    println!(
        "probe camera refused → camera.offline received in {to_offline:.1} s (camera_offline_after_s = 10); back → camera.online received in {to_online:.1} s"
    );
    probe.stop();
    receiver.stop();
}

async fn gb_devices(args: &Args, n: u32, heartbeat_s: u64, seconds: u64, alarm_every_ms: u64) {
    use gateway_sim::gbsim::{fire_alarm, Device};
    use ingest::gb26875::command;
    std::fs::create_dir_all(&args.workdir).expect("workdir");
    let dir = tempfile::tempdir_in(&args.workdir).expect("tempdir");
    // n + 1 units with device addresses 1..=n+1 (the last is the probe), from a CSV registry
    let mut csv = String::from("id,name,township,heartbeat_timeout_s,gb26875_address\n");
    for a in 1..=n + 1 {
        let t = TOWNSHIPS[a as usize % TOWNSHIPS.len()];
        csv += &format!("gb-{a:05},单位{a},{t},{},{a}\n", heartbeat_s * 3);
    }
    std::fs::write(dir.path().join("units.csv"), csv).expect("units.csv");
    let receiver = receiver("127.0.0.1:0").await;
    let base = format!("http://{}", receiver.addr());
    let port = free_port();
    let mut config = TestConfig::new(&dir.path().join("data"), &base, &TOWNSHIPS, 1);
    config.extra = format!(
        "[registry]\nunits_csv = {:?}\n\n[gb26875]\nlisten = \"127.0.0.1:{port}\"\nidle_timeout_s = {}\n\n",
        dir.path().join("units.csv").display().to_string(),
        heartbeat_s * 3
    );
    let path = config.write(dir.path());
    let gw = Gateway::start(&args.gateway, &path, config.listen)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let pid = gw.pid();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (_, rss_idle, _) = proc_stats(pid);
    let gateway: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");

    // n devices connect (in waves, not to overflow the listen backlog) and heartbeat
    let confirmed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let connected = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    let started = Instant::now();
    for a in 1..=n {
        let (confirmed, stop, connected) = (confirmed.clone(), stop.clone(), connected.clone());
        tasks.push(tokio::spawn(async move {
            let mut dev = match Device::connect(gateway, a as u64, 88888).await {
                Ok(d) => d,
                Err(e) => panic!("device {a}: {e}"),
            };
            connected.fetch_add(1, Ordering::Relaxed);
            // spread the heartbeats over the interval
            let phase = Duration::from_millis((a as u64 * 7919) % (heartbeat_s * 1000));
            let mut tick = tokio::time::interval_at(
                tokio::time::Instant::now() + phase,
                Duration::from_secs(heartbeat_s),
            );
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let hb = dev.frame(None);
                dev.write(&hb.encode()).await.expect("heartbeat");
                // the answer (and the clock sync the gateway sends once) are read as they come
                while let Some(f) = dev.recv(Duration::from_millis(1)).await {
                    if f.header.command == command::CONFIRM {
                        confirmed.fetch_add(1, Ordering::Relaxed);
                    } else if f.header.command == command::CONTROL {
                        let _ = dev.confirm(&f).await;
                    }
                }
            }
        }));
        if a % 500 == 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    while connected.load(Ordering::Relaxed) < n as u64 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "devices did not connect"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let connect_secs = started.elapsed().as_secs_f64();
    // let every device heartbeat once
    tokio::time::sleep(Duration::from_secs(heartbeat_s + 2)).await;
    let (cpu0, rss_connected, _) = proc_stats(pid);
    // the probe: alarms, timed from write to confirm, while the others heartbeat
    let mut probe = Device::connect(gateway, n as u64 + 1, 88888)
        .await
        .expect("probe");
    let mut latencies = Vec::new();
    let t0 = Instant::now();
    let mut k = 0u32;
    while t0.elapsed() < Duration::from_secs(seconds) {
        k += 1;
        let f = probe.frame(Some(fire_alarm(k, "bench")));
        let sent = Instant::now();
        let answer = probe
            .exchange(&f, Duration::from_secs(10))
            .await
            .expect("confirm");
        assert_eq!(answer.header.command, command::CONFIRM);
        latencies.push(sent.elapsed().as_micros() as u64);
        tokio::time::sleep(Duration::from_millis(alarm_every_ms)).await;
    }
    let secs = t0.elapsed().as_secs_f64();
    let (cpu1, rss_end, peak) = proc_stats(pid);
    stop.store(true, Ordering::Relaxed);
    let hb = confirmed.load(Ordering::Relaxed);
    latencies.sort_unstable();
    println!("| devices | heartbeat | connected in | gateway CPU | RSS idle → connected (peak) | RSS per connection | heartbeats confirmed | alarm confirms | p50 | p99 | max |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {n} | {heartbeat_s} s | {connect_secs:.1} s | {:.3} cores | {} → {} MiB ({} MiB) | {:.1} KiB | {hb} | {} | {:.1} ms | {:.1} ms | {:.1} ms |",
        (cpu1 - cpu0) / secs,
        rss_idle >> 20,
        rss_connected >> 20,
        peak.max(rss_end) >> 20,
        (rss_connected.saturating_sub(rss_idle)) as f64 / n as f64 / 1024.0,
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0),
    );
    for t in tasks {
        t.abort();
    }
    receiver.stop();
}
