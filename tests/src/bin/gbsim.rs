//! `gbsim`: simulated GB/T 26875.3 transmission devices over TCP.
//!
//! `gbsim --connect 127.0.0.1:9026 --first-address 1001 --devices 10 [--heartbeat-s 30]
//!        [--alarm-every-s 20] [--fault-every-s 60] [--garbage-every-s 0] [--seconds 60]`
//!
//! Each device heartbeats, confirms the center's commands (clock sync, patrol checks) and
//! answers patrol checks two seconds later; now and then one raises a fire alarm or a fault
//! (with a GB18030 description), or — with `--garbage-every-s` — sends garbage, a split frame
//! and a frame with a bad checksum, to exercise the gateway's decoder.

use clap::Parser;
use gateway_sim::gbsim::{component_status, fire_alarm, patrol_answer, Device};
use ingest::gb26875::{command, Objects};
use rand::Rng;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(about = "Simulated GB/T 26875.3 transmission devices")]
struct Args {
    /// The gateway's GB/T 26875.3 address.
    #[arg(long, default_value = "127.0.0.1:9026")]
    connect: std::net::SocketAddr,
    /// Address of the first device (the next ones follow).
    #[arg(long, default_value_t = 1001)]
    first_address: u64,
    /// Number of devices.
    #[arg(long, default_value_t = 10)]
    devices: u64,
    /// The center's address written into frames.
    #[arg(long, default_value_t = 88888)]
    center: u64,
    /// Heartbeat interval per device.
    #[arg(long, default_value_t = 30)]
    heartbeat_s: u64,
    /// A fire alarm from some device this often, on average (0: never).
    #[arg(long, default_value_t = 20)]
    alarm_every_s: u64,
    /// A fault from some device this often, on average (0: never).
    #[arg(long, default_value_t = 60)]
    fault_every_s: u64,
    /// Protocol faults from some device this often, on average (0: never).
    #[arg(long, default_value_t = 0)]
    garbage_every_s: u64,
    /// Stop after this many seconds (default: run until stopped).
    #[arg(long)]
    seconds: Option<u64>,
}

#[derive(Default)]
struct Stats {
    confirmed: AtomicU64,
    denied: AtomicU64,
    alarms: AtomicU64,
    patrols: AtomicU64,
}

fn chance(rng: &mut impl Rng, every_s: u64, devices: u64) -> bool {
    every_s > 0 && rng.gen_bool((1.0 / (every_s as f64 * devices as f64)).min(1.0))
}

async fn run(args: Arc<Args>, address: u64, stats: Arc<Stats>) {
    let mut dev = match Device::connect(args.connect, address, args.center).await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("gbsim: device {address}: {e}");
            return;
        }
    };
    let mut rng = rand::rngs::StdRng::from_entropy();
    let mut next_heartbeat = tokio::time::Instant::now();
    let mut patrol_due: Option<tokio::time::Instant> = None;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let now = tokio::time::Instant::now();
        let mut frames = Vec::new();
        if now >= next_heartbeat {
            frames.push(dev.frame(None));
            next_heartbeat = now + Duration::from_secs(args.heartbeat_s);
        }
        if chance(&mut rng, args.alarm_every_s, args.devices) {
            let desc = format!("{}F 东走廊感烟探测器", rng.gen_range(1..20));
            frames.push(dev.frame(Some(fire_alarm(rng.gen_range(1..500), &desc))));
            stats.alarms.fetch_add(1, Ordering::Relaxed);
        }
        if chance(&mut rng, args.fault_every_s, args.devices) {
            frames.push(dev.frame(Some(component_status(
                rng.gen_range(1..500),
                0x0004,
                "探测器故障",
            ))));
        }
        if patrol_due.is_some_and(|t| now >= t) {
            frames.push(dev.frame(Some(patrol_answer(1))));
            patrol_due = None;
            stats.patrols.fetch_add(1, Ordering::Relaxed);
        }
        for f in &frames {
            if dev.write(&f.encode()).await.is_err() {
                return;
            }
        }
        if chance(&mut rng, args.garbage_every_s, args.devices) {
            let mut bad = dev.frame(None).encode();
            let at = bad.len() - 3;
            bad[at] ^= 0x5A;
            let split = dev.frame(None).encode();
            let _ = dev.write(b"\x00garbage\xff").await;
            let _ = dev.write(&bad).await;
            let _ = dev.write(&split[..7]).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
            let _ = dev.write(&split[7..]).await;
        }
        // read what came back: answers, and the center's commands
        while let Some(f) = dev.recv(Duration::from_millis(5)).await {
            match f.header.command {
                command::CONFIRM => {
                    stats.confirmed.fetch_add(1, Ordering::Relaxed);
                }
                command::DENY => {
                    stats.denied.fetch_add(1, Ordering::Relaxed);
                }
                command::REQUEST => {
                    let _ = dev.reply(&f).await;
                }
                command::CONTROL => {
                    let _ = dev.confirm(&f).await;
                    if matches!(
                        f.adu.as_ref().map(|a| &a.objects),
                        Some(Objects::PatrolCheck(_))
                    ) {
                        patrol_due = Some(tokio::time::Instant::now() + Duration::from_secs(2));
                    }
                }
                _ => {}
            }
        }
    }
}

#[tokio::main]
async fn main() {
    let args = Arc::new(Args::parse());
    let stats = Arc::new(Stats::default());
    println!(
        "gbsim: {} devices ({} …) → {}",
        args.devices, args.first_address, args.connect
    );
    let mut tasks = Vec::new();
    for i in 0..args.devices {
        tasks.push(tokio::spawn(run(
            args.clone(),
            args.first_address + i,
            stats.clone(),
        )));
        if i % 500 == 499 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    match args.seconds {
        Some(s) => tokio::time::sleep(Duration::from_secs(s)).await,
        None => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    for t in tasks {
        t.abort();
    }
    println!(
        "gbsim: confirmed {}, denied {}, fire alarms {}, patrol checks answered {}",
        stats.confirmed.load(Ordering::Relaxed),
        stats.denied.load(Ordering::Relaxed),
        stats.alarms.load(Ordering::Relaxed),
        stats.patrols.load(Ordering::Relaxed)
    );
}

use rand::SeedableRng;
