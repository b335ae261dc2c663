//! The closed loop's costs.
//!
//! * `assessment` — a large outbox built on the store API (events over N days, cameras and
//!   units with their logs), then the assessment over the whole window: time and peak memory.
//! * `supervision` — a supervision tick with many open cases, none due and many due.
//! * `steps` — the sign/feedback API against the real gateway: requests/s and latency.

use super::*;
use alerts::case::sla::{SlaRule, Supervision};
use alerts::case::{Action, Actor, Case, Role, Verdict};
use alerts::outbox::{CameraMark, NewEvent, Op, Store};
use alerts::registry::{Camera, Registry, Township, Unit};
use chrono::{DateTime, Utc};
use uuid::Uuid;

fn township(i: usize) -> String {
    TOWNSHIPS[i % TOWNSHIPS.len()].to_string()
}

/// 16 townships, `units` units and `cameras` cameras spread over them.
pub(super) fn registry(units: usize, cameras: usize) -> Registry {
    let townships = TOWNSHIPS
        .iter()
        .map(|t| Township {
            code: t.to_string(),
            name: format!("{t}镇"),
            webhook: None,
        })
        .collect();
    let units = (0..units)
        .map(|i| Unit {
            id: format!("u-{i:05}"),
            name: format!("单位{i}"),
            township: township(i),
            heartbeat_timeout_s: None,
            gb26875_address: None,
            cameras: if i % 2 == 0 {
                vec![format!("cam-{i:05}")]
            } else {
                Vec::new()
            },
            camera_links: Vec::new(),
            utc_offset: None,
            gb26875_peers: Vec::new(),
            place: Default::default(),
            contacts: Default::default(),
        })
        .collect();
    let cameras = (0..cameras)
        .map(|i| Camera {
            id: format!("cam-{i:05}"),
            name: format!("路口{i}"),
            township: township(i),
            url: "rtsp://127.0.0.1/x".into(),
            username: None,
            password: None,
            motion_events: false,
            tamper_events: true,
            vqd_interval_s: None,
            vqd_profile: None,
            place: Default::default(),
            gb28181: None,
        })
        .collect();
    Registry::new(townships, units, cameras)
}

/// A case as a busy week leaves it: signed, judged, some closed — or every step done when
/// `settled` (a case from before the last day, for a county that closes its cases).
fn case_for(kind: &str, at: DateTime<Utc>, n: usize, settled: bool) -> Option<Case> {
    let mut c = Case::new(kind)?;
    let rule = SlaRule::defaults()
        .into_iter()
        .find(|r| r.matches(kind, alerts::Severity::Major));
    c.sla = rule.map(|r| Supervision::new(&r, at));
    let who = Actor {
        by: "值班员".into(),
        token: Some("room".into()),
        role: Role::Township,
    };
    let later = |s: i64| at + chrono::Duration::seconds(s);
    if settled || !n.is_multiple_of(5) {
        let _ = c.apply(&Action::Sign, &who, later(60 + (n % 300) as i64));
        let verdict = if kind.starts_with("fire.") {
            if n.is_multiple_of(3) {
                Verdict::FalseAlarm
            } else {
                Verdict::TrueAlarm
            }
        } else {
            Verdict::Repaired
        };
        let fb = Action::Feedback {
            verdict: Some(verdict),
            note: "已处置".into(),
        };
        let _ = c.apply(&fb, &who, later(900 + (n % 1800) as i64));
        if settled || n.is_multiple_of(2) {
            let _ = c.apply(&Action::Close, &who, later(3600));
        }
    }
    Some(c)
}

