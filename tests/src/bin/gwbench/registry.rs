//! `registry`: how long `gateway check` takes on a large registry, in TOML and in CSV.

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

pub(super) fn registry(args: &Args, units: usize, cameras: usize) {
    std::fs::create_dir_all(&args.workdir).expect("workdir");
    let dir = tempfile::tempdir_in(&args.workdir).expect("tempdir");
    let township = |n: usize| TOWNSHIPS[n % TOWNSHIPS.len()];

    // TOML: every unit and camera a table of its own
    let mut toml = townships();
    toml.data_dir = dir.path().join("data");
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
        "[registry]\nunits_csv = {:?}\ncameras_csv = {:?}\n",
        csv_dir.join("units.csv").display().to_string(),
        csv_dir.join("cameras.csv").display().to_string()
    );
    let csv_path = csv.write(&csv_dir);

    println!("| registry | units | cameras | file size | `gateway check` |");
    println!("|---|---|---|---|---|");
    for (form, path) in [("TOML", &toml_path), ("CSV", &csv_path)] {
        let bytes: u64 = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .flatten()
            .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
            .sum();
        let secs = time_check(&args.gateway, path);
        println!(
            "| {form} | {units} | {cameras} | {:.1} MB | {secs:.2} s |",
            bytes as f64 / 1e6
        );
    }
}
