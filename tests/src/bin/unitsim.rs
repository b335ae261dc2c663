//! `unitsim`: simulated key fire-safety units pushing the standard profile over HTTP.
//!
//! `unitsim --base http://127.0.0.1:8080 --token T --units 49 --rate 20 [--seconds 60]`
//! (units are `unit-0001` … `unit-00NN`, as in the shipped registry).

use clap::Parser;
use gateway_sim::unitsim::UnitSim;
use std::time::Duration;

#[derive(Parser)]
#[command(about = "Simulated fire-safety units (HTTP push)")]
struct Args {
    /// Gateway base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    base: String,
    /// Ingest token.
    #[arg(long, env = "UNITSIM_TOKEN")]
    token: String,
    /// Number of units (`unit-0001` …).
    #[arg(long, default_value_t = 49)]
    units: usize,
    /// Messages per second over all units.
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
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
    let sim = UnitSim {
        base: args.base,
        token: args.token,
        units: (1..=args.units).map(|n| format!("unit-{n:04}")).collect(),
        rate: args.rate,
        duration: args.seconds.map(Duration::from_secs),
    };
    println!("unitsim: {} units, {} msg/s", sim.units.len(), sim.rate);
    let stats = sim.run().await;
    println!(
        "unitsim: sent {}, accepted {}, failed {}, fire alarms {}",
        stats.sent, stats.accepted, stats.failed, stats.alarms
    );
}
