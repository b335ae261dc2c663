//! `mqtt`: a burst of telemetry through a real broker against the raw subscriber, standard and vendor profiles.

use super::*;

/// Writes one file of telemetry lines per publisher; returns (topic, file) pairs.
pub(super) fn telemetry_files(
    dir: &Path,
    units: &[String],
    messages: u64,
    publishers: u64,
    vendor: bool,
) -> Vec<(String, PathBuf)> {
    (0..publishers)
        .map(|p| {
            let unit = &units[p as usize % units.len()];
            let path = dir.join(format!("telemetry-{p}.txt"));
            let mut text = String::new();
            for n in 0..messages / publishers {
                let payload = if vendor {
                    // residual current sweeps 0-399 mA: past the 300 mA limit once per sweep
                    json!({"ts": 1764295200 + n, "ir": n % 400,
                           "t": {"A": 40.0, "B": 41.5, "C": 39.0}, "state": "NORMAL"})
                } else {
                    json!({"system_type": 1, "system_addr": 1, "component_type": 17,
                        "component_addr": n, "analog_type": 9, "value": (n % 100) as f64 / 100.0})
                };
                text += &payload.to_string();
                text.push('\n');
            }
            std::fs::write(&path, text).expect("write telemetry");
            let topic = if vendor {
                format!("efm/{unit}/up")
            } else {
                format!("fire/{unit}/analog")
            };
            (topic, path)
        })
        .collect()
}

pub(super) fn publish_files(port: u16, files: &[(String, PathBuf)]) -> Vec<std::process::Child> {
    files
        .iter()
        .enumerate()
        .map(|(i, (topic, path))| {
            std::process::Command::new("mosquitto_pub")
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &port.to_string(),
                    "-q",
                    "1",
                    "-l",
                    "-t",
                    topic,
                ])
                .args(["-i", &format!("bench-pub-{i}")])
                .stdin(std::fs::File::open(path).expect("telemetry file"))
                .spawn()
                .expect("mosquitto_pub (install mosquitto-clients)")
        })
        .collect()
}

