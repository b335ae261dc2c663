//! `cameras`: many RTSP cameras, gateway CPU per stream against ffmpeg.

use super::*;
use gateway_sim::camsim::{clip::ClipSpec, CamSim, CamSimConfig, Fault};

pub(super) async fn cameras(
    args: &Args,
    n: u32,
    (fps, kbps): (u32, u32),
    sample: u32,
    seconds: u64,
    gateway_settings: &str,
) {
    // the streams: a camsim process of its own, so its cost is not the gateway's
    let (mut camsim, port) = spawn_camsim(args, n, (fps, kbps));
    // one more camera, in this process, whose death and return are timed
    let probe = CamSim::start(CamSimConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        cameras: 1,
        clip: ClipSpec {
            fps,
            kbps,
            ..ClipSpec::default()
        },
        credentials: None,
        camera_credentials: Default::default(),
        faults: Default::default(),
        onvif: Default::default(),
    })
    .await
    .expect("probe camsim");
    // few events, each looked at: a receiver that records them
    let receiver = receiver_recording("127.0.0.1:0", true).await;
    let base = format!("http://{}", receiver.addr());
    let mut extra = format!(
        "[health]\ncamera_offline_after_s = 10\ncamera_stall_after_s = 5\n\n{gateway_settings}"
    );
    for i in 1..=n {
        let t = TOWNSHIPS[i as usize % TOWNSHIPS.len()];
        extra += &format!(
            "[[cameras]]\nid = \"cam-{i:04}\"\nname = \"cam {i}\"\ntownship = \"{t}\"\nurl = \"rtsp://127.0.0.1:{port}/cam/{i}\"\n\n"
        );
    }
    extra += &format!(
        "[[cameras]]\nid = \"probe\"\nname = \"probe\"\ntownship = \"lanjiang\"\nurl = \"{}\"\n\n",
        probe.url(1)
    );
    let started = Instant::now();
    let setup = start_gateway(args, &base, &extra).await;
    let gw = &setup.gw;
    let want = n as usize + 1;
    let mut up = 0;
    while up < want {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "only {up} of {want} cameras online"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        up = cameras_up(&gw.metrics().await);
    }
    let all_online = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let pid = gw.pid();
    let (cpu0, _, _) = proc_stats(pid);
    let (sim0, _, _) = proc_stats(camsim.id());
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let secs = t0.elapsed().as_secs_f64();
    let (cpu1, rss, peak) = proc_stats(pid);
    let (sim1, sim_rss, _) = proc_stats(camsim.id());
    let up_now = cameras_up(&gw.metrics().await);
    let gw_cores = (cpu1 - cpu0) / secs;

    let (to_offline, to_online) = outage(&receiver, &probe).await;
    let (ff_cpu, ff_rss) = ffmpeg_baseline(port, sample, seconds).await;
    let _ = camsim.kill();
    let _ = camsim.wait();

    let gw_stream_cpu = gw_cores / want as f64;
    let gw_stream_rss = rss as f64 / want as f64;
    println!("{want} cameras ({n} from a camsim process + 1 probe), {fps} fps, {kbps} kbps, TCP interleaved");
    println!();
    println!("| | streams | CPU (cores) | CPU per stream | RSS | RSS per stream |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| gateway | {want} ({up_now} online) | {gw_cores:.3} | {:.3} % | {} MiB (peak {} MiB) | {:.0} KiB |",
        gw_stream_cpu * 100.0,
        rss >> 20,
        peak >> 20,
        gw_stream_rss / 1024.0
    );
    println!(
        "| ffmpeg -c copy -f null (baseline, {sample} processes) | 1 each | {:.3} each | {:.3} % | {:.0} MiB each | {:.0} KiB |",
        ff_cpu,
        ff_cpu * 100.0,
        ff_rss / 1048576.0,
        ff_rss / 1024.0
    );
    println!(
        "| gateway advantage | | | {:.1}× less | | {:.1}× less |",
        ff_cpu / gw_stream_cpu,
        ff_rss / gw_stream_rss
    );
    println!();
    println!(
        "all {want} online {all_online:.1} s after the gateway was started; camsim itself: {:.2} cores, {} MiB",
        (sim1 - sim0) / secs,
        sim_rss >> 20
    );
    println!(
        "probe camera refused → camera.offline received in {to_offline:.1} s (camera_offline_after_s = 10); back → camera.online received in {to_online:.1} s"
    );
    probe.stop();
    receiver.stop();
}

/// A camsim process serving `n` cameras; it and the port it listens on.
pub(super) fn spawn_camsim(
    args: &Args,
    n: u32,
    (fps, kbps): (u32, u32),
) -> (std::process::Child, u16) {
    let port = free_port();
    let camsim_bin = args.gateway.with_file_name("camsim");
    let camsim = std::process::Command::new(&camsim_bin)
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--cameras",
            &n.to_string(),
        ])
        .args([
            "--fps",
            &fps.to_string(),
            "--bitrate-kbps",
            &kbps.to_string(),
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", camsim_bin.display()));
    wait_port(port, Duration::from_secs(120));
    (camsim, port)
}

/// The probe camera refused, then back: seconds to `camera.offline` and to `camera.online`,
/// as the township's webhook receives them.
async fn outage(receiver: &Receiver, probe: &CamSim) -> (f64, f64) {
    let count = |kind: &str| {
        receiver
            .deliveries()
            .iter()
            .filter(|d| d.event_header == kind)
            .count()
    };
    let until_one_more = |kind: &'static str| {
        let before = count(kind);
        let started = Instant::now();
        async move {
            while count(kind) == before {
                assert!(started.elapsed() < Duration::from_secs(120), "no {kind}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            started.elapsed().as_secs_f64()
        }
    };
    let offline = until_one_more("camera.offline");
    probe.set_fault(1, Some(Fault::Refuse));
    let to_offline = offline.await;
    let online = until_one_more("camera.online");
    probe.set_fault(1, None);
    (to_offline, online.await)
}

/// The baseline: what users run instead, one `ffmpeg -c copy -f null` per camera, on the first
/// `sample` cameras; CPU (cores) and RSS (bytes) per process.
async fn ffmpeg_baseline(port: u16, sample: u32, seconds: u64) -> (f64, f64) {
    let mut ffmpegs: Vec<std::process::Child> = (1..=sample)
        .map(|i| {
            std::process::Command::new("ffmpeg")
                .args([
                    "-hide_banner",
                    "-loglevel",
                    "error",
                    "-rtsp_transport",
                    "tcp",
                    "-i",
                ])
                .arg(format!("rtsp://127.0.0.1:{port}/cam/{i}"))
                .args(["-c", "copy", "-f", "null", "-"])
                .stdin(std::process::Stdio::null())
                .spawn()
                .expect("ffmpeg (apt install ffmpeg)")
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let before: Vec<f64> = ffmpegs.iter().map(|c| proc_stats(c.id()).0).collect();
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let secs = started.elapsed().as_secs_f64();
    let after: Vec<(f64, u64, u64)> = ffmpegs.iter().map(|c| proc_stats(c.id())).collect();
    for c in &mut ffmpegs {
        let _ = c.kill();
        let _ = c.wait();
    }
    let cpu = before
        .iter()
        .zip(&after)
        .map(|(b, a)| (a.0 - b) / secs)
        .sum::<f64>()
        / sample as f64;
    let rss = after.iter().map(|a| a.1).sum::<u64>() as f64 / sample as f64;
    (cpu, rss)
}