fn new_event(n: usize, at: DateTime<Utc>, units: usize, settled: bool) -> NewEvent {
    let kinds = [
        "fire.alarm",
        "fire.alarm",
        "camera.offline",
        "unit.offline",
        "fire.fault",
        "fire.linkage_feedback",
        "camera.online",
    ];
    let kind = kinds[n % kinds.len()];
    let ts = uuid::Timestamp::from_unix(
        uuid::NoContext,
        at.timestamp() as u64,
        at.timestamp_subsec_nanos(),
    );
    let id = Uuid::new_v7(ts);
    let unit = format!("u-{:05}", n % units);
    let t = township(n % units);
    let body = json!({
        "id": id, "kind": kind, "severity": "critical", "title": format!("火警 · 单位 · 感烟火灾探测器 {n} · 3F east corridor"),
        "occurred_at": at.to_rfc3339(), "received_at": at.to_rfc3339(),
        "source": {"kind": "unit", "id": unit, "name": "单位", "protocol": "http"},
        "township": {"code": t, "name": "镇"},
        "fire": {"system_type": 1, "system_addr": 1, "component_type": 40, "component_addr": n, "flags": ["fire"], "flag": "fire", "linkage_result": "in_time"},
        "evidence": [],
    });
    NewEvent {
        id,
        township: t,
        kind: kind.into(),
        body: serde_json::to_vec(&body).unwrap().into(),
        deliver: false,
        route: None,
        case: case_for(kind, at, n, settled),
        close_on_delivery: false,
        resolves: Vec::new(),
    }
}

/// Camera and unit logs: a change every `every` over the window.
fn logs(store: &Store, reg: &Registry, from: DateTime<Utc>, days: i64) {
    let every = chrono::Duration::hours(24 * days / 20);
    let cameras: Vec<String> = reg.cameras().map(|c| c.id.clone()).collect();
    for chunk in cameras.chunks(500) {
        let mut marks = Vec::new();
        let mut pictures = Vec::new();
        for (i, cam) in chunk.iter().enumerate() {
            for k in 0..20i64 {
                let at_ms = (from + every * k as i32).timestamp_millis() + i as i64;
                marks.push(CameraMark {
                    camera: cam.clone(),
                    at_ms,
                    state: if k % 2 == 0 { 1 } else { 4 },
                });
                if k % 4 == 0 {
                    pictures.push(CameraMark {
                        camera: cam.clone(),
                        at_ms: at_ms + 3_600_000,
                        state: (k % 8 == 0) as u8,
                    });
                }
            }
        }
        store
            .apply(
                &[Op::CameraLog {
                    marks,
                    baselines: Vec::new(),
                    pictures,
                    alive_ms: Utc::now().timestamp_millis(),
                }],
                u64::MAX,
            )
            .unwrap();
    }
    let units: Vec<String> = reg.units().map(|u| u.id.clone()).collect();
    for k in 0..20i64 {
        let since = from + every * k as i32;
        let states = units
            .iter()
            .map(|u| {
                let online = k % 2 == 0;
                (
                    u.clone(),
                    alerts::liveness::UnitState {
                        online,
                        since,
                        last_seen: Some(since),
                    },
                )
            })
            .collect();
        store.apply(&[Op::UnitStates(states)], u64::MAX).unwrap();
    }
}

