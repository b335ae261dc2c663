//! The load: HTTP pushers, an MQTT publisher, GB/T 26875.3 devices — and the watchers of the
//! gateway's health and memory.

use super::*;
use gateway_sim::gbsim::{fire_alarm, Device};
use gateway_sim::mosquitto::Publisher;
use ingest::gb26875::command;

/// Component addresses by source, so that the oracle tells them apart.
pub const HTTP_BASE: u32 = 1_000_000;
/// MQTT alarms.
pub const MQTT_BASE: u32 = 2_000_000;
/// GB/T 26875.3 alarms (each device its own range of 100,000).
pub const GB_BASE: u32 = 3_000_000;

/// Starts every load task.
pub fn start(world: Arc<World>) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    let next = Arc::new(AtomicU64::new(0));
    for _ in 0..world.args.pushers {
        tasks.push(tokio::spawn(http_pusher(world.clone(), next.clone())));
    }
    tasks.push(tokio::spawn(mqtt_publisher(world.clone())));
    for k in 0..world.args.devices.min(world.gb_units.len() as u32) {
        tasks.push(tokio::spawn(gb_device(world.clone(), k)));
    }
    tasks
}

/// Units that take HTTP and MQTT (the GB/T 26875.3 ones are left to their devices).
fn plain_units(world: &World) -> Vec<String> {
    world
        .units
        .iter()
        .map(|(u, _)| u.clone())
        .filter(|u| !u.ends_with("-u3"))
        .collect()
}

fn alarm(addr: u32) -> serde_json::Value {
    serde_json::json!({"system_type": 1, "system_addr": 1, "component_type": 40,
        "component_addr": addr, "status": ["fire"], "description": "chaos"})
}

/// Pushes alarms one at a time, each retried with its `Idempotency-Key` until answered 202.
async fn http_pusher(world: Arc<World>, next: Arc<AtomicU64>) {
    let units = plain_units(&world);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    while !world.stop.load(Ordering::Relaxed) {
        let n = next.fetch_add(1, Ordering::Relaxed);
        let addr = HTTP_BASE + n as u32;
        let unit = &units[n as usize % units.len()];
        let key = format!("chaos-{addr}");
        while !world.stop.load(Ordering::Relaxed) {
            let url = format!("http://{}/api/v1/ingest/{unit}/status", world.api().await);
            let sent = client
                .post(&url)
                .bearer_auth(INGEST_TOKEN)
                .header("Idempotency-Key", &key)
                .json(&alarm(addr))
                .send()
                .await;
            match sent {
                Ok(r) if r.status() == 202 => {
                    let body: serde_json::Value = r.json().await.unwrap_or_default();
                    let id = body["events"][0].as_str().map(str::to_string);
                    world.acked.lock().insert(
                        addr,
                        Acked {
                            source: "http",
                            township: world.township_of(unit),
                            id,
                        },
                    );
                    break;
                }
                Ok(r) if r.status().is_server_error() || r.status() == 408 => {}
                Ok(r) => panic!("push of {addr} answered {}", r.status()),
                Err(_) => {} // killed, restarting, or busy: the same key again
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_millis(world.args.push_pause_ms)).await;
    }
}

/// Publishes QoS 1 alarms at `mqtt_rate` per second through one persistent session — from the
/// moment the gateway's own session has subscribed: before it exists, the broker has nobody to
/// keep a message for and drops it (a broker's rule, not a loss of the gateway's).
async fn mqtt_publisher(world: Arc<World>) {
    let units = plain_units(&world);
    wait_for_gateway_subscription(&world).await;
    let port = world.broker.lock().await.port;
    let publisher = Publisher::connect(port, "chaos-publisher");
    let every = Duration::from_micros(1_000_000 / world.args.mqtt_rate.max(1));
    let mut tick = tokio::time::interval(every);
    let mut n = 0u32;
    while !world.stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let addr = MQTT_BASE + n;
        let unit = &units[n as usize % units.len()];
        publisher
            .publish(&format!("fire/{unit}/status"), alarm(addr).to_string())
            .await;
        world
            .mqtt_published
            .lock()
            .push((addr, world.township_of(unit)));
        n += 1;
    }
    *world.publisher.lock().await = Some(publisher);
}

