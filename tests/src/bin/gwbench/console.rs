//! `console`: the operator console at county scale — an outbox of a million events over 90
//! days, 10,000 cameras (the first of them streaming from camsim, the rest offline) and 5,000
//! units — measured in a real browser (headless Chromium) and on the API routes behind it.

use super::cases::{build_outbox, Built, Scale};
use super::*;
use chrono::Utc;
use gateway_sim::harness::ADMIN_TOKEN;
use gateway_sim::webdriver::Browser;
use serde_json::Value;

/// What the console benchmark is run with.
pub(super) struct ConsoleBench {
    /// The outbox and registry.
    pub(super) scale: Scale,
    /// Cameras served by camsim (the first ones by id: the wall's first pages).
    pub(super) live: u32,
    /// Requests per API route.
    pub(super) requests: usize,
    /// Page loads per console page.
    pub(super) loads: usize,
}

pub(super) async fn console(args: &Args, b: ConsoleBench) {
    std::fs::create_dir_all(&args.workdir).expect("workdir");
    let dir = tempfile::tempdir_in(&args.workdir).expect("tempdir");
    let started = Instant::now();
    let to = Utc::now();
    // cases older than a day are settled: a county closes its cases (else every one of them
    // would be reminded again every five minutes)
    let built = build_outbox(dir.path(), &b.scale, Some(to - chrono::Duration::days(1)));
    let size = std::fs::metadata(&built.path).map(|m| m.len()).unwrap_or(0);
    println!(
        "built: {} events over {} days, {} cameras, {} units, in {:.0} s; outbox {:.0} MiB",
        b.scale.events,
        b.scale.days,
        b.scale.cameras,
        b.scale.units,
        started.elapsed().as_secs_f64(),
        size as f64 / 1048576.0
    );
    let (camsim, port) = cameras::spawn_camsim(args, b.live, (25, 1000));
    let _camsim = KillOnDrop(camsim);
    let config = write_config(dir.path(), &built, b.live, port);
    let gw = Gateway::start(&args.gateway, &config)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    wait_live(&gw, b.live).await;

    // the wall first, while no thumbnail has been made
    wall(&gw, b.live).await;
    api_latency(&gw, b.requests).await;
    pages(&gw, b.loads).await;
}

/// A child process killed when this goes (also when the benchmark panics).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The registry as CSV files (cameras after the `live` first at a port nothing listens on)
/// and a config with the API's tokens over the outbox built.
fn write_config(dir: &Path, built: &Built, live: u32, port: u16) -> PathBuf {
    super::cases::write_units_csv(dir, &built.reg);
    let dead = free_port();
    let mut cameras = String::from("id,name,township,url\n");
    // by id, as the wall shows them: the live ones on its first page
    let mut by_id: Vec<_> = built.reg.cameras().collect();
    by_id.sort_by(|a, b| a.id.cmp(&b.id));
    for (i, c) in by_id.into_iter().enumerate() {
        let url = if (i as u32) < live {
            format!("rtsp://127.0.0.1:{port}/cam/{}", i + 1)
        } else {
            format!("rtsp://127.0.0.1:{dead}/cam/{}", i + 1)
        };
        cameras += &format!("{},{},{},{url}\n", c.id, c.name, c.township);
    }
    std::fs::write(dir.join("cameras.csv"), cameras).unwrap();
    let mut config = TestConfig::new(&dir.join("data"), "", &TOWNSHIPS, 0);
    for t in &mut config.townships {
        t.1 = None;
    }
    config.extra = format!(
        "[registry]\nunits_csv = {:?}\ncameras_csv = {:?}\n\n[rtsp]\nreconnect_max_s = 60\n\n[vqd]\ninterval_s = 60\n\n",
        dir.join("units.csv").display().to_string(),
        dir.join("cameras.csv").display().to_string(),
    );
    config.write(dir)
}

