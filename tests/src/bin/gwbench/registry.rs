//! `registry`: how long `gateway check` takes on a large registry, in TOML and in CSV, how long
//! a gateway takes to be ready with it, and how long a reload of it takes (one unit added).

use super::*;

fn townships() -> TestConfig {
    TestConfig::new(
        Path::new("/tmp/unused"),
        "http://127.0.0.1:9",
        &TOWNSHIPS,
        0,
    )
}

/// Times `gateway check --config path` (best of two).
fn time_check(gateway: &Path, config: &Path) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..2 {
        let started = Instant::now();
        let out = std::process::Command::new(gateway)
            .args(["check", "--config"])
            .arg(config)
            .output()
            .expect("gateway check");
        assert!(
            out.status.success(),
            "gateway check failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        best = best.min(started.elapsed().as_secs_f64());
    }
    best
}

/// Starts a gateway on `config`, then adds a unit to its registry (`add`) and reloads:
/// seconds until ready, and for the reload.
async fn time_start_and_reload(gateway: &Path, config: &Path, add: impl FnOnce()) -> (f64, f64) {
    let started = Instant::now();
    let mut gw = Gateway::start(gateway, config)
        .await
        .expect("gateway starts");
    let ready = started.elapsed().as_secs_f64();
    add();
    let started = Instant::now();
    let r = reqwest::Client::new()
        .post(gw.url("/api/v1/admin/reload"))
        .bearer_auth(gateway_sim::harness::ADMIN_TOKEN)
        .send()
        .await
        .expect("reload answers");
    let reload = started.elapsed().as_secs_f64();
    let body: serde_json::Value = r.json().await.unwrap_or_default();
    assert_eq!(
        body["reloaded"]["units_added"].as_array().map(Vec::len),
        Some(1),
        "{body}"
    );
    let _ = gw.terminate().await;
    (ready, reload)
}

pub(super) async fn registry(args: &Args, units: usize, cameras: usize) {
    std::fs::create_dir_all(&args.workdir).expect("workdir");
    let dir = tempfile::tempdir_in(&args.workdir).expect("tempdir");
    let township = |n: usize| TOWNSHIPS[n % TOWNSHIPS.len()];

    // TOML: every unit and camera a table of its own
    let mut toml = townships();
    toml.data_dir = dir.path().join("data");
    // no RTSP sessions: the cameras are registry entries only (their addresses are not ours)
    toml.extra = "[rtsp]\nenabled = false\n\n".into();
    toml.units = (0..units)
        .map(|n| (format!("u{n:06}"), township(n).to_string()))
        .collect();
    for n in 0..cameras {
        toml.extra += &format!(
            "[[cameras]]\nid = \"c{n:06}\"\nname = \"路口{n}\"\ntownship = \"{}\"\nurl = \"rtsp://10.{}.{}.{}/s\"\n\n",
            township(n),
            n >> 16 & 255,
            n >> 8 & 255,
            n & 255
        );
    }
    let toml_dir = dir.path().join("toml");
    std::fs::create_dir_all(&toml_dir).unwrap();
    let toml_path = toml.write(&toml_dir);

    // CSV: the same registry in two files
    let csv_dir = dir.path().join("csv");
    std::fs::create_dir_all(&csv_dir).unwrap();
    let mut units_csv = String::from("id,name,township\n");
    for n in 0..units {
        units_csv += &format!("u{n:06},单位{n},{}\n", township(n));
    }
    let mut cameras_csv = String::from("id,name,township,url\n");
    for n in 0..cameras {
        cameras_csv += &format!(
            "c{n:06},路口{n},{},rtsp://10.{}.{}.{}/s\n",
            township(n),
            n >> 16 & 255,
            n >> 8 & 255,
            n & 255
        );
    }
    std::fs::write(csv_dir.join("units.csv"), units_csv).unwrap();
    std::fs::write(csv_dir.join("cameras.csv"), cameras_csv).unwrap();
    let mut csv = townships();
    csv.data_dir = dir.path().join("data");
    csv.extra = format!(
        "[rtsp]\nenabled = false\n\n[registry]\nunits_csv = {:?}\ncameras_csv = {:?}\n",
        csv_dir.join("units.csv").display().to_string(),
        csv_dir.join("cameras.csv").display().to_string()
    );
    let csv_path = csv.write(&csv_dir);

    println!("| registry | units | cameras | file size | `gateway check` | start until ready | reload (+1 unit) |");
    println!("|---|---|---|---|---|---|---|");
    for (form, path) in [("TOML", &toml_path), ("CSV", &csv_path)] {
        let bytes: u64 = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .flatten()
            .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
            .sum();
        let secs = time_check(&args.gateway, path);
        let add = || {
            let line = match form {
                "TOML" => {
                    "\n[[units]]\nid = \"u-added\"\nname = \"新单位\"\ntownship = \"lanjiang\"\n"
                        .to_string()
                }
                _ => "u-added,新单位,lanjiang\n".to_string(),
            };
            let file = match form {
                "TOML" => path.to_path_buf(),
                _ => csv_dir.join("units.csv"),
            };
            let mut text = std::fs::read_to_string(&file).unwrap();
            text += &line;
            std::fs::write(&file, text).unwrap();
        };
        let (ready, reload) = time_start_and_reload(&args.gateway, path, add).await;
        println!(
            "| {form} | {units} | {cameras} | {:.1} MB | {secs:.2} s | {ready:.2} s | {reload:.2} s |",
            bytes as f64 / 1e6
        );
    }
}
