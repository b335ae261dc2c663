//! `gwbench`: benchmarks of the spine, run against the real `gateway` binary on loopback.
//!
//! * `throughput` — durable ingest → delivered, N concurrent HTTP pushers, with group commit
//!   and with one fsync per commit, side by side.
//! * `latency` — HTTP push → webhook received at a fixed offered rate: p50/p90/p99/max.
//! * `backlog` — N events committed while every township is down (nothing listens): the
//!   gateway's RSS as the backlog grows, then the drain rate when the receivers come back.
//!
//! Each prints Markdown rows for docs/benchmarks.md. Pushers and receivers run in this process,
//! on the same 2 cores as the gateway: the figures include their cost.

use clap::{Parser, Subcommand};
use gateway_sim::harness::{free_port, township_secret, Gateway, TestConfig, INGEST_TOKEN};
use gateway_sim::receiver::{now_us, Receiver};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    let secrets: Vec<(String, String)> = TOWNSHIPS
        .iter()
        .map(|t| (t.to_string(), township_secret(t)))
        .collect();
    Receiver::start(addr.parse().expect("addr"), &secrets, false)
        .await
        .expect("receiver")
}

/// (utime+stime seconds, RSS bytes, peak RSS bytes) of a process.
fn proc_stats(pid: u32) -> (f64, u64, u64) {
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
    println!("| mode | events | pushers | ingest (acked/s) | end-to-end delivered/s | gateway CPU (cores) | gateway peak RSS |");
    println!("|---|---|---|---|---|---|---|");
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
        let started = Instant::now();
        let (accepted, push_secs) =
            push_all(&setup.gw.url(""), &setup.units, 0, total, pushers).await;
        wait_delivered(&receiver, total, Duration::from_secs(600)).await;
        let secs = started.elapsed().as_secs_f64();
        let (cpu1, _, peak) = proc_stats(pid);
        assert_eq!(receiver.bad_signatures(), 0);
        println!(
            "| {mode} | {total} | {pushers} | {:.0} | {:.0} | {:.2} | {} MiB |",
            accepted as f64 / push_secs,
            total as f64 / secs,
            (cpu1 - cpu0) / secs,
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
    }
}
