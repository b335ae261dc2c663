//! `sip`: GB/T 28181 devices registered to the gateway, keeping alive — the gateway's CPU and
//! memory for a county's worth of channels, and how fast a keepalive is answered.

use super::*;
use gateway_sim::gb28181sim::{SimConfig, SimDevice};

const SERVER_ID: &str = "34020000002000000001";
const PASSWORD: &str = "bench-password";

/// The id of simulated device `i` (an NVR).
fn device_id(i: u32) -> String {
    format!("3402000000118{:07}", i)
}

/// What one `sip` run does.
pub(super) struct SipRun {
    pub devices: u32,
    pub channels: usize,
    pub keepalive_s: u64,
    pub seconds: u64,
    pub pictures: u32,
    /// Ways of sending media, given to the devices in turn.
    pub media: Vec<String>,
}

pub(super) async fn sip(args: &Args, run: SipRun) {
    let SipRun {
        devices: n,
        channels,
        keepalive_s,
        seconds,
        pictures,
        ref media,
    } = run;
    std::fs::create_dir_all(&args.workdir).expect("workdir");
    let dir = tempfile::tempdir_in(&args.workdir).expect("tempdir");
    let receiver = receiver("127.0.0.1:0").await;
    let base = format!("http://{}", receiver.addr());
    let mut config = TestConfig::new(&dir.path().join("data"), &base, &TOWNSHIPS, 1);
    let mut extra = format!(
        "[gb28181]\nlisten_udp = \"127.0.0.1:0\"\nsip_id = \"{SERVER_ID}\"\npassword = \"{PASSWORD}\"\n\
         keepalive_timeout_s = {keepalive_s}\nkeepalive_misses = 3\nvqd_interval_s = 0\n\n"
    );
    for i in 1..=n {
        let t = TOWNSHIPS[i as usize % TOWNSHIPS.len()];
        extra += &format!(
            "[[gb28181.devices]]\nid = \"{}\"\ntownship = \"{t}\"\nmedia = \"{}\"\n",
            device_id(i),
            media[i as usize % media.len()]
        );
    }
    config.extra = extra;
    let path = config.write(dir.path());
    let gw = Gateway::start(&args.gateway, &path)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let server = gw
        .logged_addr("GB/T 28181 platform listening (UDP)")
        .expect("the platform's address");
    let pid = gw.pid();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (_, rss_idle, _) = proc_stats(pid);

    // every device registers (a hundred at a time) and answers the catalog query in one page
    let started = Instant::now();
    let mut devices = Vec::new();
    for wave in (1..=n).collect::<Vec<_>>().chunks(100) {
        let mut joins = Vec::new();
        for &i in wave {
            let mut c = SimConfig::new(&device_id(i), PASSWORD, server, channels);
            c.keepalive = Duration::ZERO;
            c.page_size = channels.max(1);
            joins.push(tokio::spawn(async move {
                let d = SimDevice::start(c).await.expect("device");
                let code = d.register().await;
                (i, code, d)
            }));
        }
        for j in joins {
            let (i, code, d) = j.await.expect("registered");
            if code != 200 {
                let log = gw.log();
                let tail: Vec<&str> = log.lines().rev().take(30).collect();
                let m = gw.metrics().await;
                let gb: Vec<&str> = m.lines().filter(|l| l.contains("gb28181")).collect();
                panic!(
                    "device {i} registers: {code}\n{}\n{}",
                    tail.join("\n"),
                    gb.join("\n")
                );
            }
            devices.push(d);
        }
    }
    let registered_s = started.elapsed().as_secs_f64();
    let want = n as u64 * channels as u64;
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let v: serde_json::Value = admin_get(&client, &gw.url("/api/v1/gb28181/devices"))
            .await
            .json()
            .await
            .expect("json");
        let have: u64 = v["devices"]
            .as_array()
            .map(|d| d.iter().filter_map(|d| d["channels_total"].as_u64()).sum())
            .unwrap_or(0);
        if have >= want {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "catalogs: {have} of {want} channels"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let catalogued_s = started.elapsed().as_secs_f64();
    let (_, rss_registered, _) = proc_stats(pid);

    // keepalives every keepalive_s, spread over the period, each timed to its 200
    let latencies = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let failed = Arc::new(AtomicU64::new(0));
    let (cpu0, _, _) = proc_stats(pid);
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for (k, d) in devices.iter().enumerate() {
        let (d, latencies, failed) = (d.clone(), latencies.clone(), failed.clone());
        let phase = Duration::from_millis((k as u64 * 7919) % (keepalive_s * 1000));
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(
                tokio::time::Instant::now() + phase,
                Duration::from_secs(keepalive_s),
            );
            loop {
                tick.tick().await;
                let sent = Instant::now();
                match d.keepalive().await {
                    200 => latencies.lock().push(sent.elapsed().as_micros() as u64),
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let secs = t0.elapsed().as_secs_f64();
    let (cpu1, rss_end, peak) = proc_stats(pid);
    for t in tasks {
        t.abort();
    }
    let file_pages = rss_file(pid);
    let listing = camera_pages(&gw, &client, n, want as usize).await;
    let mut shots = Vec::new();
    for (j, m) in media.iter().enumerate() {
        // device i (devices[i - 1]) sends as media[i mod n]
        let of: Vec<SimDevice> = devices
            .iter()
            .enumerate()
            .filter(|(k, _)| (k + 1) % media.len() == j)
            .map(|(_, d)| d.clone())
            .collect();
        shots.push((m, snapshots(&gw, &client, &of, pictures).await));
    }
    let (_, rss_pictures, peak_pictures) = proc_stats(pid);
    let m = gw.metrics().await;
    let online = metric(
        &m,
        &format!(
            "gateway_camera_online_ratio{{township=\"{}\"}}",
            TOWNSHIPS[0]
        ),
    );
    let mut l = latencies.lock().clone();
    l.sort_unstable();
    println!("| devices | channels | keepalive | registered in | catalogs in | gateway CPU | RSS idle → registered → end (peak) | of it libraries' file pages | keepalives answered | failed | p50 | p99 | max | online ratio |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {n} | {want} | {keepalive_s} s | {registered_s:.1} s | {catalogued_s:.1} s | {:.4} cores | {} → {} → {} MiB ({} MiB) | {} MiB | {} | {} | {:.2} ms | {:.2} ms | {:.2} ms | {online} |",
        (cpu1 - cpu0) / secs,
        rss_idle >> 20,
        rss_registered >> 20,
        rss_end >> 20,
        peak >> 20,
        file_pages >> 20,
        l.len(),
        failed.load(Ordering::Relaxed),
        percentile(&l, 0.5),
        percentile(&l, 0.99),
        percentile(&l, 1.0),
    );
    println!();
    println!("| `GET /api/v1/cameras?limit=100` over {want} channels (admin; pages from the start, the middle, the end) | p50 | p99 | max |");
    println!("|---|---|---|---|");
    println!(
        "| {} requests | {:.1} ms | {:.1} ms | {:.1} ms |",
        listing.len(),
        percentile(&listing, 0.5),
        percentile(&listing, 0.99),
        percentile(&listing, 1.0)
    );
    if pictures > 0 {
        println!();
        println!("| snapshots (INVITE → first keyframe → JPEG, one at a time, each a new channel) | media | p50 | p99 | max |");
        println!("|---|---|---|---|---|");
        for (m, took) in &shots {
            println!(
                "| {} | {m} | {:.1} ms | {:.1} ms | {:.1} ms |",
                took.len(),
                percentile(took, 0.5),
                percentile(took, 0.99),
                percentile(took, 1.0)
            );
        }
        println!();
        println!(
            "RSS after the snapshots: {} MiB (peak {} MiB)",
            rss_pictures >> 20,
            peak_pictures >> 20
        );
    }
    receiver.stop();
}

/// `pictures` snapshots of distinct channels through the API, one at a time; their latencies
/// (µs), sorted.
async fn snapshots(
    gw: &Gateway,
    client: &reqwest::Client,
    devices: &[SimDevice],
    pictures: u32,
) -> Vec<u64> {
    let mut took = Vec::new();
    for k in 0..pictures as usize {
        let d = &devices[k % devices.len()];
        let ch = gateway_sim::gb28181sim::channel_id(&d.id(), 1 + k / devices.len());
        let sent = Instant::now();
        let r = admin_get(
            client,
            &gw.url(&format!("/api/v1/cameras/{ch}/snapshot.jpg")),
        )
        .await;
        assert_eq!(r.status(), 200, "snapshot of {ch}");
        let jpeg = r.bytes().await.expect("body");
        took.push(sent.elapsed().as_micros() as u64);
        assert!(::cameras::video::decode::jpeg_dimensions(&jpeg).is_some());
    }
    took.sort_unstable();
    took
}

/// 300 pages of the cameras list (the channels are cameras there), one at a time, from the
/// first page, the middle and the last; their latencies (µs), sorted.
async fn camera_pages(
    gw: &Gateway,
    client: &reqwest::Client,
    devices: u32,
    channels: usize,
) -> Vec<u64> {
    let first = gw.url("/api/v1/cameras?limit=100");
    let r: serde_json::Value = admin_get(client, &first).await.json().await.expect("json");
    let ids: Vec<String> = r["cameras"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter_map(|c| c["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(ids.len(), 100.min(channels), "{r}");
    // cursors: the first page's last id, the middle device's first channel, the last device's
    let channel = |i: u32| gateway_sim::gb28181sim::channel_id(&device_id(i.max(1)), 1);
    let (mid, last) = (channel(devices / 2), channel(devices));
    let urls = [
        first,
        gw.url(&format!(
            "/api/v1/cameras?limit=100&after={}",
            ids[ids.len() - 1]
        )),
        gw.url(&format!("/api/v1/cameras?limit=100&after={mid}")),
        gw.url(&format!("/api/v1/cameras?limit=100&after={last}")),
    ];
    let mut took = Vec::new();
    for k in 0..300 {
        let sent = Instant::now();
        let r = admin_get(client, &urls[k % urls.len()]).await;
        assert_eq!(r.status(), 200);
        r.bytes().await.expect("body");
        took.push(sent.elapsed().as_micros() as u64);
    }
    took.sort_unstable();
    took
}

/// `GET url` as the admin; the answer, whatever its status.
async fn admin_get(client: &reqwest::Client, url: &str) -> reqwest::Response {
    client
        .get(url)
        .bearer_auth(gateway_sim::harness::ADMIN_TOKEN)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}