pub(super) async fn mqtt(
    args: &Args,
    messages: u64,
    publishers: u64,
    alarm_every_ms: u64,
    vendor: bool,
) {
    use gateway_sim::mosquitto::Mosquitto;
    std::fs::create_dir_all(&args.workdir).expect("workdir");
    let dir = tempfile::tempdir_in(&args.workdir).expect("tempdir");
    let mut broker = Mosquitto::start(&dir.path().join("broker"))
        .await
        .expect("mosquitto");
    let total = messages / publishers * publishers;

    // 1. the raw limit: one mosquitto_sub -q 1
    let units: Vec<String> = TOWNSHIPS.iter().map(|t| format!("{t}-u1")).collect();
    let files = telemetry_files(dir.path(), &units, total, publishers, vendor);
    let filter = if vendor { "efm/+/up" } else { "fire/+/+" };
    let raw_secs = raw_subscriber(broker.port, &files, total, filter).await;
    let raw_rate = total as f64 / raw_secs;

    // 2. the gateway, same broker, same burst, alarms alongside
    let receiver = receiver("127.0.0.1:0").await;
    let base = format!("http://{}", receiver.addr());
    let profiles = if vendor {
        let file = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../config/profiles/electrical-fire-monitor.toml");
        format!(
            "[registry]\nprofile_files = [{:?}]\n",
            file.display().to_string()
        )
    } else {
        String::new()
    };
    let extra = format!(
        "{profiles}\n[mqtt]\nurl = \"{}\"\nclient_id = \"gw-bench\"\n",
        broker.url()
    );
    let setup = start_gateway(args, &base, &extra).await;
    let pid = setup.gw.pid();
    let gw = &setup.gw;
    let ingested = || async {
        metric(
            &gw.metrics().await,
            "gateway_ingest_messages_total{source=\"mqtt\"}",
        ) as u64
    };
    while metric(&gw.metrics().await, "gateway_mqtt_subscribed") != 1.0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let alarms = alarms(broker.port, alarm_every_ms, stop.clone());
    let (cpu0, _, _) = proc_stats(pid);
    let started = Instant::now();
    let pubs = publish_files(broker.port, &files);
    for mut p in pubs {
        tokio::task::spawn_blocking(move || p.wait())
            .await
            .expect("join")
            .expect("publisher");
    }
    stop.store(true, Ordering::Relaxed);
    let sent_alarms = alarms.await.expect("alarms");
    let want = total + sent_alarms;
    while ingested().await < want {
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "gateway processed {} of {want}",
            ingested().await
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let gw_secs = started.elapsed().as_secs_f64();
    let (cpu1, _, peak) = proc_stats(pid);
    wait_delivered(&receiver, sent_alarms, Duration::from_secs(60)).await;
    let mut l = receiver.take_latencies_us();
    l.sort_unstable();
    let gw_rate = want as f64 / gw_secs;
    println!("| subscriber | QoS 1 messages | seconds | messages/s | vs raw |");
    println!("|---|---|---|---|---|");
    println!("| mosquitto_sub -q 1 (raw) | {total} | {raw_secs:.2} | {raw_rate:.0} | 1.00 |");
    println!(
        "| gateway (processed, counted) | {want} | {gw_secs:.2} | {gw_rate:.0} | {:.2} |",
        gw_rate / raw_rate
    );
    println!();
    println!(
        "gateway CPU {:.2} cores, peak RSS {} MiB; alarms during the burst: {} delivered, publish → webhook p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        (cpu1 - cpu0) / gw_secs,
        peak >> 20,
        l.len(),
        percentile(&l, 0.5),
        percentile(&l, 0.99),
        percentile(&l, 1.0)
    );
    broker.stop().await;
}

/// The raw limit: one `mosquitto_sub -q 1` with a persistent session (subscribed before
/// anything is published) takes the whole burst; seconds it took.
async fn raw_subscriber(port: u16, files: &[(String, PathBuf)], total: u64, filter: &str) -> f64 {
    let port_text = port.to_string();
    let sub_args = [
        "-h",
        "127.0.0.1",
        "-p",
        port_text.as_str(),
        "-q",
        "1",
        "-t",
        filter,
        "-c",
        "-i",
        "raw-sub",
    ];
    let ready = std::process::Command::new("mosquitto_sub")
        .args(sub_args)
        .arg("-E")
        .status()
        .expect("mosquitto_sub (install mosquitto-clients)");
    assert!(ready.success(), "mosquitto_sub -E: {ready}");
    let mut sub = std::process::Command::new("mosquitto_sub")
        .args(sub_args)
        .args(["-C", &total.to_string()])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("mosquitto_sub");
    let started = Instant::now();
    let pubs = publish_files(port, files);
    let status = tokio::task::spawn_blocking(move || sub.wait())
        .await
        .expect("join")
        .expect("wait");
    let secs = started.elapsed().as_secs_f64();
    assert!(status.success(), "mosquitto_sub: {status}");
    for mut p in pubs {
        p.wait().expect("publisher");
    }
    secs
}

/// Fire alarms published every `every_ms` until `stop`, each acknowledged by the broker; the
/// task answers how many were sent.
fn alarms(
    port: u16,
    every_ms: u64,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<u64> {
    let mut publisher = gateway_sim::mosquitto::Publisher::connect(port, "bench-alarms");
    tokio::spawn(async move {
        let mut sent = 0u64;
        let mut tick = tokio::time::interval(Duration::from_millis(every_ms));
        while !stop.load(Ordering::Relaxed) {
            tick.tick().await;
            publisher
                .publish(
                    "fire/lanjiang-u2/status",
                    body(10_000_000 + sent).to_string(),
                )
                .await;
            sent += 1;
        }
        // every alarm reaches the broker before the publisher goes
        publisher
            .wait_acked(sent, Duration::from_secs(30))
            .await
            .expect("alarms acknowledged");
        sent
    })
}
