//! `devices`: GB/T 26875.3 devices heartbeating and raising alarms over TCP.

use super::*;

pub(super) async fn gb_devices(
    args: &Args,
    n: u32,
    heartbeat_s: u64,
    seconds: u64,
    alarm_every_ms: u64,
) {
    use gateway_sim::gbsim::{fire_alarm, Device};
    use ingest::gb26875::command;
    std::fs::create_dir_all(&args.workdir).expect("workdir");
    let dir = tempfile::tempdir_in(&args.workdir).expect("tempdir");
    // n + 1 units with device addresses 1..=n+1 (the last is the probe), from a CSV registry
    let mut csv = String::from("id,name,township,heartbeat_timeout_s,gb26875_address\n");
    for a in 1..=n + 1 {
        let t = TOWNSHIPS[a as usize % TOWNSHIPS.len()];
        csv += &format!("gb-{a:05},单位{a},{t},{},{a}\n", heartbeat_s * 3);
    }
    std::fs::write(dir.path().join("units.csv"), csv).expect("units.csv");
    let receiver = receiver("127.0.0.1:0").await;
    let base = format!("http://{}", receiver.addr());
    let port = free_port();
    let mut config = TestConfig::new(&dir.path().join("data"), &base, &TOWNSHIPS, 1);
    config.extra = format!(
        "[registry]\nunits_csv = {:?}\n\n[gb26875]\nlisten = \"127.0.0.1:{port}\"\nidle_timeout_s = {}\n\n",
        dir.path().join("units.csv").display().to_string(),
        heartbeat_s * 3
    );
    let path = config.write(dir.path());
    let gw = Gateway::start(&args.gateway, &path)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let pid = gw.pid();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (_, rss_idle, _) = proc_stats(pid);
    let gateway: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");

    // n devices connect (in waves, not to overflow the listen backlog) and heartbeat
    let confirmed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let connected = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    let started = Instant::now();
    for a in 1..=n {
        let (confirmed, stop, connected) = (confirmed.clone(), stop.clone(), connected.clone());
        tasks.push(tokio::spawn(async move {
            let mut dev = match Device::connect(gateway, a as u64, 88888).await {
                Ok(d) => d,
                Err(e) => panic!("device {a}: {e}"),
            };
            connected.fetch_add(1, Ordering::Relaxed);
            // spread the heartbeats over the interval
            let phase = Duration::from_millis((a as u64 * 7919) % (heartbeat_s * 1000));
            let mut tick = tokio::time::interval_at(
                tokio::time::Instant::now() + phase,
                Duration::from_secs(heartbeat_s),
            );
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let hb = dev.frame(None);
                dev.write(&hb.encode()).await.expect("heartbeat");
                // the answer (and the clock sync the gateway sends once) are read as they come
                while let Some(f) = dev.recv(Duration::from_millis(1)).await {
                    if f.header.command == command::CONFIRM {
                        confirmed.fetch_add(1, Ordering::Relaxed);
                    } else if f.header.command == command::CONTROL {
                        let _ = dev.confirm(&f).await;
                    }
                }
            }
        }));
        if a % 500 == 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    while connected.load(Ordering::Relaxed) < n as u64 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "devices did not connect"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let connect_secs = started.elapsed().as_secs_f64();
    // let every device heartbeat once
    tokio::time::sleep(Duration::from_secs(heartbeat_s + 2)).await;
    let (cpu0, rss_connected, _) = proc_stats(pid);
    // the probe: alarms, timed from write to confirm, while the others heartbeat
    let mut probe = Device::connect(gateway, n as u64 + 1, 88888)
        .await
        .expect("probe");
    let mut latencies = Vec::new();
    let t0 = Instant::now();
    let mut k = 0u32;
    while t0.elapsed() < Duration::from_secs(seconds) {
        k += 1;
        let f = probe.frame(Some(fire_alarm(k, "bench")));
        let sent = Instant::now();
        let answer = probe
            .exchange(&f, Duration::from_secs(10))
            .await
            .expect("confirm");
        assert_eq!(answer.header.command, command::CONFIRM);
        latencies.push(sent.elapsed().as_micros() as u64);
        tokio::time::sleep(Duration::from_millis(alarm_every_ms)).await;
    }
    let secs = t0.elapsed().as_secs_f64();
    let (cpu1, rss_end, peak) = proc_stats(pid);
    stop.store(true, Ordering::Relaxed);
    let hb = confirmed.load(Ordering::Relaxed);
    latencies.sort_unstable();
    println!("| devices | heartbeat | connected in | gateway CPU | RSS idle → connected (peak) | RSS per connection | heartbeats confirmed | alarm confirms | p50 | p99 | max |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {n} | {heartbeat_s} s | {connect_secs:.1} s | {:.3} cores | {} → {} MiB ({} MiB) | {:.1} KiB | {hb} | {} | {:.1} ms | {:.1} ms | {:.1} ms |",
        (cpu1 - cpu0) / secs,
        rss_idle >> 20,
        rss_connected >> 20,
        peak.max(rss_end) >> 20,
        (rss_connected.saturating_sub(rss_idle)) as f64 / n as f64 / 1024.0,
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0),
    );
    for t in tasks {
        t.abort();
    }
    receiver.stop();
}
