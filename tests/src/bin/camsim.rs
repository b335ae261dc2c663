//! `camsim`: simulated RTSP cameras at `rtsp://ADDR/cam/{1..N}` serving real H.264.
//!
//! `camsim --listen 127.0.0.1:8554 --cameras 1000 [--fps 25] [--bitrate-kbps 1000]
//!         [--user U --password P] [--fault 3=401 --fault 4=stall:10 …]`
//!
//! The clip is encoded once with the `ffmpeg` command (libx264) and cached (`CAMSIM_CACHE`, or
//! the system temp directory).

use clap::Parser;
use gateway_sim::camsim::clip::ClipSpec;
use gateway_sim::camsim::{CamSim, CamSimConfig, Fault};
use std::collections::HashMap;

#[derive(Parser)]
#[command(about = "Simulated RTSP cameras")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8554")]
    listen: std::net::SocketAddr,
    /// Number of cameras.
    #[arg(long, default_value_t = 10)]
    cameras: u32,
    /// Frames per second.
    #[arg(long, default_value_t = 25)]
    fps: u32,
    /// Target bitrate.
    #[arg(long, default_value_t = 1000)]
    bitrate_kbps: u32,
    /// Picture width.
    #[arg(long, default_value_t = 640)]
    width: u32,
    /// Picture height.
    #[arg(long, default_value_t = 360)]
    height: u32,
    /// Required username (Basic authentication).
    #[arg(long)]
    user: Option<String>,
    /// Required password.
    #[arg(long, env = "CAMSIM_PASSWORD")]
    password: Option<String>,
    /// `N=USER:PASSWORD`: credentials of camera N only (others use --user/--password, if any).
    #[arg(long)]
    auth: Vec<String>,
    /// Camera N offers an ONVIF metadata stream (repeatable).
    #[arg(long)]
    onvif: Vec<u32>,
    /// Send a tamper notification on every ONVIF camera this often (0: never).
    #[arg(long, default_value_t = 0)]
    onvif_tamper_every_s: u64,
    /// `N=FAULT`: refuse, 401, 404, stall:S, drop:S, slow-describe:S, wrong-sdp, low-fps:N,
    /// black, frozen, noisy, blurred.
    #[arg(long)]
    fault: Vec<String>,
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let mut faults = HashMap::new();
    for f in &args.fault {
        let parsed = f
            .split_once('=')
            .ok_or_else(|| format!("--fault `{f}`: expected N=FAULT"))
            .and_then(|(n, fault)| {
                let n: u32 = n
                    .parse()
                    .map_err(|_| format!("--fault `{f}`: `{n}` is not a camera number"))?;
                Ok((n, Fault::parse(fault)?))
            });
        match parsed {
            Ok((n, fault)) => {
                faults.insert(n, fault);
            }
            Err(e) => {
                eprintln!("camsim: {e}");
                std::process::exit(2);
            }
        }
    }
    let mut camera_credentials = HashMap::new();
    for a in &args.auth {
        let parsed = a.split_once('=').and_then(|(n, up)| {
            let (u, p) = up.split_once(':')?;
            Some((n.parse::<u32>().ok()?, (u.to_string(), p.to_string())))
        });
        match parsed {
            Some((n, creds)) => {
                camera_credentials.insert(n, creds);
            }
            None => {
                eprintln!("camsim: --auth `{a}`: expected N=USER:PASSWORD");
                std::process::exit(2);
            }
        }
    }
    let config = CamSimConfig {
        listen: args.listen,
        cameras: args.cameras,
        clip: ClipSpec {
            width: args.width,
            height: args.height,
            fps: args.fps,
            kbps: args.bitrate_kbps,
        },
        credentials: args.user.clone().zip(args.password.clone()),
        camera_credentials,
        faults,
        onvif: args.onvif.iter().copied().collect(),
    };
    let sim = match CamSim::start(config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("camsim: {e}");
            std::process::exit(1);
        }
    };
    println!(
        "camsim: {} cameras at rtsp://{}/cam/1 … /cam/{} ({} fps, {} kbps)",
        args.cameras,
        sim.addr(),
        args.cameras,
        args.fps,
        args.bitrate_kbps
    );
    if args.onvif_tamper_every_s > 0 && !args.onvif.is_empty() {
        let every = std::time::Duration::from_secs(args.onvif_tamper_every_s);
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    for &n in &args.onvif {
                        sim.onvif(n, cameras::rtsp::onvif::sample("tns1:RuleEngine/TamperDetector/Tamper", "IsTamper", true));
                    }
                }
                _ = tokio::signal::ctrl_c() => break,
            }
        }
    } else {
        let _ = tokio::signal::ctrl_c().await;
    }
    println!("camsim: {} frames sent", sim.frames_sent());
}
