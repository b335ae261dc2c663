//! HTTP push benchmarks: `throughput`, `latency`, `backlog`, and `ceiling` (the HTTP stack alone).

use super::*;

pub(super) async fn throughput(args: &Args, events: u64, single_events: u64, pushers: usize) {
    println!("| mode | events | pushers | ingest (acked/s) | end-to-end delivered/s | gateway CPU (cores) | gateway CPU per event | harness CPU (cores) | gateway peak RSS |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for (mode, total, extra) in [
        ("group commit", events, "[outbox]\ngroup_commit = true\n"),
        (
            "one fsync per commit",
            single_events,
            "[outbox]\ngroup_commit = false\n",
        ),
    ] {
        let receiver = receiver("127.0.0.1:0").await;
        let base = format!("http://{}", receiver.addr());
        let setup = start_gateway(args, &base, extra).await;
        let pid = setup.gw.pid();
        let (cpu0, _, _) = proc_stats(pid);
        // the pushers and the receiver run in this process: their CPU is the harness's share
        let (own0, _, _) = proc_stats(std::process::id());
        let started = Instant::now();
        let (accepted, push_secs) =
            push_all(&setup.gw.url(""), &setup.units, 0, total, pushers).await;
        wait_delivered(&receiver, total, Duration::from_secs(600)).await;
        let secs = started.elapsed().as_secs_f64();
        let (cpu1, _, peak) = proc_stats(pid);
        let (own1, _, _) = proc_stats(std::process::id());
        assert_eq!(receiver.bad_signatures(), 0);
        println!(
            "| {mode} | {total} | {pushers} | {:.0} | {:.0} | {:.2} | {:.0} µs | {:.2} | {} MiB |",
            accepted as f64 / push_secs,
            total as f64 / secs,
            (cpu1 - cpu0) / secs,
            (cpu1 - cpu0) / total as f64 * 1e6,
            (own1 - own0) / secs,
            peak >> 20
        );
        receiver.stop();
    }
}

pub(super) async fn latency(args: &Args, rate: u64, seconds: u64) {
    let receiver = receiver("127.0.0.1:0").await;
    let base = format!("http://{}", receiver.addr());
    let setup = start_gateway(args, &base, "").await;
    let url = setup.gw.url("");
    // warm-up: connections, page cache
    push_all(&url, &setup.units, 0, 2000, 8).await;
    wait_delivered(&receiver, 2000, Duration::from_secs(60)).await;
    receiver.clear();
    let lanes = 8u64;
    let per_lane = Duration::from_secs_f64(lanes as f64 / rate as f64);
    let total = rate * seconds;
    let counter = Arc::new(AtomicU64::new(1_000_000));
    let mut tasks = Vec::new();
    for _ in 0..lanes {
        let (url, units, counter) = (url.clone(), setup.units.clone(), counter.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut tick = tokio::time::interval(per_lane);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            for _ in 0..total / lanes {
                tick.tick().await;
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let unit = &units[(n as usize) % units.len()];
                let r = client
                    .post(format!("{url}/api/v1/ingest/{unit}/status"))
                    .bearer_auth(INGEST_TOKEN)
                    .json(&body(n))
                    .send()
                    .await
                    .expect("push");
                assert_eq!(r.status().as_u16(), 202);
            }
        }));
    }
    for t in tasks {
        t.await.expect("lane");
    }
    let sent = total / lanes * lanes;
    wait_delivered(&receiver, sent, Duration::from_secs(120)).await;
    let mut l = receiver.take_latencies_us();
    l.sort_unstable();
    println!("| offered rate | events | p50 | p90 | p99 | max |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| {rate}/s | {} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms |",
        l.len(),
        percentile(&l, 0.50),
        percentile(&l, 0.90),
        percentile(&l, 0.99),
        percentile(&l, 1.0)
    );
}

pub(super) async fn backlog(args: &Args, events: u64, pushers: usize) {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let extra = "[outbox]\nmax_pending_events = 5000000\n[delivery]\nbackoff_initial_ms = 100\nbackoff_max_ms = 1000\n";
    let setup = start_gateway(args, &base, extra).await;
    let pid = setup.gw.pid();
    let url = setup.gw.url("");
    println!("| events queued (townships down) | gateway RSS |");
    println!("|---|---|");
    let step = events / 4;
    let started = Instant::now();
    for i in 1..=4u64 {
        push_all(&url, &setup.units, (i - 1) * step, step, pushers).await;
        let (_, rss, _) = proc_stats(pid);
        println!("| {} | {} MiB |", i * step, rss >> 20);
    }
    let ingest_secs = started.elapsed().as_secs_f64();
    let queued = step * 4;
    let receiver = receiver(&format!("127.0.0.1:{port}")).await;
    let drain = wait_delivered(&receiver, queued, Duration::from_secs(1800)).await;
    let (_, rss, peak) = proc_stats(pid);
    println!();
    println!(
        "ingest with townships down: {:.0} events/s; drain after they return: {queued} events in {drain:.1} s = {:.0} events/s; RSS after drain {} MiB, peak {} MiB",
        queued as f64 / ingest_secs,
        queued as f64 / drain,
        rss >> 20,
        peak >> 20
    );
}

pub(super) async fn ceiling(requests: u64, pushers: usize) {
    let receiver = receiver("127.0.0.1:0").await;
    let url = receiver.url(TOWNSHIPS[0]);
    let secret = township_secret(TOWNSHIPS[0]);
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..pushers {
        let (next, url, secret) = (next.clone(), url.clone(), secret.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            while next.fetch_add(1, Ordering::Relaxed) < requests {
                let body = serde_json::to_vec(&body(0)).expect("json");
                let sig = gateway_sim::receiver::sign(secret.as_bytes(), &body);
                let r = client
                    .post(&url)
                    .header("X-Gateway-Signature", sig)
                    .header("Idempotency-Key", "00000000-0000-7000-8000-000000000000")
                    .body(body)
                    .send()
                    .await
                    .expect("post");
                assert!(r.status().is_success());
            }
        }));
    }
    for t in tasks {
        t.await.expect("client");
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "| HTTP exchanges (no gateway) | {requests} | {pushers} | {:.0}/s |",
        requests as f64 / secs
    );
}
