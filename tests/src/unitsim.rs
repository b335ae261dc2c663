//! Simulated key fire-safety units pushing the standard profile over HTTP.
//!
//! Each unit sends heartbeats, analog readings, and now and then a fault, a fire alarm, a
//! linkage start/feedback or a reset — the mix a county's units produce.

use rand::Rng;
use serde_json::{json, Value};
use std::time::Duration;

/// Simulation settings.
#[derive(Debug, Clone)]
pub struct UnitSim {
    /// Gateway base URL (`http://127.0.0.1:8080`).
    pub base: String,
    /// Ingest token.
    pub token: String,
    /// Unit ids.
    pub units: Vec<String>,
    /// Messages per second over all units.
    pub rate: f64,
    /// Stop after this long (`None`: run until the task is dropped).
    pub duration: Option<Duration>,
}

/// What a run sent.
#[derive(Debug, Default, Clone)]
pub struct SimStats {
    /// Messages sent.
    pub sent: u64,
    /// Answered 2xx.
    pub accepted: u64,
    /// Answered otherwise, or failed.
    pub failed: u64,
    /// Status messages with a fire flag among the accepted.
    pub alarms: u64,
}

fn now() -> String {
    chrono::Local::now().fixed_offset().to_rfc3339()
}

/// One random message: (channel, body, is a fire alarm).
pub fn message(rng: &mut impl Rng) -> (&'static str, Value, bool) {
    let component_addr: u32 = rng.gen_range(1..200);
    match rng.gen_range(0..100) {
        0..=59 => ("heartbeat", json!({"ts": now()}), false),
        60..=84 => (
            "analog",
            json!({"ts": now(), "system_type": 1, "system_addr": 1, "component_type": 17,
                   "component_addr": component_addr, "analog_type": 9, "value": rng.gen_range(0.0..1.0)}),
            false,
        ),
        85..=92 => {
            let status = ["fault", "normal", "supervisory", "disabled"][rng.gen_range(0..4)];
            (
                "status",
                json!({"ts": now(), "system_type": 1, "system_addr": 1, "component_type": 40,
                       "component_addr": component_addr, "status": [status], "description": "模拟部件"}),
                false,
            )
        }
        93..=96 => (
            "status",
            json!({"ts": now(), "system_type": 1, "system_addr": 1, "component_type": 42,
                   "component_addr": component_addr, "status": ["fire"], "description": "3F 东走廊"}),
            true,
        ),
        97 => (
            "status",
            json!({"ts": now(), "system_type": 10, "system_addr": 1, "component_type": 91,
                   "component_addr": 1, "status": ["started", "feedback"], "description": "消防水泵"}),
            false,
        ),
        _ => (
            "operation",
            json!({"ts": now(), "system_type": 1, "system_addr": 1, "operation": "reset", "operator": 1}),
            false,
        ),
    }
}

/// Pushes one message; the HTTP status (0 on a transport error).
pub async fn push(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    unit: &str,
    channel: &str,
    body: &Value,
) -> u16 {
    match client
        .post(format!("{base}/api/v1/ingest/{unit}/{channel}"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
    {
        Ok(r) => r.status().as_u16(),
        Err(_) => 0,
    }
}

impl UnitSim {
    /// Runs the simulation.
    pub async fn run(&self) -> SimStats {
        let client = reqwest::Client::new();
        let mut stats = SimStats::default();
        let mut rng = rand::rngs::StdRng::from_entropy();
        let period = Duration::from_secs_f64(1.0 / self.rate.max(0.001));
        let mut tick = tokio::time::interval(period);
        let started = tokio::time::Instant::now();
        loop {
            tick.tick().await;
            if self.duration.is_some_and(|d| started.elapsed() >= d) {
                return stats;
            }
            let unit = &self.units[rng.gen_range(0..self.units.len())];
            let (channel, body, alarm) = message(&mut rng);
            stats.sent += 1;
            let status = push(&client, &self.base, &self.token, unit, channel, &body).await;
            if (200..300).contains(&status) {
                stats.accepted += 1;
                stats.alarms += alarm as u64;
            } else {
                stats.failed += 1;
                tracing::warn!(unit, channel, status, "push not accepted");
            }
        }
    }
}

use rand::SeedableRng;
