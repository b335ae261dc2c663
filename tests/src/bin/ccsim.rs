//! `ccsim`: simulated township command centers. Receives the gateway's webhooks for every
//! township, department and the city named in a gateway config, verifies each signature, prints
//! each event.
//!
//! `ccsim --listen 127.0.0.1:9000 --config config/gateway.toml`

use clap::Parser;
use gateway_sim::receiver::Receiver;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(about = "Simulated township command centers (webhook receivers)")]
struct Args {
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:9000")]
    listen: SocketAddr,
    /// Gateway config whose townships', departments' and city's inline webhook secrets to verify
    /// with.
    #[arg(long)]
    config: PathBuf,
    /// Print a summary line every few seconds instead of one line per event.
    #[arg(long)]
    quiet: bool,
}

fn secrets(config: &std::path::Path) -> anyhow::Result<Vec<(String, String)>> {
    let v: toml::Value = toml::from_str(&std::fs::read_to_string(config)?)?;
    let mut out = Vec::new();
    let entries = ["townships", "departments"]
        .into_iter()
        .filter_map(|table| v.get(table).and_then(|t| t.as_array()))
        .flatten();
    for t in entries {
        if let (Some(code), Some(secret)) = (
            t["code"].as_str(),
            t.get("webhook")
                .and_then(|w| w.get("secret"))
                .and_then(|s| s.as_str()),
        ) {
            out.push((code.to_string(), secret.to_string()));
        }
    }
    if let Some(secret) = v
        .get("city")
        .and_then(|c| c.get("webhook"))
        .and_then(|w| w.get("secret"))
        .and_then(|s| s.as_str())
    {
        out.push(("city".to_string(), secret.to_string()));
    }
    anyhow::ensure!(
        !out.is_empty(),
        "no township with an inline webhook secret in {}",
        config.display()
    );
    Ok(out)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let secrets = secrets(&args.config)?;
    let receiver = Receiver::start(args.listen, &secrets, true).await?;
    println!(
        "ccsim: {} command centers listening on http://{}/<township>",
        secrets.len(),
        receiver.addr()
    );
    let mut shown = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(if args.quiet { 5000 } else { 200 })).await;
        let deliveries = receiver.deliveries();
        if args.quiet {
            println!(
                "ccsim: {} delivered ({} distinct), {} bad signatures",
                receiver.received(),
                receiver.unique(),
                receiver.bad_signatures()
            );
            continue;
        }
        for d in &deliveries[shown..] {
            let title = d
                .body
                .as_ref()
                .and_then(|b| b["title"].as_str())
                .unwrap_or("");
            println!(
                "ccsim [{:<10}] {:<22} {}  (signature ok)",
                d.township, d.event_header, title
            );
        }
        shown = deliveries.len();
    }
}
