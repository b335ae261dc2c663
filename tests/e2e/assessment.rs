//! The assessment (考核) of a scripted stretch of work, checked against figures the test
//! computes itself from the events API and the units API — not by calling the gateway's code —
//! and the XLSX read back with a real reader (openpyxl).

use crate::cases::{alarm, departments};
use crate::common::*;
use chrono::{DateTime, Utc};
use gateway_sim::harness::require;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

pub(crate) const PYTHON: &str = "/usr/bin/python3";

fn at(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    // nearest rank, as docs/assessment.md defines it
    (!v.is_empty()).then(|| v[(v.len() as f64 * 0.5).ceil() as usize - 1])
}

/// The figures of one township, computed from the events API.
#[derive(Debug, Default)]
struct Expected {
    by_kind: BTreeMap<String, u64>,
    sign_cases: u64,
    signed: u64,
    sign_on_time: u64,
    sign_overdue: u64,
    sign_times: Vec<f64>,
    handle_cases: u64,
    handled: u64,
    handle_on_time: u64,
    alarms: u64,
    by_verdict: BTreeMap<String, u64>,
}

fn expect(events: &[Value]) -> BTreeMap<String, Expected> {
    let mut out: BTreeMap<String, Expected> = BTreeMap::new();
    for e in events.iter().filter(|e| e["route"].is_null()) {
        let x = out
            .entry(e["township"]["code"].as_str().unwrap().into())
            .or_default();
        *x.by_kind
            .entry(e["kind"].as_str().unwrap().into())
            .or_default() += 1;
        let committed = at(&e["delivery"]["committed_at"]);
        if let Some(due) = e["due"]["sign"].as_str() {
            let due: DateTime<Utc> = due.parse().unwrap();
            x.sign_cases += 1;
            let reminded = e["case"]["sla"]["reminded"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            x.sign_overdue += u64::from(reminded.iter().any(|r| r[0] == "sign"));
            if !e["signed"].is_null() {
                let signed = at(&e["signed"]["at"]);
                x.signed += 1;
                x.sign_on_time += u64::from(signed <= due);
                x.sign_times
                    .push((signed - committed).num_milliseconds() as f64 / 1000.0);
            }
        }
        if let Some(due) = e["due"]["handle"].as_str() {
            let due: DateTime<Utc> = due.parse().unwrap();
            x.handle_cases += 1;
            if let Some(h) = e["case"]["handled_at"].as_str() {
                x.handled += 1;
                x.handle_on_time += u64::from(h.parse::<DateTime<Utc>>().unwrap() <= due);
            }
        }
        if e["kind"] == "fire.alarm" {
            x.alarms += 1;
            let v = e["case"]["verdict"].as_str().unwrap_or("unjudged");
            *x.by_verdict.entry(v.into()).or_default() += 1;
        }
    }
    out
}

fn close(a: Option<f64>, b: Option<f64>, tol: f64) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() <= tol,
        (None, None) => true,
        _ => false,
    }
}

