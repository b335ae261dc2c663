//! What every benchmark shares: the gateway under test, receivers, the pushers, process CPU and memory.

use super::*;

pub(super) struct Setup {
    _dir: tempfile::TempDir,
    pub(super) gw: Gateway,
    pub(super) units: Vec<String>,
}

pub(super) async fn start_gateway(args: &Args, receiver_base: &str, extra: &str) -> Setup {
    std::fs::create_dir_all(&args.workdir).expect("workdir");
    let dir = tempfile::tempdir_in(&args.workdir).expect("tempdir");
    let mut config = TestConfig::new(
        &dir.path().join("data"),
        receiver_base,
        &TOWNSHIPS,
        UNITS_PER_TOWNSHIP,
    );
    config.extra = extra.to_string();
    let path = config.write(dir.path());
    let gw = Gateway::start(&args.gateway, &path)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let units = config.units.iter().map(|(id, _)| id.clone()).collect();
    Setup {
        _dir: dir,
        gw,
        units,
    }
}

pub(super) async fn receiver(addr: &str) -> Receiver {
    receiver_recording(addr, false).await
}

/// A receiver for the 16 townships that keeps the bodies it receives when `record`.
pub(super) async fn receiver_recording(addr: &str, record: bool) -> Receiver {
    let secrets: Vec<(String, String)> = TOWNSHIPS
        .iter()
        .map(|t| (t.to_string(), township_secret(t)))
        .collect();
    Receiver::start(addr.parse().expect("addr"), &secrets, record)
        .await
        .expect("receiver")
}

/// (utime+stime seconds, RSS bytes, peak RSS bytes) of a process.
/// CPU seconds of a process's live threads, to the nanosecond (`/proc/PID/task/*/schedstat`);
/// `None` where the kernel does not offer it.
pub(super) fn cpu_ns(pid: u32) -> Option<f64> {
    let mut total = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total as f64 / 1e9)
}

/// (CPU seconds, RSS, peak RSS) of a process. CPU comes from the scheduler's nanosecond
/// accounting when available (the 10 ms ticks of `/proc/PID/stat` are too coarse for a process
/// that uses a few milliseconds a second, such as one `ffmpeg -c copy`).
pub(super) fn proc_stats(pid: u32) -> (f64, u64, u64) {
    let (_, rss, peak) = proc_stats_ticks(pid);
    match cpu_ns(pid) {
        Some(cpu) => (cpu, rss, peak),
        None => proc_stats_ticks(pid),
    }
}

pub(super) fn proc_stats_ticks(pid: u32) -> (f64, u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: f64 = fields
        .get(11)
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        + fields
            .get(12)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = |key: &str| -> u64 {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
            * 1024
    };
    (ticks / 100.0, kb("VmRSS:"), kb("VmHWM:"))
}

/// The part of a process's RSS that is file pages (its binary and shared libraries mapped),
/// in bytes: the same on every run, and machine-dependent (how much of each library the
/// kernel reads in).
pub(super) fn rss_file(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("RssFile:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

pub(super) fn body(n: u64) -> serde_json::Value {
    json!({"system_type": 1, "system_addr": 1, "component_type": 40, "component_addr": n,
           "status": ["fire"], "description": format!("bench t={}", now_us())})
}

/// Pushes `total` distinct events (component addresses `first..first + total`, so none is a
/// repeat that dedup would absorb) with `pushers` sequential clients; returns (accepted, seconds).
pub(super) async fn push_all(
    base: &str,
    units: &[String],
    first: u64,
    total: u64,
    pushers: usize,
) -> (u64, f64) {
    let next = Arc::new(AtomicU64::new(first));
    let total = first + total;
    let accepted = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..pushers {
        let (next, accepted, base, units) = (
            next.clone(),
            accepted.clone(),
            base.to_string(),
            units.to_vec(),
        );
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .expect("client");
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    return;
                }
                let unit = &units[(n as usize) % units.len()];
                let url = format!("{base}/api/v1/ingest/{unit}/status");
                loop {
                    match client
                        .post(&url)
                        .bearer_auth(INGEST_TOKEN)
                        .json(&body(n))
                        .send()
                        .await
                    {
                        Ok(r) if r.status().as_u16() == 202 => break,
                        Ok(r) if r.status().as_u16() == 503 => {
                            tokio::time::sleep(Duration::from_millis(50)).await
                        }
                        Ok(r) => panic!("push answered {}", r.status()),
                        Err(e) => panic!("push failed: {e}"),
                    }
                }
                accepted.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.expect("pusher");
    }
    (
        accepted.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64(),
    )
}

pub(super) async fn wait_delivered(receiver: &Receiver, total: u64, limit: Duration) -> f64 {
    let started = Instant::now();
    while (receiver.unique() as u64) < total {
        assert!(
            started.elapsed() < limit,
            "only {} of {total} delivered after {limit:?}",
            receiver.unique()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed().as_secs_f64()
}

pub(super) fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

pub(super) fn wait_port(port: u16, within: Duration) {
    let deadline = Instant::now() + within;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub(super) fn cameras_up(metrics: &str) -> usize {
    metrics
        .lines()
        .filter(|l| l.starts_with("gateway_camera_up{") && l.ends_with(" 1"))
        .count()
}
