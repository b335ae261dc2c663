//! The oracle: once everything is right again, was every acknowledged alarm delivered, to the
//! right township, under one id — and did the gateway stay healthy and bounded?

use super::*;
use gateway_sim::receiver::Delivery;
use std::collections::{BTreeSet, HashSet};

/// How long the delivery of everything acknowledged may take once the faults stop.
const DRAIN: Duration = Duration::from_secs(240);

/// What the receiver got for one alarm.
#[derive(Default)]
struct Seen {
    ids: BTreeSet<String>,
    townships: BTreeSet<String>,
}

/// Fire alarms delivered, by component address.
fn delivered(world: &World) -> HashMap<u32, Seen> {
    let mut seen: HashMap<u32, Seen> = HashMap::new();
    for d in world.receiver.deliveries() {
        let Some(body) = d.body.as_ref() else {
            continue;
        };
        if body["kind"] != "fire.alarm" {
            continue;
        }
        let Some(addr) = body["fire"]["component_addr"].as_u64() else {
            continue;
        };
        let s = seen.entry(addr as u32).or_default();
        s.ids.insert(d.idempotency_key.clone());
        s.townships.insert(d.township.clone());
    }
    seen
}

/// Everything acknowledged: address → (source, township, id when the gateway answered one).
async fn expected(world: &World) -> HashMap<u32, Acked> {
    let mut all = world.acked.lock().clone();
    let published = world.mqtt_published.lock().clone();
    if let Some(p) = world.publisher.lock().await.as_mut() {
        if let Err(e) = p
            .wait_acked(published.len() as u64, Duration::from_secs(60))
            .await
        {
            println!("MQTT: {e}");
        }
    }
    for (addr, township) in published {
        all.insert(
            addr,
            Acked {
                source: "mqtt",
                township,
                id: None,
            },
        );
    }
    all
}

/// Replays the dead letters (a township that answered 410 long enough sent some there).
async fn replay_dead_letters(world: &World) -> u64 {
    let api = world.api().await;
    let r = reqwest::Client::new()
        .post(format!("http://{api}/api/v1/outbox/replay"))
        .bearer_auth(tokens().1)
        .json(&serde_json::json!({"all": true}))
        .send()
        .await;
    match r {
        Ok(r) => r.json::<serde_json::Value>().await.unwrap_or_default()["replayed"]
            .as_u64()
            .unwrap_or(0),
        Err(_) => 0,
    }
}

