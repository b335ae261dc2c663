//! Simulated key fire-safety units pushing the standard profile over HTTP.
//!
//! Each unit sends heartbeats, analog readings, and now and then a fault, a fire alarm, a
//! linkage start/feedback or a reset — the mix a county's units produce.

use rand::Rng;
use serde_json::{json, Value};
use std::time::Duration;

/// How simulated units reach the gateway.
#[derive(Debug, Clone)]
pub enum Transport {
    /// HTTP push to the gateway's API.
    Http {
        /// Gateway base URL (`http://127.0.0.1:8080`).
        base: String,
        /// Ingest token.
        token: String,
    },
    /// QoS 1 publishes to `fire/{unit_id}/{channel}` on a broker.
    Mqtt {
        /// Broker host.
        host: String,
        /// Broker port.
        port: u16,
    },
}

/// Simulation settings.
#[derive(Debug, Clone)]
pub struct UnitSim {
    /// How to send.
    pub transport: Transport,
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
        let http = reqwest::Client::new();
        let mqtt = match &self.transport {
            Transport::Mqtt { host, port } => {
                let id = format!("unitsim-{}", std::process::id());
                let mut o = rumqttc::MqttOptions::new(id, host, *port);
                o.set_keep_alive(Duration::from_secs(15));
                let (client, mut eventloop) = rumqttc::AsyncClient::new(o, 1024);
                tokio::spawn(async move {
                    loop {
                        if eventloop.poll().await.is_err() {
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                    }
                });
                Some(client)
            }
            Transport::Http { .. } => None,
        };
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
            let ok = match (&self.transport, &mqtt) {
                (Transport::Http { base, token }, _) => {
                    let status = push(&http, base, token, unit, channel, &body).await;
                    (200..300).contains(&status)
                }
                (Transport::Mqtt { .. }, Some(client)) => client
                    .publish(
                        format!("fire/{unit}/{channel}"),
                        rumqttc::QoS::AtLeastOnce,
                        false,
                        body.to_string(),
                    )
                    .await
                    .is_ok(),
                (Transport::Mqtt { .. }, None) => false,
            };
            if ok {
                stats.accepted += 1;
                stats.alarms += alarm as u64;
            } else {
                stats.failed += 1;
                tracing::warn!(unit, channel, "message not accepted");
            }
        }
    }
}

use rand::SeedableRng;
