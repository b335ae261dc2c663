//! `units`: many units heartbeating over MQTT: the gateway's CPU and RSS, every unit online.

use super::*;

pub(super) async fn many_units(args: &Args, units: usize, interval_s: u64, seconds: u64) {
    use gateway_sim::mosquitto::{Mosquitto, Publisher};
    std::fs::create_dir_all(&args.workdir).expect("workdir");
    let dir = tempfile::tempdir_in(&args.workdir).expect("tempdir");
    let broker = Mosquitto::start(&dir.path().join("broker"))
        .await
        .expect("mosquitto");
    let receiver = receiver("127.0.0.1:0").await;
    let base = format!("http://{}", receiver.addr());
    let per_township = units.div_ceil(TOWNSHIPS.len());
    let mut config = TestConfig::new(&dir.path().join("data"), &base, &TOWNSHIPS, per_township);
    config.extra = format!(
        "\n[mqtt]\nurl = \"{}\"\nclient_id = \"gw-units\"\n",
        broker.url()
    );
    let path = config.write(dir.path());
    let gw = Gateway::start(&args.gateway, &path)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    while metric(&gw.metrics().await, "gateway_mqtt_subscribed") != 1.0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ids: Vec<String> = config.units.iter().map(|(id, _)| id.clone()).collect();
    let pid = gw.pid();
    let (_, rss_before, _) = proc_stats(pid);
    // 4 publisher connections, each carrying a quarter of the units, spread over the interval
    let lanes = 4usize;
    let started = Instant::now();
    let (cpu0, _, _) = proc_stats(pid);
    let mut tasks = Vec::new();
    for lane in 0..lanes {
        let mine: Vec<String> = ids.iter().skip(lane).step_by(lanes).cloned().collect();
        let port = broker.port;
        tasks.push(tokio::spawn(async move {
            let mut publisher = Publisher::connect(port, &format!("units-{lane}"));
            let gap = Duration::from_secs_f64(interval_s as f64 / mine.len().max(1) as f64);
            let mut tick = tokio::time::interval(gap);
            let mut sent = 0u64;
            let end = Instant::now() + Duration::from_secs(seconds);
            'outer: loop {
                for unit in &mine {
                    tick.tick().await;
                    if Instant::now() >= end {
                        break 'outer;
                    }
                    publisher
                        .publish(&format!("fire/{unit}/heartbeat"), "{}")
                        .await;
                    sent += 1;
                }
            }
            publisher
                .wait_acked(sent, Duration::from_secs(60))
                .await
                .expect("heartbeats acknowledged");
            sent
        }));
    }
    let mut sent = 0;
    for t in tasks {
        sent += t.await.expect("lane");
    }
    let secs = started.elapsed().as_secs_f64();
    let series = "gateway_ingest_messages_total{source=\"mqtt\"}";
    while (metric(&gw.metrics().await, series) as u64) < sent {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (cpu1, rss, peak) = proc_stats(pid);
    let m = gw.metrics().await;
    let ratios: Vec<f64> = TOWNSHIPS
        .iter()
        .map(|t| {
            metric(
                &m,
                &format!("gateway_unit_online_ratio{{township=\"{t}\"}}"),
            )
        })
        .collect();
    let min_ratio = ratios.iter().cloned().fold(f64::MAX, f64::min);
    println!("| units | heartbeat every | messages | gateway CPU (cores) | RSS before / after / peak | lowest township online ratio |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| {} | {interval_s} s | {sent} in {secs:.0} s ({:.0}/s) | {:.3} | {} / {} / {} MiB | {min_ratio:.3} |",
        ids.len(),
        sent as f64 / secs,
        (cpu1 - cpu0) / secs,
        rss_before >> 20,
        rss >> 20,
        peak >> 20
    );
}