/// Waits (at most a minute) until the gateway's metrics say its MQTT subscriptions are
/// acknowledged, on whichever start of it is running.
async fn wait_for_gateway_subscription(world: &World) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("client");
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline && !world.stop.load(Ordering::Relaxed) {
        let api = world.api().await;
        let text = match client.get(format!("http://{api}/metrics")).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if text
            .lines()
            .any(|l| l.trim() == "gateway_mqtt_subscribed 1")
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("the gateway's MQTT session never subscribed; publishing anyway");
}

/// One device: an alarm at a time, resent unchanged (same serial, same time label) on a new
/// connection until the gateway confirms it.
async fn gb_device(world: Arc<World>, k: u32) {
    let (address, unit) = world.gb_units[k as usize].clone();
    let township = world.township_of(&unit);
    let mut dev: Option<Device> = None;
    let mut n = 0u32;
    while !world.stop.load(Ordering::Relaxed) {
        let addr = GB_BASE + k * 100_000 + n;
        n += 1;
        let mut bytes: Option<(u16, Vec<u8>)> = None;
        while !world.stop.load(Ordering::Relaxed) {
            if dev.is_none() {
                let gb = world.target.read().await.gb;
                match tokio::time::timeout(
                    Duration::from_secs(3),
                    Device::connect(gb, address, 88888),
                )
                .await
                {
                    Ok(Ok(d)) => dev = Some(d),
                    _ => {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                }
            }
            let d = dev.as_mut().expect("connected");
            let (serial, frame) = bytes
                .get_or_insert_with(|| {
                    let f = d.frame(Some(fire_alarm(addr, "chaos")));
                    (f.header.serial, f.encode())
                })
                .clone();
            if d.write(&frame).await.is_ok() && confirmed(d, serial).await {
                world.acked.lock().insert(
                    addr,
                    Acked {
                        source: "gb26875",
                        township: township.clone(),
                        id: None,
                    },
                );
                break;
            }
            dev = None; // a new connection, the same frame
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits (≤ 3 s) for the confirmation of `serial`, confirming the gateway's own commands.
async fn confirmed(d: &mut Device, serial: u16) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while let Some(f) = d
        .recv(deadline.saturating_duration_since(tokio::time::Instant::now()))
        .await
    {
        if f.header.command == command::CONFIRM && f.header.serial == serial {
            return true;
        }
        if f.header.command == command::CONTROL {
            let _ = d.confirm(&f).await;
        }
    }
    false
}

/// `/healthz` every 200 ms while the gateway is up: answered within 1 s?
pub async fn probe_health(world: Arc<World>) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .expect("client");
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if !world.up.load(Ordering::SeqCst) {
            continue;
        }
        let api = world.api().await;
        let started = Instant::now();
        let ok = client
            .get(format!("http://{api}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        // a probe that overlapped a kill does not count
        if !world.up.load(Ordering::SeqCst) || world.api().await != api {
            continue;
        }
        let mut h = world.health.lock();
        h.probes += 1;
        h.max_ms = h.max_ms.max(ms);
        if !ok || ms > 1000.0 {
            h.late += 1;
            println!(
                "  /healthz {}: {ms:.0} ms",
                if ok { "late" } else { "failed" }
            );
        }
    }
}

/// The gateway's RSS every 500 ms; the highest is kept.
pub async fn sample_rss(world: Arc<World>) {
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let pid = match world.target.read().await.gw.as_ref() {
            Some(gw) => gw.pid(),
            None => continue,
        };
        let kb = gateway_sim::harness::rss_kib(pid);
        world.rss_max.fetch_max(kb * 1024, Ordering::Relaxed);
    }
}
