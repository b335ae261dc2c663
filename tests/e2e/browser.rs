//! The console in a real browser: headless Chromium (chromedriver) against the real gateway and
//! a real webhook receiver. Screenshots go to `target/console-screenshots/` for review.

use crate::common::*;
use gateway_sim::webdriver::Browser;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn shot(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/console-screenshots")
        .join(format!("{name}.png"))
}

/// A township signs in; a fire alarm pushed over HTTP appears in the live list within 2 s with
/// its camera's snapshot; the duty officer signs, gives feedback with a verdict and closes it through the page, and the API
/// shows the same history. Another township is nowhere on the page, a description that is markup
/// stays text, and every request the page made went to the gateway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_township_handles_a_fire_alarm_through_the_console() {
    use crate::cameras::{camera_toml, wait_camera, FAST_HEALTH};
    use gateway_sim::camsim::{CamSim, CamSimConfig};
    let sim = CamSim::start(CamSimConfig::local(1))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // a mall whose detectors cam-1 watches: its alarms carry cam-1's picture
    let mall = format!(
        "{FAST_HEALTH}{}[[units]]\nid = \"mall\"\nname = \"商场\"\ntownship = \"lanjiang\"\ncameras = [\"cam-1\"]\n\n",
        camera_toml("cam-1", "lanjiang", &sim.url(1), None)
    );
    let env = Env::start(&["lanjiang", "yunshan"], |c| {
        c.extra += &brigade();
        c.extra += &mall;
    })
    .await;
    wait_camera(&env, "cam-1", "online", |c| c["state"] == "online").await;
    let browser = Browser::start().await.unwrap_or_else(|e| panic!("{e}"));
    let origin = env.gw.url("");
    sign_in(&browser, &env, &township_token("lanjiang"), "李值班").await;
    browser.wait_for("#townships tr", WAIT).await.unwrap();
    let who = browser.text("#whoami").await.unwrap();
    assert!(who.contains("李值班") && who.contains("lanjiang"), "{who}");
    // what the page was told: the token's scope, and the gateway's time zone to count days in
    let (_, me) = env
        .get("/api/v1/whoami", Some(&township_token("lanjiang")))
        .await;
    assert_eq!(
        (&me["scope"], &me["code"], &me["utc_offset"]),
        (&json!("township"), &json!("lanjiang"), &json!("+08:00")),
        "{me}"
    );
    let admin_offered = browser
        .script(
            "return !document.getElementById('nav-admin').hidden",
            json!([]),
        )
        .await
        .unwrap();
    assert_eq!(admin_offered, false, "a township is offered the admin page");
    let overview = browser.text("#overview").await.unwrap();
    assert!(overview.contains("lanjiang"), "{overview}");
    assert!(
        !overview.contains("yunshan"),
        "another township on the page: {overview}"
    );
    browser.screenshot(&shot("overview")).await.unwrap();

    browser.goto(&format!("{origin}/#events")).await.unwrap();
    browser
        .wait_for("#live", WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let live = browser.text("#live").await.unwrap();
    assert!(!live.is_empty(), "the live stream is not connected");
    // a description a device could send, that must stay text
    let hostile = "<img src=x onerror=alert(1)>";
    let mut alarm = fire(7);
    alarm["description"] = json!(hostile);
    let pushed = Instant::now();
    let (status, body) = env.push("mall", "status", &alarm).await;
    assert_eq!(status, 202, "{body}");
    let id = body["events"][0].as_str().unwrap().to_string();
    let row = format!("tr.fire-alarm[data-id='{id}']");
    // the row, with the snapshot shown in it
    let shown = format!("{row} img.thumb");
    let deadline = pushed + Duration::from_secs(2);
    loop {
        let loaded = browser
            .script(
                "const i = document.querySelector(arguments[0]); \
                 return !!i && i.complete && i.naturalWidth > 0",
                json!([shown]),
            )
            .await
            .unwrap();
        if loaded == true {
            break;
        }
        if Instant::now() >= deadline {
            let html = browser
                .script(
                    "return document.getElementById('event-rows').innerHTML",
                    json!([]),
                )
                .await;
            let (_, e) = env
                .get(&format!("/api/v1/events/{id}"), Some(ADMIN_TOKEN))
                .await;
            panic!(
                "no row with its snapshot {:?} after the push: {html:?} {e}",
                pushed.elapsed()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    browser.screenshot(&shot("events")).await.unwrap();
    let title = browser
        .script(
            "return document.querySelector(arguments[0]).children[2].textContent",
            json!([row]),
        )
        .await
        .unwrap();
    assert!(
        title.as_str().unwrap().contains(hostile),
        "the description is not shown as text: {title}"
    );
    let imgs = browser
        .script(
            "return document.querySelectorAll('#event-rows img:not(.thumb)').length",
            json!([]),
        )
        .await
        .unwrap();
    assert_eq!(imgs, 0, "a description became markup");
    assert_eq!(browser.alert().await, None, "a script ran");

    // the closed loop through the page: the township signs and assigns, the brigade accepts
    // and judges, the township closes
    browser.click(&row).await.unwrap();
    browser.wait_for("#ev-evidence img", WAIT).await.unwrap();
    step(&browser, &env, &id, "#ev-actions button", "signed").await; // 签收
    browser.type_into("#act-to", "fire-brigade").await.unwrap();
    step(&browser, &env, &id, "#ev-actions button", "assigned").await; // 交办
    sign_in(&browser, &env, BRIGADE, "王队").await;
    browser
        .goto(&format!("{origin}/#event/{id}"))
        .await
        .unwrap();
    step(&browser, &env, &id, "#ev-actions button", "accepted").await; // 接收
    browser.wait_for("#act-verdict", WAIT).await.unwrap();
    browser
        .script(
            "document.getElementById('act-verdict').value = 'false_alarm'; return true",
            json!([]),
        )
        .await
        .unwrap();
    browser
        .type_into("#act-note", "烟雾来自厨房")
        .await
        .unwrap();
    step(
        &browser,
        &env,
        &id,
        "#ev-actions button:last-of-type",
        "handled",
    )
    .await; // 反馈
    browser.screenshot(&shot("event")).await.unwrap();
    sign_in(&browser, &env, &township_token("lanjiang"), "李值班").await;
    browser
        .goto(&format!("{origin}/#event/{id}"))
        .await
        .unwrap();
    let e = step(&browser, &env, &id, "#ev-actions button", "closed").await; // 办结
    let history: Vec<(&str, &str)> = e["case"]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["action"].as_str().unwrap(), h["by"].as_str().unwrap()))
        .collect();
    assert_eq!(
        history,
        [
            ("sign", "李值班"),
            ("assign", "李值班"),
            ("accept", "王队"),
            ("feedback", "王队"),
            ("close", "李值班")
        ],
        "{e}"
    );
    assert_eq!(browser.alert().await, None, "a script ran");

    // every request the page made went to the gateway
    let urls = browser
        .script(
            "return performance.getEntriesByType('resource').map(r => r.name)",
            json!([]),
        )
        .await
        .unwrap();
    for u in urls.as_array().unwrap() {
        assert!(
            u.as_str().unwrap().starts_with(&origin),
            "a request outside: {u}"
        );
    }
}

const BRIGADE: &str = "brigade-console-token-4411";

/// The fire brigade as a department, with a token of its own.
fn brigade() -> String {
    format!(
        "\n[[api.tokens]]\nname = \"brigade\"\ntoken = \"{BRIGADE}\"\nscope = \"department:fire-brigade\"\n\
         \n[[departments]]\ncode = \"fire-brigade\"\nname = \"消防救援大队\"\n"
    )
}

/// Signs out if signed in, then in with `token` as `name`.
async fn sign_in(browser: &Browser, env: &Env, token: &str, name: &str) {
    browser.goto(&env.gw.url("/")).await.unwrap();
    browser
        .script(
            "sessionStorage.clear(); location.hash = ''; location.reload(); return true",
            json!([]),
        )
        .await
        .unwrap();
    browser.type_into("#token", token).await.unwrap();
    browser.type_into("#name", name).await.unwrap();
    browser.click("#signin button[type=submit]").await.unwrap();
    browser.wait_for("#nav", WAIT).await.unwrap();
}

/// Clicks the step button `css` on the event page and waits until the API shows `state`.
async fn step(browser: &Browser, env: &Env, id: &str, css: &str, state: &str) -> Value {
    browser
        .wait_for(css, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e} (for {state})"));
    browser.click(css).await.unwrap();
    wait_state(env, id, state).await
}

async fn wait_state(env: &Env, id: &str, state: &str) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, e) = env
            .get(&format!("/api/v1/events/{id}"), Some(ADMIN_TOKEN))
            .await;
        if e["state"] == state {
            return e;
        }
        assert!(Instant::now() < deadline, "never {state}: {e}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The camera wall shows each camera with its picture and a black one as failing; the report
/// page's XLSX download is a workbook openpyxl reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_camera_wall_shows_a_black_camera_failing_and_the_report_downloads() {
    use crate::cameras::{camera_toml, wait_camera, FAST_HEALTH};
    use gateway_sim::camsim::{CamSim, CamSimConfig, Fault};
    let sim = CamSim::start(CamSimConfig {
        faults: [(2, Fault::Black)].into_iter().collect(),
        ..CamSimConfig::local(2)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let mut cams = format!("{FAST_HEALTH}[vqd]\ninterval_s = 1\nbaseline_samples = 2\n\n");
    for n in 1..=2 {
        cams += &camera_toml(&format!("cam-{n}"), "lanjiang", &sim.url(n), None);
    }
    // and a GB/T 28181 NVR's channel beside them
    use crate::gb28181::{section, NVR, PASSWORD};
    let nvr_toml = format!("[[gb28181.devices]]\nid = \"{NVR}\"\ntownship = \"lanjiang\"\n");
    let env = Env::start(&["lanjiang"], |c| {
        c.extra += &cams;
        c.extra += &section(&nvr_toml);
    })
    .await;
    let mut nvr =
        gateway_sim::gb28181sim::SimConfig::new(NVR, PASSWORD, crate::gb28181::udp(&env), 1);
    nvr.keepalive = Duration::from_secs(1);
    let channel = nvr.channels[0].id.clone();
    let nvr = gateway_sim::gb28181sim::SimDevice::start(nvr)
        .await
        .unwrap();
    assert_eq!(nvr.register().await, 200);
    wait_camera(&env, "cam-2", "black", |c| {
        c["picture"]["failing"].to_string().contains("black")
    })
    .await;
    crate::gb28181::wait_device(&env, NVR, |d| d["channels"][0]["state"] == "online").await;
    let browser = Browser::start().await.unwrap_or_else(|e| panic!("{e}"));
    sign_in(&browser, &env, ADMIN_TOKEN, "运维").await;
    browser.wait_for("#townships tr", WAIT).await.unwrap();
    browser.goto(&env.gw.url("/#admin")).await.unwrap();
    browser.wait_for("#outbox-stats dt", WAIT).await.unwrap();
    browser.screenshot(&shot("admin")).await.unwrap();
    browser.goto(&env.gw.url("/#cameras")).await.unwrap();
    let black = browser
        .wait_for("[data-camera='cam-2'] .failing", WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!black.is_empty());
    assert!(browser
        .text("[data-camera='cam-2'] .failing")
        .await
        .unwrap()
        .contains("黑屏"));
    assert!(browser
        .find("[data-camera='cam-1'] .failing")
        .await
        .is_none());
    // the moving camera's thumbnail arrives (a JPEG through the API, shown as a blob), and
    // the GB/T 28181 channel's (pulled by INVITE)
    for camera in ["cam-1", channel.as_str()] {
        let deadline = Instant::now() + WAIT;
        loop {
            let loaded = browser
                .script(
                    "const i = document.querySelector(\"[data-camera='\" + arguments[0] + \"'] img\"); \
                     return !!i && i.complete && i.naturalWidth > 0",
                    json!([camera]),
                )
                .await
                .unwrap();
            if loaded == true {
                break;
            }
            assert!(Instant::now() < deadline, "no thumbnail for {camera}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    browser.screenshot(&shot("cameras")).await.unwrap();

    // a camera's page: its stream's figures and 24 hourly availability bars
    browser.click("[data-camera='cam-1']").await.unwrap();
    browser.wait_for("#cam-svg", WAIT).await.unwrap();
    let bars = browser
        .script(
            "return document.querySelectorAll('#cam-svg rect').length",
            json!([]),
        )
        .await
        .unwrap();
    assert_eq!(bars, 24);
    browser.click("#span-week").await.unwrap();
    let deadline = Instant::now() + WAIT;
    while browser
        .script(
            "return document.querySelectorAll('#cam-svg rect').length",
            json!([]),
        )
        .await
        .unwrap()
        != 7
    {
        assert!(Instant::now() < deadline, "no 7-day view");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let facts = browser.text("#cam-facts").await.unwrap();
    assert!(facts.contains("avc1"), "{facts}");
    assert!(
        facts.contains("画面基准") && facts.contains("已学习"),
        "{facts}"
    );
    browser.screenshot(&shot("camera")).await.unwrap();
    // the view was turned on purpose: ops have its baseline learned again
    browser.click("#cam-relearn").await.unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        let facts = browser.text("#cam-facts").await.unwrap();
        if facts.contains("学习中") {
            break;
        }
        assert!(Instant::now() < deadline, "never learning again: {facts}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let error = browser
        .script(
            "return document.getElementById('cam-error').textContent",
            json!([]),
        )
        .await
        .unwrap();
    assert_eq!(error, "", "relearning answered an error");

    // the units page: each township's networking rate, and its units
    browser.goto(&env.gw.url("/#units")).await.unwrap();
    browser.wait_for("#unit-rows tr", WAIT).await.unwrap();
    browser.wait_for("#unit-rates tr", WAIT).await.unwrap();
    let rates = browser.text("#unit-rates").await.unwrap();
    assert!(rates.contains("lanjiang") && rates.contains('%'), "{rates}");
    browser.screenshot(&shot("units")).await.unwrap();

    // the report page: its XLSX, fetched as the page does, read back by openpyxl; the
    // weekly reports are offered to an admin
    browser.goto(&env.gw.url("/#reports")).await.unwrap();
    browser.wait_for("#rep-rows tr", WAIT).await.unwrap();
    let weekly = browser
        .script(
            "return !document.getElementById('weekly-box').hidden",
            json!([]),
        )
        .await
        .unwrap();
    assert_eq!(weekly, true, "no weekly reports section for an admin");
    browser.screenshot(&shot("reports")).await.unwrap();
    let xlsx = browser
        .script_bytes(
            "const r = await fetch('/api/v1/reports/assessment?format=xlsx', \
               {headers: {Authorization: 'Bearer ' + sessionStorage.getItem('token')}}); \
             const b = new Uint8Array(await r.arrayBuffer()); \
             let s = ''; for (const x of b) s += String.fromCharCode(x); return btoa(s);",
        )
        .await
        .unwrap();
    let file = env.dir.path().join("console.xlsx");
    std::fs::write(&file, &xlsx).unwrap();
    // Debian's Python, which has openpyxl (python3-openpyxl)
    let out = std::process::Command::new(crate::assessment::PYTHON)
        .args([
            "-c",
            "import sys, openpyxl; wb = openpyxl.load_workbook(sys.argv[1]); print(wb.sheetnames)",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert_ran("openpyxl reading the console's XLSX", &out);
}
