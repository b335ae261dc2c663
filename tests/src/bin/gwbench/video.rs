//! `gwbench video`: the cost of picture checks and the alarm → delivered-with-evidence latency,
//! with many cameras. One camsim process serves the cameras; the gateway runs twice on it —
//! picture checks off, then on at `--vqd-interval-s` — and its CPU and RSS are measured over the
//! same window each time. During the second run, fire alarms are pushed one at a time at units
//! linked to cameras and timed until the township receives them with their snapshot.

use super::{
    cameras_up, percentile, proc_stats, receiver_recording, start_gateway, wait_port, Args,
    TOWNSHIPS,
};
use gateway_sim::harness::{metric, INGEST_TOKEN};
use serde_json::json;
use std::time::{Duration, Instant};

/// Settings of the run.
pub struct VideoBench {
    pub cameras: u32,
    pub seconds: u64,
    pub vqd_interval_s: u64,
    pub alarms: u32,
}

struct Run {
    cores: f64,
    rss: u64,
    all_online: f64,
    metrics: String,
}

async fn run_gateway(
    args: &Args,
    base: &str,
    cams: &str,
    n: u32,
    vqd_interval_s: u64,
    seconds: u64,
    during: impl AsyncFnOnce(&gateway_sim::harness::Gateway),
) -> Run {
    let extra = format!(
        "[health]\ncamera_offline_after_s = 10\ncamera_stall_after_s = 5\n\n[vqd]\ninterval_s = {vqd_interval_s}\n\n{cams}"
    );
    let started = Instant::now();
    let setup = start_gateway(args, base, &extra).await;
    let gw = &setup.gw;
    let want = n as usize;
    while cameras_up(&gw.metrics().await) < want {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "cameras never all online"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let all_online = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let pid = gw.pid();
    let (cpu0, _, _) = proc_stats(pid);
    let t0 = Instant::now();
    during(gw).await;
    let left = Duration::from_secs(seconds).saturating_sub(t0.elapsed());
    tokio::time::sleep(left).await;
    let secs = t0.elapsed().as_secs_f64();
    let (cpu1, rss, _) = proc_stats(pid);
    Run {
        cores: (cpu1 - cpu0) / secs,
        rss,
        all_online,
        metrics: gw.metrics().await,
    }
}

/// Runs the benchmark and prints Markdown for docs/benchmarks.md.
pub async fn video(args: &Args, b: VideoBench) {
    let port = gateway_sim::harness::free_port();
    let camsim_bin = args.gateway.with_file_name("camsim");
    let mut camsim = std::process::Command::new(&camsim_bin)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--cameras", &b.cameras.to_string()])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", camsim_bin.display()));
    wait_port(port, Duration::from_secs(120));
    let receiver = receiver_recording("127.0.0.1:0", true).await;
    let base = format!("http://{}", receiver.addr());
    let mut cams = String::new();
    for i in 1..=b.cameras {
        let t = TOWNSHIPS[i as usize % TOWNSHIPS.len()];
        cams += &format!(
            "[[cameras]]\nid = \"cam-{i:04}\"\nname = \"cam {i}\"\ntownship = \"{t}\"\nurl = \"rtsp://127.0.0.1:{port}/cam/{i}\"\n\n"
        );
    }
    // alarm units, each linked to one camera
    let linked = b.alarms.min(b.cameras).max(1);
    for i in 1..=linked {
        let t = TOWNSHIPS[i as usize % TOWNSHIPS.len()];
        cams += &format!(
            "[[units]]\nid = \"linked-{i}\"\nname = \"linked {i}\"\ntownship = \"{t}\"\ncameras = [\"cam-{i:04}\"]\n\n"
        );
    }

    let off = run_gateway(args, &base, &cams, b.cameras, 0, b.seconds, async |_| {}).await;
    let mut linked_ms: Vec<u64> = Vec::new();
    let mut plain_ms: Vec<u64> = Vec::new();
    let mut with_evidence = 0u32;
    let client = reqwest::Client::new();
    let on = run_gateway(
        args,
        &base,
        &cams,
        b.cameras,
        b.vqd_interval_s,
        b.seconds,
        async |gw| {
            for k in 0..b.alarms {
                // an alarm at a unit with a camera, then one at a unit without (the baseline)
                let unit = format!("linked-{}", k % linked + 1);
                let (us, has) = alarm(&client, gw, &receiver, &unit, 1000 + k).await;
                linked_ms.push(us);
                with_evidence += u32::from(has);
                tokio::time::sleep(Duration::from_millis(100)).await;
                let (us, _) = alarm(&client, gw, &receiver, "lanjiang-u1", 1000 + k).await;
                plain_ms.push(us);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        },
    )
    .await;
    let _ = camsim.kill();
    let _ = camsim.wait();
    receiver.stop();

    linked_ms.sort_unstable();
    plain_ms.sort_unstable();
    let n = b.cameras;
    let samples = |r: &str| {
        metric(
            &on.metrics,
            &format!("gateway_vqd_samples_total{{result=\"{r}\"}}"),
        )
    };
    let sum = metric(&on.metrics, "gateway_vqd_sample_seconds_sum");
    let count = metric(&on.metrics, "gateway_vqd_sample_seconds_count");
    println!(
        "{n} cameras (camsim, 640×360, 25 fps, 1 Mbps), {} s windows",
        b.seconds
    );
    println!();
    println!("| picture checks | gateway CPU (cores) | RSS | all online after |");
    println!("|---|---|---|---|");
    println!(
        "| off | {:.3} | {} MiB | {:.1} s |",
        off.cores,
        off.rss >> 20,
        off.all_online
    );
    println!(
        "| every {} s per camera | {:.3} | {} MiB | {:.1} s |",
        b.vqd_interval_s,
        on.cores,
        on.rss >> 20,
        on.all_online
    );
    println!();
    println!(
        "samples since the gateway started: {} ok, {} failed, {} skipped (budget), {} skipped (busy); decode + diagnose {:.1} ms per sample on average",
        samples("ok"),
        samples("failed"),
        samples("skipped_budget"),
        samples("skipped_busy"),
        if count > 0.0 { sum / count * 1000.0 } else { f64::NAN }
    );
    let row = |what: &str, v: &[u64]| {
        println!(
            "| {what} | {} | {:.1} ms | {:.1} ms | {:.1} ms |",
            v.len(),
            percentile(v, 0.5),
            percentile(v, 0.99),
            v.last().map_or(f64::NAN, |&m| m as f64 / 1000.0),
        )
    };
    println!();
    println!("fire alarm pushed (HTTP) → received by the township, one at a time, with the cameras streaming and checked:");
    println!();
    println!("| alarm | count | p50 | p99 | max |");
    println!("|---|---|---|---|---|");
    row(
        &format!("at a unit with a camera ({with_evidence} delivered with its snapshot)"),
        &linked_ms,
    );
    row("at a unit without cameras (baseline)", &plain_ms);
}

/// Pushes one fire alarm and waits until the township receives it: (µs, with evidence).
async fn alarm(
    client: &reqwest::Client,
    gw: &gateway_sim::harness::Gateway,
    receiver: &gateway_sim::receiver::Receiver,
    unit: &str,
    component: u32,
) -> (u64, bool) {
    let body = json!({"system_type": 1, "system_addr": 1, "component_type": 40,
        "component_addr": component, "status": ["fire"], "description": "bench"});
    let t = Instant::now();
    let r = client
        .post(gw.url(&format!("/api/v1/ingest/{unit}/status")))
        .bearer_auth(INGEST_TOKEN)
        .json(&body)
        .send()
        .await
        .expect("push");
    let v: serde_json::Value = r.json().await.expect("json");
    let id = v["events"][0].as_str().expect("event id").to_string();
    loop {
        let found = receiver
            .deliveries()
            .iter()
            .find(|d| d.idempotency_key == id)
            .map(|d| {
                d.body
                    .as_ref()
                    .is_some_and(|b| b["evidence"].as_array().is_some_and(|e| !e.is_empty()))
            });
        if let Some(has) = found {
            return (t.elapsed().as_micros() as u64, has);
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "alarm never delivered"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
