//! Simulated key fire-safety units, over HTTP push or MQTT, in the standard profile or in one of
//! the shipped vendor profiles.
//!
//! Standard: each unit sends heartbeats, analog readings, and now and then a fault, a fire
//! alarm, a linkage start/feedback or a reset — the mix a county's units produce. Vendor
//! profiles: an electrical-fire monitor (residual current, cable temperatures, its own verdict)
//! and a water pressure/level sensor, with rare excursions past their limits.

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

/// What the simulated units send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// The standard profile (`fire/{unit}/{channel}`).
    Standard,
    /// `config/profiles/electrical-fire-monitor.toml` (`efm/{unit}/up`).
    ElectricalFire,
    /// `config/profiles/water-pressure-level.toml` (`water/{imei}/data`, unit in the payload).
    Water,
}

impl Profile {
    /// By name: `standard`, `electrical-fire-monitor`, `water-pressure-level`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "standard" => Some(Self::Standard),
            "electrical-fire-monitor" => Some(Self::ElectricalFire),
            "water-pressure-level" => Some(Self::Water),
            _ => None,
        }
    }
}

/// One message to send.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The MQTT topic.
    pub topic: String,
    /// The HTTP channel (`/api/v1/ingest/{unit}/{channel}`): a channel or a profile name.
    pub channel: &'static str,
    /// The payload.
    pub body: Value,
    /// Whether it reports a fire alarm.
    pub alarm: bool,
}

/// One random message of `unit` in `profile`.
pub fn outgoing(profile: Profile, unit: &str, rng: &mut impl Rng) -> Outgoing {
    match profile {
        Profile::Standard => {
            let (channel, body, alarm) = message(rng);
            Outgoing {
                topic: format!("fire/{unit}/{channel}"),
                channel,
                body,
                alarm,
            }
        }
        Profile::ElectricalFire => {
            // residual current mostly 50-250 mA, 2 % of readings past the 300 mA limit
            let ir = if rng.gen_bool(0.02) {
                rng.gen_range(300..450)
            } else {
                rng.gen_range(50..250)
            };
            let temp = |rng: &mut dyn rand::RngCore| (rng.gen_range(300..500) as f64) / 10.0;
            let state = match rng.gen_range(0..1000) {
                0..=2 => "ALARM",
                3..=5 => "FAULT",
                _ => "NORMAL",
            };
            Outgoing {
                topic: format!("efm/{unit}/up"),
                channel: "electrical-fire-monitor",
                body: json!({"ts": chrono::Utc::now().timestamp(), "ir": ir,
                             "t": {"A": temp(rng), "B": temp(rng), "C": temp(rng)}, "state": state}),
                alarm: state == "ALARM",
            }
        }
        Profile::Water => {
            // hydrant main 250-450 kPa, 2 % of readings under the 0.1 MPa limit
            let kpa = if rng.gen_bool(0.02) {
                rng.gen_range(40..100)
            } else {
                rng.gen_range(250..450)
            };
            let imei: u64 = 865_000_000_000_000 + unit.bytes().map(u64::from).sum::<u64>();
            Outgoing {
                topic: format!("water/{imei}/data"),
                channel: "water-pressure-level",
                body: json!({"deviceId": unit, "time": now(),
                             "data": {"pressure_kpa": kpa, "level_cm": rng.gen_range(220..300),
                                      "battery": rng.gen_range(60..100)},
                             "alarm": false}),
                alarm: false,
            }
        }
    }
}

/// Simulation settings.
#[derive(Debug, Clone)]
pub struct UnitSim {
    /// How to send.
    pub transport: Transport,
    /// What to send.
    pub profile: Profile,
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
            let Outgoing {
                topic,
                channel,
                body,
                alarm,
            } = outgoing(self.profile, unit, &mut rng);
            stats.sent += 1;
            let ok = match (&self.transport, &mqtt) {
                (Transport::Http { base, token }, _) => {
                    let status = push(&http, base, token, unit, channel, &body).await;
                    (200..300).contains(&status)
                }
                (Transport::Mqtt { .. }, Some(client)) => client
                    .publish(topic, rumqttc::QoS::AtLeastOnce, false, body.to_string())
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
