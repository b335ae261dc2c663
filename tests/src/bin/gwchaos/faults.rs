//! The faults, one at a time at random moments, and the calm after them.

use super::*;
use gateway_sim::receiver::Behavior;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::AsyncWriteExt;

/// Injects faults until `calm`, then puts everything right: receivers accept, the disk has
/// room, the gateway runs.
pub async fn run(world: Arc<World>, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let seconds = world.args.seconds as f64;
    let kills = world.args.kills;
    // the guaranteed kills, spread over the run
    let mut kill_at: Vec<f64> = (1..=kills)
        .map(|i| seconds * i as f64 / (kills + 1) as f64)
        .collect();
    while !world.calm.load(Ordering::SeqCst) {
        let pause = world.args.fault_every_s as f64 * rng.gen_range(0.5..1.5);
        if !calm_sleep(&world, Duration::from_secs_f64(pause)).await {
            break;
        }
        let now = world.started().elapsed().as_secs_f64();
        if kill_at.first().is_some_and(|t| *t <= now) {
            kill_at.remove(0);
            kill9(&world, &mut rng).await;
            continue;
        }
        match rng.gen_range(0..8) {
            0 => kill9(&world, &mut rng).await,
            7 => camera_down(&world, &mut rng).await,
            1 => receiver_fault(&world, &mut rng).await,
            2 => broker_restart(&world).await,
            3 => disk_fault(&world, &mut rng).await,
            4 => slowloris(&world).await,
            5 => oversized_mqtt(&world).await,
            _ => receiver_fault(&world, &mut rng).await,
        }
    }
    for t in TOWNSHIPS {
        world.receiver.set_behavior(t, Behavior::Accept);
    }
    if let Some(fs) = &world.tmpfs {
        fs.remove("ballast");
    }
    if world.target.read().await.gw.is_none() {
        restart(&world).await;
    }
}

/// One camera refuses connections for 8 s (past `camera_offline_after_s`): `camera.offline`,
/// then `camera.online`, to its township.
async fn camera_down(world: &World, rng: &mut StdRng) {
    let Some(sim) = &world.sim else { return };
    if world.cameras.is_empty() {
        return;
    }
    let n = rng.gen_range(1..=world.cameras.len() as u32);
    world.fault(format!("camera cam-{n} refuses connections for 8 s"));
    sim.set_fault(n, Some(gateway_sim::camsim::Fault::Refuse));
    calm_sleep(world, Duration::from_secs(8)).await;
    sim.set_fault(n, None);
}

/// Sleeps unless the run ends first; whether the whole pause passed.
async fn calm_sleep(world: &World, d: Duration) -> bool {
    let until = Instant::now() + d;
    while Instant::now() < until {
        if world.calm.load(Ordering::SeqCst) {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    true
}

async fn kill9(world: &World, rng: &mut StdRng) {
    let down = Duration::from_millis(rng.gen_range(200..2000));
    world.up.store(false, Ordering::SeqCst);
    if let Some(mut gw) = world.target.write().await.gw.take() {
        gw.kill9();
    }
    world.kills.fetch_add(1, Ordering::Relaxed);
    world.fault(format!("kill -9, down {} ms", down.as_millis()));
    tokio::time::sleep(down).await;
    restart(world).await;
}

/// Starts the gateway again (retrying for up to two minutes while it cannot start) and points
/// the load at it.
async fn restart(world: &World) {
    let started = Instant::now();
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the gateway did not come back within two minutes of a kill"
        );
        match start(
            &world.args.gateway,
            &world.config_path,
            world.tmpfs.as_ref(),
        )
        .await
        {
            Ok(gw) => {
                let mut t = world.target.write().await;
                t.api = gw.addr;
                t.gw = Some(gw);
                drop(t);
                world.up.store(true, Ordering::SeqCst);
                println!(
                    "           ready again after {:.1} s",
                    started.elapsed().as_secs_f64()
                );
                return;
            }
            Err(e) => {
                println!(
                    "           restart failed, again: {}",
                    e.lines().next().unwrap_or("")
                );
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

async fn receiver_fault(world: &World, rng: &mut StdRng) {
    let township = TOWNSHIPS[rng.gen_range(0..TOWNSHIPS.len())];
    let (behavior, what) = match rng.gen_range(0..4) {
        0 => (Behavior::Always(503), "down (503)"),
        1 => (Behavior::Always(500), "failing (500)"),
        2 => (Behavior::Always(410), "gone (410)"),
        _ => (Behavior::Slow(Duration::from_secs(3)), "slow (3 s)"),
    };
    let hold = Duration::from_millis(rng.gen_range(2000..8000));
    world.fault(format!(
        "receiver {township} {what} for {:.1} s",
        hold.as_secs_f64()
    ));
    world.receiver.set_behavior(township, behavior);
    calm_sleep(world, hold).await;
    world.receiver.set_behavior(township, Behavior::Accept);
}

async fn broker_restart(world: &World) {
    world.fault("broker restart".into());
    if let Err(e) = world.broker.lock().await.restart().await {
        panic!("broker did not come back: {e}");
    }
}

async fn disk_fault(world: &World, rng: &mut StdRng) {
    let Some(fs) = &world.tmpfs else {
        return receiver_fault(world, rng).await;
    };
    // below min_free_mb (refused before full), or to the last byte (the disk fails writes)
    let leave = if rng.gen_bool(0.5) { 4 << 20 } else { 0 };
    let hold = Duration::from_millis(rng.gen_range(2000..5000));
    let written = fs.fill("ballast", leave).unwrap_or(0);
    world.fault(format!(
        "disk filled to {} free ({} MB ballast) for {:.1} s",
        if leave == 0 { "0 B" } else { "4 MB" },
        written >> 20,
        hold.as_secs_f64()
    ));
    calm_sleep(world, hold).await;
    fs.remove("ballast");
}

/// 200 HTTP connections and 30 GB/T 26875.3 connections that send a byte a second.
async fn slowloris(world: &World) {
    world.fault("slowloris: 200 HTTP + 30 GB/T 26875.3 connections, a byte a second, 8 s".into());
    let (api, gb) = {
        let t = world.target.read().await;
        (t.api, t.gb)
    };
    let mut conns = Vec::new();
    for i in 0..230 {
        let addr = if i < 200 { api } else { gb };
        if let Ok(Ok(s)) =
            tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(addr)).await
        {
            conns.push((s, i < 200));
        }
    }
    for second in 0..8 {
        for (s, http) in conns.iter_mut() {
            let byte: &[u8] = if *http {
                if second == 0 {
                    b"POST /api/v1/ingest/x/status HTTP/1.1\r\n"
                } else {
                    b"X"
                }
            } else {
                b"@"
            };
            let _ = s.write_all(byte).await;
        }
        if !calm_sleep(world, Duration::from_secs(1)).await {
            break;
        }
    }
}

/// A 5 MB message to a unit's topic: acknowledged, counted, dropped — and what follows flows.
async fn oversized_mqtt(world: &World) {
    world.fault("oversized MQTT message (5 MB)".into());
    let port = world.broker.lock().await.port;
    let unit = world.units[0].0.clone();
    let file = world.args.workdir.join("oversized.bin");
    let _ = std::fs::write(&file, vec![b'x'; 5 << 20]);
    let _ = tokio::task::spawn_blocking(move || {
        std::process::Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1"])
            .args([
                "-i",
                "chaos-big",
                "-t",
                &format!("fire/{unit}/status"),
                "-f",
            ])
            .arg(&file)
            .status()
    })
    .await;
}