async fn step(env: &Env, id: &str, action: &str, token: &str, body: Value) {
    let (s, v) = env
        .post(&format!("/api/v1/events/{id}/{action}"), Some(token), &body)
        .await;
    assert_eq!(s, 200, "{action} {id}: {v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_assessment_matches_figures_computed_from_the_api() {
    require(PYTHON, "python3-openpyxl").unwrap();
    let mut env = Env::start(&["lanjiang", "yunshan"], |c| {
        departments(c);
        c.extra += "\n[[sla]]\nkinds = [\"fire.alarm\"]\nsign_within_s = 2\nhandle_within_s = 600\nremind_every_s = 60\n";
    })
    .await;
    let from = Utc::now() - chrono::Duration::seconds(1);
    script(&env).await;
    // the unit log follows the liveness snapshot, written every 5 s
    tokio::time::sleep(Duration::from_secs(6)).await;
    let to = Utc::now();
    let window = format!("from={}&to={}", from.to_rfc3339(), to.to_rfc3339()).replace('+', "%2B");

    let (s, report) = env
        .get(
            &format!("/api/v1/reports/assessment?{window}"),
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(s, 200, "{report}");
    let (_, events) = env
        .get("/api/v1/events?limit=1000", Some(ADMIN_TOKEN))
        .await;
    let expected = expect(events["events"].as_array().unwrap());
    let (_, units) = env.get("/api/v1/units", Some(ADMIN_TOKEN)).await;
    check_townships(
        &report,
        &expected,
        units["units"].as_array().unwrap(),
        from,
        to,
    );
    let brigade = &report["departments"][0];
    assert_eq!(
        (&brigade["code"], &brigade["assigned"], &brigade["handled"]),
        (&json!("fire-brigade"), &json!(3), &json!(1)),
        "{brigade}"
    );
    let top = &report["false_alarm_units"];
    assert_eq!(top.as_array().unwrap().len(), 2, "{top}");
    assert_eq!(top[0]["unit"], "lanjiang-u1");
    check_xlsx(&env, &window, &report).await;
    check_csv_html(&env, &window).await;
    check_township_view(&env, &window, &report).await;

    // the command line asks the running gateway's API (the outbox file is in use) ...
    let csv = env.dir.path().join("report.csv");
    let (code, _, err) = env.cli(&[
        "report",
        "assessment",
        "--format",
        "csv",
        "--out",
        csv.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(std::fs::read(&csv)
        .unwrap()
        .starts_with(&[0xEF, 0xBB, 0xBF]));
    // ... and, with the gateway stopped, reads the file itself: the same figures
    assert!(env.gw.terminate().await.unwrap().success());
    let out = env.dir.path().join("report.json");
    let (from, to) = (from.to_rfc3339(), to.to_rfc3339());
    let (code, _, err) = env.cli(&[
        "report",
        "assessment",
        "--from",
        &from,
        "--to",
        &to,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let offline: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let key = |t: &Value| {
        (
            t["code"].clone(),
            t["rank"].clone(),
            t["score"].clone(),
            t["events"]["sign"].clone(),
        )
    };
    let keys = |r: &Value| {
        r["townships"]
            .as_array()
            .unwrap()
            .iter()
            .map(key)
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(&offline), keys(&report));
}

/// Lanjiang: two alarms signed at once (one judged false by the brigade, one true and closed),
/// one signed late after its reminder; yunshan: one signed and judged false. Three units heard.
async fn script(env: &Env) {
    let (lj, ys) = (township_token("lanjiang"), township_token("yunshan"));
    let brigade = "brigade-token-0123456789";
    for u in ["lanjiang-u1", "lanjiang-u2", "yunshan-u1"] {
        env.push(u, "heartbeat", &json!({})).await;
    }
    let a1 = alarm(env, "lanjiang-u1", 1).await;
    let a2 = alarm(env, "lanjiang-u1", 2).await;
    let a3 = alarm(env, "lanjiang-u2", 3).await;
    let b1 = alarm(env, "yunshan-u1", 4).await;
    let steps = [
        (&a1, "sign", lj.as_str(), json!({"by": "王"})),
        (&a1, "accept", brigade, json!({"by": "李队"})),
        (
            &a1,
            "feedback",
            brigade,
            json!({"by": "李队", "verdict": "false_alarm"}),
        ),
        (&a2, "sign", lj.as_str(), json!({"by": "王"})),
        (
            &a2,
            "feedback",
            lj.as_str(),
            json!({"by": "王", "verdict": "true_alarm", "note": "出警"}),
        ),
        (&a2, "close", lj.as_str(), json!({"by": "王"})),
        (&b1, "sign", ys.as_str(), json!({"by": "周"})),
        (
            &b1,
            "feedback",
            ys.as_str(),
            json!({"by": "周", "verdict": "false_alarm"}),
        ),
    ];
    for (id, action, token, body) in steps {
        step(env, id, action, token, body).await;
    }
    env.wait_event(&a3, "a3 reminded", |v| {
        v["due"]["overdue"] == json!(["sign"])
    })
    .await;
    step(env, &a3, "sign", &lj, json!({"by": "张"})).await;
}

/// A township token sees its own row, with its rank among all, and nothing of another's.
async fn check_township_view(env: &Env, window: &str, report: &Value) {
    let ys = township_token("yunshan");
    let (s, v) = env
        .get(&format!("/api/v1/reports/assessment?{window}"), Some(&ys))
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        v["townships"].as_array().unwrap().len(),
        1,
        "a township sees its own row"
    );
    let rank = |r: &Value| {
        r["townships"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["code"] == "yunshan")
            .unwrap()["rank"]
            .clone()
    };
    assert_eq!(rank(&v), rank(report));
    let other = format!("/api/v1/reports/assessment?{window}&township=lanjiang");
    assert_eq!(env.get(&other, Some(&ys)).await.0, 403);
}

/// The score with the default weights over the figures a township has (no cameras here).
fn expected_score(x: &Expected, networking_rate: f64, false_rate: Option<f64>) -> f64 {
    let share = |done: u64, cases: u64| (cases > 0).then(|| done as f64 / cases as f64);
    let parts = [
        (20.0, Some(networking_rate)),
        (15.0, share(x.sign_on_time, x.sign_cases)),
        (15.0, share(x.handle_on_time, x.handle_cases)),
        (10.0, false_rate.map(|r| 1.0 - r)),
    ];
    let (sum, w) = parts
        .iter()
        .filter_map(|(w, v)| v.map(|v| (w * v, *w)))
        .fold((0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1));
    100.0 * sum / w
}

fn check_townships(
    report: &Value,
    expected: &BTreeMap<String, Expected>,
    units: &[Value],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) {
    let window_s = (to - from).num_milliseconds() as f64 / 1000.0;
    let mut scores = Vec::new();
    for t in report["townships"].as_array().unwrap() {
        let code = t["code"].as_str().unwrap();
        let x = &expected[code];
        let e = &t["events"];
        let by_kind: BTreeMap<String, u64> = serde_json::from_value(e["by_kind"].clone()).unwrap();
        assert_eq!(by_kind, x.by_kind, "{code} by kind");
        let s = &e["sign"];
        assert_eq!(
            (
                s["cases"].as_u64(),
                s["done"].as_u64(),
                s["on_time"].as_u64(),
                s["overdue"].as_u64()
            ),
            (
                Some(x.sign_cases),
                Some(x.signed),
                Some(x.sign_on_time),
                Some(x.sign_overdue)
            ),
            "{code} sign: {s}"
        );
        assert!(
            close(s["median_s"].as_f64(), median(x.sign_times.clone()), 0.002),
            "{code} median: {s} vs {:?}",
            x.sign_times
        );
        let h = &e["handle"];
        assert_eq!(
            (
                h["cases"].as_u64(),
                h["done"].as_u64(),
                h["on_time"].as_u64()
            ),
            (
                Some(x.handle_cases),
                Some(x.handled),
                Some(x.handle_on_time)
            ),
            "{code} handle"
        );
        let f = &e["fire_alarms"];
        let by_verdict: BTreeMap<String, u64> =
            serde_json::from_value(f["by_verdict"].clone()).unwrap();
        assert_eq!(
            (f["total"].as_u64(), &by_verdict),
            (Some(x.alarms), &x.by_verdict),
            "{code} alarms"
        );
        let judged = x.alarms - x.by_verdict.get("unjudged").copied().unwrap_or(0);
        let false_rate = (judged > 0)
            .then(|| *x.by_verdict.get("false_alarm").unwrap_or(&0) as f64 / judged as f64);
        assert!(
            close(f["false_alarm_rate"].as_f64(), false_rate, 1e-9),
            "{code}: {f}"
        );
        // 联网率: online time since each unit came online, over every registered unit's window
        let mine: Vec<&Value> = units.iter().filter(|u| u["township"] == code).collect();
        let online_s: f64 = mine
            .iter()
            .filter(|u| u["online"] == true)
            .map(|u| (to - at(&u["since"]).max(from)).num_milliseconds() as f64 / 1000.0)
            .sum();
        let rate = online_s / (window_s * mine.len() as f64);
        let got = t["units"]["networking_rate"].as_f64();
        assert!(
            close(got, Some(rate), 0.01),
            "{code} networking rate {got:?} vs {rate}"
        );
        let never = mine.iter().filter(|u| u["last_seen"].is_null()).count() as u64;
        assert_eq!(t["units"]["never_heard"].as_u64(), Some(never), "{code}");
        assert!(
            t["cameras"]["availability"].is_null(),
            "no cameras, no figure"
        );
        let score = expected_score(x, rate, false_rate);
        assert!(
            close(t["score"].as_f64(), Some(score), 0.6),
            "{code} score {} vs {score}",
            t["score"]
        );
        scores.push((
            code.to_string(),
            t["score"].as_f64().unwrap(),
            t["rank"].as_u64().unwrap(),
        ));
    }
    assert!(
        scores
            .windows(2)
            .all(|w| w[0].1 >= w[1].1 && w[0].2 <= w[1].2),
        "ranked by score: {scores:?}"
    );
}

async fn check_xlsx(env: &Env, window: &str, report: &Value) {
    let resp = env
        .client
        .get(
            env.gw
                .url(&format!("/api/v1/reports/assessment?{window}&format=xlsx")),
        )
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let path = env.dir.path().join("report.xlsx");
    std::fs::write(&path, resp.bytes().await.unwrap()).unwrap();
    let script = "import json,sys,openpyxl\nwb=openpyxl.load_workbook(sys.argv[1])\nws=wb['乡镇考核']\nrows=[[c.value for c in r] for r in ws.iter_rows()]\nprint(json.dumps({'sheets':wb.sheetnames,'rows':rows},ensure_ascii=False))";
    let out = std::process::Command::new(PYTHON)
        .args(["-c", script, path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        read["sheets"],
        json!(["乡镇考核", "派驻机构", "误报单位", "说明"])
    );
    let rows = read["rows"].as_array().unwrap();
    let header: Vec<&str> = rows[0]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let col = |label: &str| {
        header
            .iter()
            .position(|h| *h == label)
            .unwrap_or_else(|| panic!("no column {label}"))
    };
    let townships = report["townships"].as_array().unwrap();
    assert_eq!(
        rows.len(),
        townships.len() + 2,
        "a row per township and the city total"
    );
    for (row, t) in rows[1..].iter().zip(townships) {
        assert_eq!(row[col("代码")], t["code"]);
        assert_eq!(row[col("排名")].as_f64(), t["rank"].as_f64());
        assert!(close(row[col("得分")].as_f64(), t["score"].as_f64(), 1e-9));
        assert_eq!(
            row[col("火警")].as_f64(),
            t["events"]["fire_alarms"]["total"].as_f64()
        );
        assert!(close(
            row[col("及时签收率")].as_f64(),
            t["events"]["sign"]["on_time_share"].as_f64(),
            1e-9
        ));
        assert!(close(
            row[col("联网率")].as_f64(),
            t["units"]["networking_rate"].as_f64(),
            1e-9
        ));
    }
    assert_eq!(rows.last().unwrap()[col("代码")], "city");
}

/// The CSV (with a BOM, Chinese headers) and the printable HTML (no external resource).
async fn check_csv_html(env: &Env, window: &str) {
    let (csv, html) = (
        env.client
            .get(
                env.gw
                    .url(&format!("/api/v1/reports/assessment?{window}&format=csv")),
            )
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
        env.client
            .get(
                env.gw
                    .url(&format!("/api/v1/reports/assessment?{window}&format=html")),
            )
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    assert!(
        csv.starts_with(&[0xEF, 0xBB, 0xBF]),
        "UTF-8 with BOM for Excel"
    );
    assert!(String::from_utf8_lossy(&csv).contains("及时签收率"));
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("@page{size:A4"));
    assert!(
        !html.contains("src=") && !html.contains("href="),
        "no external resource"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_weekly_report_is_made_once_even_across_a_restart() {
    // today 00:00 (the gateway's +08:00) has passed: last week's report is due at start
    let today = (Utc::now() + chrono::Duration::hours(8))
        .format("%a")
        .to_string()
        .to_lowercase();
    let mut env = Env::start(&["lanjiang"], |c| {
        let base = c.townships[0].1.clone().unwrap();
        let base = base.rsplit_once('/').unwrap().0.to_string();
        c.extra += &format!(
            "\n[city]\nwebhook = {{ url = \"{base}/city\", secret = \"{}\" }}\n\
             \n[reports]\nweekly = {{ weekday = \"{today}\", at = \"00:00\" }}\n",
            gateway_sim::harness::township_secret("city")
        );
    })
    .await;
    // a fresh install reports no week from before it existed
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, list) = env.get("/api/v1/reports", Some(ADMIN_TOKEN)).await;
    assert_eq!(
        list["reports"],
        json!([]),
        "nothing before the gateway existed"
    );
    // the gateway has run for weeks: stop it, date its outbox back, start it again
    assert!(env.gw.terminate().await.unwrap().success());
    let store = alerts::outbox::Store::open(&env.dir.path().join("data/outbox.redb")).unwrap();
    store
        .set_created(Utc::now() - chrono::Duration::days(30))
        .unwrap();
    drop(store);
    env.restart().await;
    let weekly = |env: &Env| -> Vec<Value> {
        env.receiver
            .deliveries()
            .into_iter()
            .filter(|d| d.event_header == "report.weekly" && d.township == "city")
            .filter_map(|d| d.body)
            .collect()
    };
    env.receiver
        .wait_for(WAIT, "report.weekly", |_| !weekly(&env).is_empty())
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", env.gw.log()));
    let notice = weekly(&env).remove(0);
    let name = notice["report"]["name"].as_str().unwrap().to_string();
    assert!(name.contains("-W"), "{notice}");
    let (_, list) = env.get("/api/v1/reports", Some(ADMIN_TOKEN)).await;
    assert_eq!(list["reports"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["reports"][0]["name"], name.as_str());
    let xlsx_url = notice["report"]["files"]["xlsx"].as_str().unwrap();
    let resp = env
        .client
        .get(env.gw.url(xlsx_url))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.bytes().await.unwrap().starts_with(b"PK"),
        "a zip (xlsx) file"
    );
    for f in ["xlsx", "html", "json"] {
        assert!(
            env.dir
                .path()
                .join(format!("data/reports/weekly-{name}.{f}"))
                .exists(),
            "{f}"
        );
    }
    assert_eq!(
        env.get(xlsx_url, Some(&township_token("lanjiang"))).await.0,
        403
    );
    assert_eq!(
        env.get("/api/v1/reports/..%2Foutbox.redb", Some(ADMIN_TOKEN))
            .await
            .0,
        404
    );

    // a restart within the week makes no second report
    assert!(env.gw.terminate().await.unwrap().success());
    env.restart().await;
    let (_, list) = env.get("/api/v1/reports", Some(ADMIN_TOKEN)).await;
    assert_eq!(list["reports"].as_array().unwrap().len(), 1);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(weekly(&env).len(), 1, "announced once");
}