async fn wait_live(gw: &Gateway, live: u32) {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let up = cameras_up(&gw.metrics().await);
        if up >= live as usize {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {up} of {live} cameras online"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Midnight and six days before it in the gateway's time zone (the default `+08:00`), as the
/// overview asks for them.
fn windows() -> (String, String) {
    let zone = chrono::FixedOffset::east_opt(8 * 3600).expect("offset");
    let midnight = Utc::now()
        .with_timezone(&zone)
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_local_timezone(zone)
        .unwrap();
    let week = midnight - chrono::Duration::days(6);
    let q = |t: chrono::DateTime<chrono::FixedOffset>| {
        t.with_timezone(&Utc)
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    (q(midnight), q(week))
}

/// Each route the console's pages call, `n` times one after another: the first time (for an
/// assessment: computed, not yet kept), p50, p99, max, bytes.
async fn api_latency(gw: &Gateway, n: usize) {
    let (midnight, week) = windows();
    let routes = [
        ("overview", "/api/v1/townships".to_string()),
        (
            "overview",
            format!("/api/v1/reports/assessment?format=json&from={midnight}"),
        ),
        (
            "overview",
            format!("/api/v1/reports/assessment?format=json&from={week}"),
        ),
        ("events", "/api/v1/events?limit=200&state=open".to_string()),
        (
            "events",
            "/api/v1/events?limit=200&state=overdue".to_string(),
        ),
        (
            "events",
            "/api/v1/events?limit=200&state=closed".to_string(),
        ),
        ("cameras", "/api/v1/cameras?limit=100".to_string()),
        (
            "cameras",
            "/api/v1/cameras/cam-00001/snapshot.jpg?width=320".to_string(),
        ),
        ("units", "/api/v1/units?limit=100".to_string()),
        ("all", "/api/v1/whoami".to_string()),
    ];
    let client = reqwest::Client::new();
    println!("\nAPI behind the pages ({n} requests each, one at a time, admin token):\n");
    println!("| page | route | first | p50 | p99 | max | bytes |\n|---|---|---|---|---|---|---|");
    for (page, route) in routes {
        let mut times = Vec::with_capacity(n);
        let mut bytes = 0;
        for _ in 0..n {
            let t = Instant::now();
            let r = client
                .get(gw.url(&route))
                .bearer_auth(ADMIN_TOKEN)
                .send()
                .await
                .expect("request");
            let status = r.status();
            let body = r.bytes().await.expect("body");
            assert!(
                status.is_success(),
                "{route}: {status} {}",
                String::from_utf8_lossy(&body)
            );
            bytes = body.len();
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let first = times[0];
        times.sort_by(|a, b| a.total_cmp(b));
        let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
        let shown = route.split("from=").next().unwrap_or(&route);
        let window = if route.contains(&midnight) {
            "today"
        } else if route.contains(&week) {
            "7 days"
        } else {
            ""
        };
        println!(
            "| {page} | `{shown}`{window} | {first:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {bytes} |",
            at(0.5),
            at(0.99),
            times[times.len() - 1]
        );
    }
}

/// Signs the browser in (the token in `sessionStorage`, as the sign-in form leaves it).
async fn sign_in(browser: &Browser, gw: &Gateway) {
    browser.goto(&gw.url("/")).await.unwrap();
    browser
        .script(
            "sessionStorage.setItem('token', arguments[0]); sessionStorage.setItem('name', 'bench'); return true",
            serde_json::json!([ADMIN_TOKEN]),
        )
        .await
        .unwrap();
}

/// A fresh load of `page`: ms from navigation to first contentful paint and to the page's
/// data on screen (the console's `console:<page>` mark), and bytes transferred: the page and
/// its assets, and the API's answers.
async fn load(browser: &Browser, gw: &Gateway, page: &str) -> (f64, f64, (u64, u64)) {
    browser.goto(&gw.url(&format!("/#{page}"))).await.unwrap();
    browser
        .script("location.reload(); return true", serde_json::json!([]))
        .await
        .unwrap();
    let mark = format!("console:{page}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v: Value = browser
            .script(
                "const m = performance.getEntriesByName(arguments[0]); \
                 if (!m.length) return null; \
                 const p = performance.getEntriesByName('first-contentful-paint'); \
                 const nav = performance.getEntriesByType('navigation')[0]; \
                 const res = performance.getEntriesByType('resource'); \
                 const sum = (l) => l.reduce((n, r) => n + r.transferSize, 0); \
                 const api = sum(res.filter(r => r.name.includes('/api/'))); \
                 const own = nav.transferSize + sum(res.filter(r => !r.name.includes('/api/'))); \
                 return [p.length ? p[0].startTime : -1, m[0].startTime, own, api];",
                serde_json::json!([mark]),
            )
            .await
            .unwrap_or(Value::Null);
        if let Some(a) = v.as_array() {
            let f = |i: usize| a[i].as_f64().unwrap_or(-1.0);
            return (f(0), f(1), (f(2) as u64, f(3) as u64));
        }
        assert!(Instant::now() < deadline, "{page} never shown");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The overview and the events page, each loaded `n` times in a fresh document.
async fn pages(gw: &Gateway, n: usize) {
    let browser = Browser::start().await.unwrap_or_else(|e| panic!("{e}"));
    // the first load, with nothing cached yet (a new browser profile): the sign-in page
    browser.goto(&gw.url("/")).await.unwrap();
    let own = browser
        .script(
            "const nav = performance.getEntriesByType('navigation')[0]; \
             return nav.transferSize + performance.getEntriesByType('resource') \
               .reduce((n, r) => n + r.transferSize, 0);",
            serde_json::json!([]),
        )
        .await
        .unwrap();
    sign_in(&browser, gw).await;
    let (_, _, (_, api)) = load(&browser, gw, "overview").await;
    println!("\nFirst load, nothing cached: {own} bytes of page and assets, then {api} bytes of API answers for the overview (as transferred, compressed)");
    println!("\nIn the browser ({n} fresh loads each, headless Chromium on the same 2 cores):\n");
    println!("| page | first paint p50 | data shown p50 | data shown max | API bytes |\n|---|---|---|---|---|");
    for page in ["overview", "events", "cameras", "units"] {
        let mut paint = Vec::new();
        let mut shown = Vec::new();
        let mut bytes = 0;
        for _ in 0..n {
            let (p, s, (_, api)) = load(&browser, gw, page).await;
            paint.push(p);
            shown.push(s);
            bytes = bytes.max(api);
        }
        paint.sort_by(|a, b| a.total_cmp(b));
        shown.sort_by(|a, b| a.total_cmp(b));
        println!(
            "| {page} | {:.0} ms | {:.0} ms | {:.0} ms | {bytes} |",
            paint[n / 2],
            shown[n / 2],
            shown[n - 1]
        );
    }
}

/// The wall's first page (its `live` cameras streaming): time until every thumbnail is shown,
/// cold (each decoded) and again within 30 s (each kept), with the decoder pool's picture
/// checks counted meanwhile.
async fn wall(gw: &Gateway, live: u32) {
    let browser = Browser::start().await.unwrap_or_else(|e| panic!("{e}"));
    sign_in(&browser, gw).await;
    println!(
        "\nThe camera wall's first page ({} streaming cameras' thumbnails), fresh loads:\n",
        live.min(100)
    );
    println!("| load | all shown after | thumbnails missing | picture checks done / skipped busy meanwhile |\n|---|---|---|---|");
    for run in ["cold", "warm (within 30 s)", "warm again"] {
        let before = gw.metrics().await;
        let (_, _, _) = load(&browser, gw, "cameras").await;
        let deadline = Instant::now() + Duration::from_secs(30);
        let (done, missing) = loop {
            let v = browser
                .script(
                    "const i = [...document.querySelectorAll('#wall img.live')]; \
                     return [i.filter(x => x.complete && x.naturalWidth > 0).length, i.length, performance.now()];",
                    serde_json::json!([]),
                )
                .await
                .unwrap();
            let a = v.as_array().unwrap();
            let (ok, all) = (a[0].as_u64().unwrap(), a[1].as_u64().unwrap());
            if (ok == all && all > 0) || Instant::now() > deadline {
                break (a[2].as_f64().unwrap(), all - ok);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let after = gw.metrics().await;
        let d = |s: &str| metric(&after, s) - metric(&before, s);
        println!(
            "| {run} | {done:.0} ms | {missing} | {} / {} |",
            d("gateway_vqd_samples_total{result=\"ok\"}"),
            d("gateway_vqd_samples_total{result=\"skipped_busy\"}")
        );
    }
}