/// The registry as CSV files and a config naming them, so that the gateway's own command
/// reads the outbox the benchmark built.
fn write_config(dir: &Path, reg: &Registry) -> PathBuf {
    write_units_csv(dir, reg);
    let mut cameras = String::from("id,name,township,url\n");
    for c in reg.cameras() {
        cameras += &format!("{},{},{},{}\n", c.id, c.name, c.township, c.url);
    }
    std::fs::write(dir.join("cameras.csv"), cameras).unwrap();
    let mut toml = "[gateway]\ndata_dir = \"data\"\n\n[rtsp]\nenabled = false\n\n[registry]\nunits_csv = \"units.csv\"\ncameras_csv = \"cameras.csv\"\n\n".to_string();
    for t in TOWNSHIPS {
        toml += &format!("[[townships]]\ncode = \"{t}\"\nname = \"{t}镇\"\n\n");
    }
    let path = dir.join("gateway.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

/// The registry's units as `dir/units.csv`.
pub(super) fn write_units_csv(dir: &Path, reg: &Registry) {
    let mut units = String::from("id,name,township,cameras\n");
    for u in reg.units() {
        units += &format!(
            "{},{},{},{}\n",
            u.id,
            u.name,
            u.township,
            u.cameras.join(";")
        );
    }
    std::fs::write(dir.join("units.csv"), units).unwrap();
}

/// Runs a command; (wall seconds, peak RSS bytes of the child).
fn run_measured(cmd: &mut std::process::Command) -> (f64, u64) {
    let t = Instant::now();
    let mut child = cmd.spawn().expect("spawn");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // wait4: the child's own peak RSS (not the benchmark's)
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4");
    let _ = child.try_wait();
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "command failed"
    );
    (t.elapsed().as_secs_f64(), usage.ru_maxrss as u64 * 1024)
}

/// How large an outbox the benchmarks build.
#[derive(clap::Args, Clone, Copy)]
pub(super) struct Scale {
    /// Events, spread evenly over the window.
    #[arg(long, default_value_t = 1_000_000)]
    pub(super) events: usize,
    /// Registered cameras (each with 20 state changes over the window).
    #[arg(long, default_value_t = 10_000)]
    pub(super) cameras: usize,
    /// Registered units (each with 20 liveness changes).
    #[arg(long, default_value_t = 5_000)]
    pub(super) units: usize,
    /// The window, days.
    #[arg(long, default_value_t = 90)]
    pub(super) days: i64,
}

/// An outbox built on the store API under `dir/data`, and the registry and window it covers.
pub(super) struct Built {
    pub(super) path: PathBuf,
    pub(super) reg: Registry,
    pub(super) from: DateTime<Utc>,
    pub(super) to: DateTime<Utc>,
}

/// `scale.events` events spread evenly over the last `scale.days` days (their cases all settled
/// before `settle_before`, when given), and the cameras' and units' logs.
pub(super) fn build_outbox(
    dir: &Path,
    scale: &Scale,
    settle_before: Option<DateTime<Utc>>,
) -> Built {
    let Scale {
        events,
        cameras,
        units,
        days,
    } = *scale;
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let path = dir.join("data/outbox.redb");
    let reg = registry(units, cameras);
    let to = Utc::now();
    let from = to - chrono::Duration::days(days);
    let store = Store::open(&path).unwrap();
    let step = (to - from).num_milliseconds() / events as i64;
    for chunk in (0..events).collect::<Vec<_>>().chunks(5000) {
        let batch = chunk
            .iter()
            .map(|&n| {
                let at = from + chrono::Duration::milliseconds(step * n as i64);
                new_event(n, at, units, settle_before.is_some_and(|b| at < b))
            })
            .collect();
        store.apply(&[Op::Commit(batch)], u64::MAX).unwrap();
    }
    logs(&store, &reg, from, days);
    Built {
        path,
        reg,
        from,
        to,
    }
}

/// Builds the outbox, then times `gateway report assessment` over the whole window (twice:
/// cold, then with the file in the page cache).
pub(super) fn assessment_bench(gateway: &Path, workdir: &Path, scale: &Scale) {
    let Scale {
        events,
        cameras,
        units,
        days,
    } = *scale;
    std::fs::create_dir_all(workdir).expect("workdir");
    let dir = tempfile::tempdir_in(workdir).expect("tempdir");
    let started = Instant::now();
    let Built {
        path,
        reg,
        from,
        to,
    } = build_outbox(dir.path(), scale, None);
    let config = write_config(dir.path(), &reg);
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!(
        "built: {events} events over {days} days, {cameras} cameras and {units} units with 20 log changes each, in {:.0} s; outbox {:.0} MiB",
        started.elapsed().as_secs_f64(),
        size as f64 / 1048576.0
    );
    println!("`gateway report assessment --from <{days} days ago> --to <now> --format json`\n");
    println!("| run | wall | events/s | peak RSS of the process |\n|---|---|---|---|");
    let out = dir.path().join("report.json");
    for run in ["first", "second"] {
        let mut cmd = std::process::Command::new(gateway);
        cmd.args(["report", "assessment", "--config"]).arg(&config);
        cmd.args([
            "--from",
            &from.to_rfc3339(),
            "--to",
            &to.to_rfc3339(),
            "--out",
        ])
        .arg(&out);
        let (took, rss) = run_measured(&mut cmd);
        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
        let total: u64 = report["city"]["events"]["by_kind"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(total as usize, events, "every event counted");
        println!(
            "| {run} | {took:.2} s | {:.0} | {:.0} MiB |",
            events as f64 / took,
            rss as f64 / 1048576.0
        );
    }
    if std::env::var_os("GWBENCH_KEEP").is_some() {
        // for profiling the command by hand
        println!("kept: {}", dir.keep().join("gateway.toml").display());
    }
}

/// Process CPU seconds (all threads).
fn cpu_self() -> f64 {
    cpu_ns(std::process::id()).unwrap_or(0.0)
}

/// A supervision tick with `open` open cases: with none due (the common case), then with
/// `due` of them due at once.
pub(super) async fn supervision_bench(workdir: &Path, open: usize, due: usize) {
    use alerts::outbox::{Outbox, OutboxConfig};
    use alerts::{ManualClock, Metrics, Pipeline, Trackers};
    std::fs::create_dir_all(workdir).expect("workdir");
    let dir = tempfile::tempdir_in(workdir).expect("tempdir");
    let reg = Arc::new(registry(64, 0));
    let metrics = Metrics::new();
    let codes = reg
        .destinations()
        .iter()
        .map(|t| t.code.clone())
        .collect::<Vec<_>>();
    let outbox = Outbox::open(
        &dir.path().join("outbox.redb"),
        codes,
        OutboxConfig::default(),
        metrics.clone(),
    )
    .unwrap();
    let t0 = Utc::now();
    let clock = Arc::new(ManualClock::new(t0));
    let trackers = Trackers {
        dedup: alerts::dedup::Dedup::new(Duration::ZERO, 10),
        liveness: alerts::liveness::Liveness::new(Vec::new(), &Default::default(), t0),
        linkage: alerts::linkage::Linkage::new(Duration::from_secs(120)),
        thresholds: alerts::threshold::Thresholds::new(Vec::new()),
        quarantine: None,
    };
    let offset = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
    let pipeline = Pipeline::new(
        reg.clone(),
        outbox.clone(),
        trackers,
        clock.clone(),
        offset,
        metrics,
    );
    // `open` unsigned alarms: `due` of them signed-late in 2 s, the rest in 3 minutes
    let rule = |s: i64| SlaRule {
        kinds: vec![],
        severity: None,
        sign_within: Some(chrono::Duration::seconds(s)),
        handle_within: None,
        close_within: None,
        remind_every: Some(chrono::Duration::seconds(300)),
    };
    let started = Instant::now();
    for chunk in (0..open).collect::<Vec<_>>().chunks(5000) {
        let batch = chunk
            .iter()
            .map(|&n| {
                let mut e = new_event(n * 7, t0, 64, false); // n * 7: always a fire.alarm
                let mut c = Case::new("fire.alarm").unwrap();
                c.sla = Some(Supervision::new(&rule(if n < due { 2 } else { 180 }), t0));
                e.case = Some(c);
                e
            })
            .collect();
        outbox.commit_new(batch).await.unwrap();
    }
    println!(
        "built: {open} open cases in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    println!(
        "| tick | due | reminded | wall | process CPU | per due case |\n|---|---|---|---|---|---|"
    );
    clock.advance(chrono::Duration::seconds(1));
    let (cpu, t) = (cpu_self(), Instant::now());
    let ticks = 100;
    for _ in 0..ticks {
        let s = pipeline.supervise().await.unwrap();
        assert_eq!(s.due, 0);
    }
    let (wall, used) = (
        t.elapsed().as_secs_f64() / ticks as f64,
        (cpu_self() - cpu) / ticks as f64,
    );
    println!(
        "| nothing due (mean of {ticks}) | 0 | 0 | {:.0} µs | {:.0} µs | — |",
        wall * 1e6,
        used * 1e6
    );
    clock.advance(chrono::Duration::seconds(10));
    let (cpu, t) = (cpu_self(), Instant::now());
    let s = pipeline.supervise().await.unwrap();
    let (wall, used) = (t.elapsed().as_secs_f64(), cpu_self() - cpu);
    println!(
        "| {due} due | {} | {} | {:.0} ms | {:.0} ms | {:.2} ms CPU |",
        s.due,
        s.reminded,
        wall * 1e3,
        used * 1e3,
        used * 1e3 / s.due.max(1) as f64
    );
}

/// Sign and feedback through the API: `alarms` alarms, each signed then judged by `clients`
/// concurrent clients; requests/s and latency per route.
pub(super) async fn steps_bench(args: &Args, alarms: u64, clients: usize) {
    let recv = receiver("127.0.0.1:0").await;
    let base_url = format!("http://{}", recv.addr());
    let setup = start_gateway(args, &base_url, "[delivery]\ntimeout_ms = 2000\n").await;
    let gw = setup.gw.url("");
    let gw = gw.trim_end_matches('/').to_string();
    let client = reqwest::Client::new();
    let mut ids = Vec::new();
    for n in 0..alarms {
        let unit = &setup.units[(n as usize) % setup.units.len()];
        let r: serde_json::Value = client
            .post(format!("{gw}/api/v1/ingest/{unit}/status"))
            .bearer_auth(INGEST_TOKEN)
            .json(&body(n))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let township = unit.rsplit_once("-u").unwrap().0.to_string();
        ids.push((r["events"][0].as_str().unwrap().to_string(), township));
    }
    let queue = Arc::new(parking_lot::Mutex::new(ids));
    let latencies = Arc::new(parking_lot::Mutex::new((Vec::new(), Vec::new())));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (queue, latencies, gw) = (queue.clone(), latencies.clone(), gw.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            loop {
                let Some((id, township)) = queue.lock().pop() else {
                    break;
                };
                let token = gateway_sim::harness::township_token(&township);
                for (route, body) in [
                    ("sign", json!({"by": "值班员"})),
                    (
                        "feedback",
                        json!({"by": "值班员", "verdict": "false_alarm", "note": "误报"}),
                    ),
                ] {
                    let t = Instant::now();
                    let r = client
                        .post(format!("{gw}/api/v1/events/{id}/{route}"))
                        .bearer_auth(&token)
                        .json(&body)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 200, "{route}");
                    let us = t.elapsed().as_micros() as u64;
                    let mut l = latencies.lock();
                    if route == "sign" {
                        l.0.push(us)
                    } else {
                        l.1.push(us)
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let wall = started.elapsed().as_secs_f64();
    let (mut sign, mut fb) = std::mem::take(&mut *latencies.lock());
    sign.sort_unstable();
    fb.sort_unstable();
    println!("{alarms} alarms, {clients} concurrent clients, each alarm signed then judged: {:.0} requests/s", 2.0 * alarms as f64 / wall);
    println!("| route | p50 | p90 | p99 | max |\n|---|---|---|---|---|");
    for (route, l) in [("sign", &sign), ("feedback", &fb)] {
        println!(
            "| {route} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms |",
            percentile(l, 0.5),
            percentile(l, 0.9),
            percentile(l, 0.99),
            *l.last().unwrap_or(&0) as f64 / 1000.0
        );
    }
}
