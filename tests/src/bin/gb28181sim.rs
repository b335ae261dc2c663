//! `gb28181sim`: simulated GB/T 28181 devices (NVRs with channels) over UDP.
//!
//! `gb28181sim --server 127.0.0.1:5060 --first-id 34020000001180000001 --devices 10
//!             --channels 4 [--password 12345678] [--keepalive-s 60] [--off 0.1]
//!             [--alarm-every-s 30] [--flap-every-s 0] [--seconds 60]`
//!
//! Each device registers with digest, keeps alive, answers the platform's catalog (channel
//! names in GB2312, a share of channels OFF), device-info and status queries, accepts the
//! catalog subscription; now and then one raises an alarm on a channel, or — with
//! `--flap-every-s` — turns a channel off or on (a catalog NOTIFY).

use clap::Parser;
use gateway_sim::gb28181sim::{SimConfig, SimDevice};
use rand::Rng;
use std::time::Duration;

#[derive(Parser)]
#[command(about = "Simulated GB/T 28181 devices")]
struct Args {
    /// The platform's SIP address (UDP).
    #[arg(long, default_value = "127.0.0.1:5060")]
    server: std::net::SocketAddr,
    /// The platform's 20-digit id.
    #[arg(long, default_value = "34020000002000000001")]
    server_id: String,
    /// The first device's 20-digit id (the next ones count up).
    #[arg(long, default_value = "34020000001180000001")]
    first_id: String,
    /// Number of devices.
    #[arg(long, default_value_t = 10)]
    devices: u64,
    /// Channels per device.
    #[arg(long, default_value_t = 4)]
    channels: usize,
    /// Registration password.
    #[arg(long, default_value = "12345678")]
    password: String,
    /// Keepalive period.
    #[arg(long, default_value_t = 60)]
    keepalive_s: u64,
    /// Share of channels OFF in the catalog.
    #[arg(long, default_value_t = 0.0)]
    off: f64,
    /// An alarm from some device this often, on average (0: never).
    #[arg(long, default_value_t = 0)]
    alarm_every_s: u64,
    /// A channel turned off or on (catalog NOTIFY) this often, on average (0: never).
    #[arg(long, default_value_t = 0)]
    flap_every_s: u64,
    /// Stop after this many seconds (default: run until stopped).
    #[arg(long)]
    seconds: Option<u64>,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let first: u128 = args.first_id.parse().expect("--first-id is 20 digits");
    let mut rng = rand::thread_rng();
    let mut devices = Vec::new();
    for k in 0..args.devices {
        let id = format!("{:020}", first + k as u128);
        let mut c = SimConfig::new(&id, &args.password, args.server, args.channels);
        c.server_id = args.server_id.clone();
        c.keepalive = Duration::from_secs(args.keepalive_s);
        for ch in c.channels.iter_mut() {
            ch.on = !rng.gen_bool(args.off.clamp(0.0, 1.0));
        }
        let d = SimDevice::start(c).await.expect("bind");
        let code = d.register().await;
        println!("{id} register → {code}");
        devices.push(d);
    }
    let started = std::time::Instant::now();
    let chance = |rng: &mut rand::rngs::ThreadRng, every: u64| {
        every > 0 && rng.gen_bool((1.0 / every as f64).min(1.0))
    };
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if args
            .seconds
            .is_some_and(|s| started.elapsed().as_secs() >= s)
        {
            return;
        }
        if devices.is_empty() || args.channels == 0 {
            continue;
        }
        let d = &devices[rng.gen_range(0..devices.len())];
        let ch = gateway_sim::gb28181sim::channel_id(&d.id(), rng.gen_range(1..=args.channels));
        if chance(&mut rng, args.alarm_every_s) {
            let code = d.alarm(&ch, 5, 6, "周界入侵").await;
            println!("{ch} alarm → {code}");
        }
        if chance(&mut rng, args.flap_every_s) {
            let on = rng.gen_bool(0.5);
            d.set_channel(&ch, on).await;
            println!("{ch} {}", if on { "ON" } else { "OFF" });
        }
    }
}
