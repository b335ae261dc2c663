//! `unitsim`: simulated key fire-safety units, over HTTP push or MQTT, in the standard profile
//! or a shipped vendor profile.
//!
//! `unitsim --base http://127.0.0.1:8080 --token T --units 49 --rate 20 [--seconds 60]`
//! `unitsim --mqtt 127.0.0.1:1883 --first 25 --units 25 --rate 10`
//! `unitsim --mqtt 127.0.0.1:1883 --profile electrical-fire-monitor --first 40 --units 5`
//! (units are `unit-0001` … as in the shipped registry).

use clap::Parser;
use gateway_sim::unitsim::{Profile, Transport, UnitSim};
use std::time::Duration;

#[derive(Parser)]
#[command(about = "Simulated fire-safety units (HTTP push or MQTT)")]
struct Args {
    /// Gateway base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    base: String,
    /// Ingest token (HTTP).
    #[arg(long, env = "UNITSIM_TOKEN", default_value = "")]
    token: String,
    /// Publish over MQTT to this broker (`host:port`) instead of pushing over HTTP.
    #[arg(long)]
    mqtt: Option<String>,
    /// Number of the first unit.
    #[arg(long, default_value_t = 1)]
    first: usize,
    /// Number of units (`unit-0001` …).
    #[arg(long, default_value_t = 49)]
    units: usize,
    /// Messages per second over all units.
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
    /// What the units send: standard, electrical-fire-monitor, water-pressure-level.
    #[arg(long, default_value = "standard")]
    profile: String,
    /// Stop after this many seconds (default: run until stopped).
    #[arg(long)]
    seconds: Option<u64>,
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let transport = match &args.mqtt {
        Some(broker) => {
            let (host, port) = broker.rsplit_once(':').expect("--mqtt host:port");
            Transport::Mqtt {
                host: host.to_string(),
                port: port.parse().expect("--mqtt port"),
            }
        }
        None => Transport::Http {
            base: args.base.clone(),
            token: args.token.clone(),
        },
    };
    let via = if args.mqtt.is_some() { "MQTT" } else { "HTTP" };
    let Some(profile) = Profile::from_name(&args.profile) else {
        eprintln!(
            "unitsim: --profile `{}` is not one of standard, electrical-fire-monitor, water-pressure-level",
            args.profile
        );
        std::process::exit(2);
    };
    let sim = UnitSim {
        transport,
        profile,
        units: (args.first..args.first + args.units)
            .map(|n| format!("unit-{n:04}"))
            .collect(),
        rate: args.rate,
        duration: args.seconds.map(Duration::from_secs),
    };
    println!(
        "unitsim: {} units over {via}, {} msg/s, profile {}",
        sim.units.len(),
        sim.rate,
        args.profile
    );
    let stats = sim.run().await;
    println!(
        "unitsim: sent {}, accepted {}, failed {}, fire alarms {}",
        stats.sent, stats.accepted, stats.failed, stats.alarms
    );
}