/// Checks and prints the verdict.
pub async fn check(world: &World) -> bool {
    let expected = expected(world).await;
    let started = Instant::now();
    let mut replayed = 0;
    let mut last_replay = Instant::now() - Duration::from_secs(60);
    let seen = loop {
        if last_replay.elapsed() >= Duration::from_secs(5) {
            replayed += replay_dead_letters(world).await;
            last_replay = Instant::now();
        }
        let seen = delivered(world);
        let missing = expected.keys().filter(|a| !seen.contains_key(a)).count();
        if missing == 0 || started.elapsed() >= DRAIN {
            break seen;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    println!(
        "\ndrained in {:.1} s; {replayed} dead letters replayed",
        started.elapsed().as_secs_f64()
    );
    let back = cameras_back(world).await;
    report(world, &expected, &seen) && back
}

fn report(world: &World, expected: &HashMap<u32, Acked>, seen: &HashMap<u32, Seen>) -> bool {
    println!("\n| source | acknowledged | delivered | lost | wrong township | several ids | id not the one answered |");
    println!("|---|---|---|---|---|---|---|");
    let mut ok = true;
    for source in ["http", "mqtt", "gb26875"] {
        let (mut acked, mut got, mut lost, mut wrong, mut several, mut other_id) =
            (0, 0, 0, 0, 0, 0);
        for (addr, a) in expected.iter().filter(|(_, a)| a.source == source) {
            acked += 1;
            let Some(s) = seen.get(addr) else {
                lost += 1;
                if lost <= 3 {
                    println!("  lost: {source} alarm {addr} for {}", a.township);
                }
                continue;
            };
            got += 1;
            if s.townships.len() != 1 || !s.townships.contains(&a.township) {
                wrong += 1;
            }
            if s.ids.len() > 1 {
                several += 1;
            }
            if a.id.as_ref().is_some_and(|id| !s.ids.contains(id)) {
                other_id += 1;
            }
        }
        println!("| {source} | {acked} | {got} | {lost} | {wrong} | {several} | {other_id} |");
        ok &= lost == 0 && wrong == 0 && several == 0 && other_id == 0;
    }
    let h = world.health.lock();
    let rss = world.rss_max.load(Ordering::Relaxed) >> 20;
    let bad = world.receiver.bad_signatures();
    println!(
        "\nkills: {}; faults: {}; deliveries: {} ({} distinct events); bad signatures: {bad}",
        world.kills.load(Ordering::Relaxed),
        world.faults.lock().len(),
        world.receiver.received(),
        world.receiver.unique()
    );
    let all = world.receiver.deliveries();
    println!("distinct events by kind: {}", kinds(&all));
    println!(
        "/healthz while up: {} probes, {} late or failed (> 1 s), slowest {:.0} ms",
        h.probes, h.late, h.max_ms
    );
    println!(
        "gateway RSS: highest {rss} MiB (limit {} MiB)",
        world.args.rss_limit_mb
    );
    if let Some(bytes) = world
        .tmpfs
        .as_ref()
        .and_then(|fs| std::fs::metadata(fs.path("outbox.redb")).ok())
        .map(|m| m.len())
    {
        let events = world.receiver.unique().max(1) as u64;
        println!(
            "outbox file: {} MiB for {events} events ({:.1} KB an event)",
            bytes >> 20,
            bytes as f64 / events as f64 / 1000.0
        );
    }
    ok &= h.late == 0 && rss <= world.args.rss_limit_mb && bad == 0 && h.probes > 0;
    drop(h);
    ok &= camera_events_in_place(world, &all);
    ok
}

/// The distinct events delivered, counted by kind, most first (`fire.alarm 120, case.overdue
/// 40, …`): what the outbox holds besides the alarms the load sent.
fn kinds(all: &[Delivery]) -> String {
    let mut ids: HashMap<&str, HashSet<&str>> = HashMap::new();
    for d in all {
        let kind = d
            .body
            .as_ref()
            .and_then(|b| b["kind"].as_str())
            .unwrap_or(&d.event_header);
        ids.entry(kind).or_default().insert(&d.idempotency_key);
    }
    let mut counts: Vec<(&str, usize)> = ids.into_iter().map(|(k, v)| (k, v.len())).collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let listed: Vec<String> = counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
    listed.join(", ")
}

/// Every camera event (of `all` delivered) went to its camera's township.
fn camera_events_in_place(world: &World, all: &[Delivery]) -> bool {
    let mut events = 0;
    let mut wrong = 0;
    for d in all {
        let Some(body) = d.body.as_ref() else {
            continue;
        };
        let Some(cam) = world
            .cameras
            .iter()
            .find(|(id, _)| body["source"]["id"] == id.as_str())
        else {
            continue;
        };
        events += 1;
        wrong += usize::from(d.township != cam.1);
    }
    println!("camera events delivered: {events}, to another township: {wrong}");
    wrong == 0
}

/// Every camera is online again once the faults are over (its session restored after each
/// kill), within `DRAIN`.
pub async fn cameras_back(world: &World) -> bool {
    if world.cameras.is_empty() {
        return true;
    }
    let client = reqwest::Client::new();
    let started = Instant::now();
    loop {
        let url = format!("http://{}/api/v1/cameras", world.api().await);
        let online = match client.get(url).bearer_auth(tokens().1).send().await {
            Ok(r) => r.json::<serde_json::Value>().await.ok().map(|v| {
                v["cameras"]
                    .as_array()
                    .map(|a| a.iter().filter(|c| c["state"] == "online").count())
                    .unwrap_or(0)
            }),
            Err(_) => None,
        }
        .unwrap_or(0);
        if online == world.cameras.len() || started.elapsed() >= DRAIN {
            println!(
                "cameras online at the end: {online} of {} (after {:.1} s)",
                world.cameras.len(),
                started.elapsed().as_secs_f64()
            );
            return online == world.cameras.len();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
