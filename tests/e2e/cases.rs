//! The closed loop over HTTP with the real gateway and a real receiver: a dispatch rule, a
//! department that accepts and judges, township sign-off and closing, reopen; the webhook and
//! the history of every step; 409s for invalid steps and a second signer; scopes that hold.

use crate::common::*;
use gateway_sim::harness::{township_secret, TestConfig};
use serde_json::{json, Value};

const BRIGADE: &str = "brigade-token-0123456789";
const VIDEO_OPS: &str = "video-ops-token-0123456789";

/// Two departments with webhooks: the fire brigade serves both townships and takes lanjiang's
/// fire alarms by rule; video ops serves lanjiang only.
pub(crate) fn departments(c: &mut TestConfig) {
    let base = c.townships[0].1.clone().unwrap();
    let base = base.rsplit_once('/').unwrap().0.to_string();
    c.extra += &format!(
        "\n[[api.tokens]]\nname = \"brigade\"\ntoken = \"{BRIGADE}\"\nscope = \"department:fire-brigade\"\n\
         \n[[api.tokens]]\nname = \"video-ops\"\ntoken = \"{VIDEO_OPS}\"\nscope = \"department:video-ops\"\n\
         \n[[departments]]\ncode = \"fire-brigade\"\nname = \"消防救援大队\"\n\
         webhook = {{ url = \"{base}/fire-brigade\", secret = \"{}\" }}\n\
         \n[[departments]]\ncode = \"video-ops\"\nname = \"视频运维\"\ntownships = [\"lanjiang\"]\n\
         webhook = {{ url = \"{base}/video-ops\", secret = \"{}\" }}\n\
         \n[[dispatch]]\nkinds = [\"fire.alarm\"]\ntownships = [\"lanjiang\"]\nto = \"fire-brigade\"\n",
        township_secret("fire-brigade"),
        township_secret("video-ops"),
    );
}

pub(crate) async fn alarm(env: &Env, unit: &str, addr: u32) -> String {
    let (s, v) = env.push(unit, "status", &fire(addr)).await;
    assert_eq!(s, 202, "{v}");
    v["events"][0].as_str().unwrap().to_string()
}

/// The deliveries to `to` that refer to `id`, as (X-Gateway-Event, step action).
fn notices(env: &Env, to: &str, id: &str) -> Vec<(String, String)> {
    env.receiver
        .deliveries()
        .iter()
        .filter(|d| d.township == to)
        .filter_map(|d| {
            let b = d.body.as_ref()?;
            (b["refers_to"] == id).then(|| {
                let action = b["case"]["step"]["action"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                (d.event_header.clone(), action)
            })
        })
        .collect()
}

async fn wait_notices(env: &Env, to: &str, id: &str, want: &[(&str, &str)]) {
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    env.receiver
        .wait_for(WAIT, &format!("notices to {to}"), |_| {
            notices(env, to, id) == want
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{:?}", notices(env, to, id)));
}

/// A step and what it must answer: (action, token, body, status, JSON pointer, value there).
type Step<'a> = (&'a str, &'a str, Value, u16, &'a str, Value);

async fn run_steps(env: &Env, id: &str, steps: Vec<Step<'_>>) -> Value {
    let mut last = Value::Null;
    for (action, token, body, status, pointer, want) in steps {
        let (s, v) = env
            .post(&format!("/api/v1/events/{id}/{action}"), Some(token), &body)
            .await;
        assert_eq!(s, status, "{action} {body}: {v}");
        assert_eq!(v.pointer(pointer), Some(&want), "{action} {body}: {v}");
        last = v;
    }
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fire_alarm_goes_round_the_closed_loop() {
    let env = Env::start(&["lanjiang", "yunshan"], departments).await;
    let id = alarm(&env, "lanjiang-u1", 1).await;
    assigned_by_rule(&env, &id).await;
    visible_to_its_township_and_department_only(&env, &id).await;
    let v = worked_by_department_and_township(&env, &id).await;

    // the history holds every step with its token; the township heard of each one
    let history: Vec<(Value, Value)> = v["case"]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["action"].clone(), h["token"].clone()))
        .collect();
    let expected = [
        ("assign", Value::Null),
        ("accept", json!("brigade")),
        ("sign", json!("lanjiang-center")),
        ("feedback", json!("brigade")),
        ("close", json!("lanjiang-center")),
        ("reopen", json!("lanjiang-center")),
    ];
    let expected: Vec<(Value, Value)> = expected.into_iter().map(|(a, t)| (json!(a), t)).collect();
    assert_eq!(history, expected);
    let updates = ["accept", "sign", "feedback", "close", "reopen"];
    let want: Vec<(&str, &str)> = updates.iter().map(|a| ("event.updated", *a)).collect();
    wait_notices(&env, "lanjiang", &id, &want).await;
    lists_by_scope_and_state(&env, &id).await;
}

/// The rule assigned it at commit, and the brigade got it with the alarm's detail.
async fn assigned_by_rule(env: &Env, id: &str) {
    let v = env
        .wait_event(id, "assigned by rule", |v| v["state"] == "assigned")
        .await;
    assert_eq!(v["case"]["assigned_to"], "fire-brigade");
    assert_eq!(v["case"]["history"][0]["by"], "dispatch");
    wait_notices(env, "fire-brigade", id, &[("event.assigned", "assign")]).await;
    let deliveries = env.receiver.deliveries();
    let body = deliveries
        .iter()
        .find(|d| d.township == "fire-brigade")
        .and_then(|d| d.body.as_ref())
        .unwrap();
    assert_eq!(body["severity"], "critical");
    assert_eq!(body["fire"]["component_addr"], 1);
}

/// The township and the brigade see it; video ops and another township get 404.
async fn visible_to_its_township_and_department_only(env: &Env, id: &str) {
    let path = format!("/api/v1/events/{id}");
    let yunshan = township_token("yunshan");
    for (token, status) in [(BRIGADE, 200), (VIDEO_OPS, 404), (yunshan.as_str(), 404)] {
        assert_eq!(env.get(&path, Some(token)).await.0, status, "{token}");
    }
    let (s, _) = env
        .post(
            &format!("{path}/accept"),
            Some(VIDEO_OPS),
            &json!({"by": "赵"}),
        )
        .await;
    assert_eq!(
        s, 404,
        "a department cannot act on what is not assigned to it"
    );
}

/// The department accepts and judges; the township signs (the first signer wins), closes and
/// reopens; every step out of turn is refused with the reason. Returns the last answer.
async fn worked_by_department_and_township(env: &Env, id: &str) -> Value {
    let lj = township_token("lanjiang");
    let lj = lj.as_str();
    let by = |who: &str| json!({ "by": who });
    let steps: Vec<Step> = vec![
        (
            "feedback",
            BRIGADE,
            json!({"by": "李队", "verdict": "false_alarm"}),
            403,
            "/error/code",
            json!("forbidden"),
        ),
        (
            "accept",
            BRIGADE,
            by("李队"),
            200,
            "/state",
            json!("accepted"),
        ),
        ("sign", lj, by("王"), 200, "/signed/by", json!("王")),
        (
            "sign",
            ADMIN_TOKEN,
            by("李"),
            409,
            "/error/code",
            json!("already_signed"),
        ),
        ("sign", lj, by("王"), 200, "/state", json!("accepted")),
        (
            "feedback",
            BRIGADE,
            json!({"by": "李队", "verdict": "repaired"}),
            400,
            "/error/code",
            json!("invalid_verdict"),
        ),
        (
            "close",
            lj,
            by("王"),
            409,
            "/error/state",
            json!("accepted"),
        ),
        (
            "feedback",
            BRIGADE,
            json!({"by": "李队", "verdict": "false_alarm", "note": "烟感误报"}),
            200,
            "/case/verdict",
            json!("false_alarm"),
        ),
        (
            "close",
            BRIGADE,
            by("李队"),
            403,
            "/error/code",
            json!("forbidden"),
        ),
        ("close", lj, by("王"), 200, "/state", json!("closed")),
        (
            "reopen",
            lj,
            by("王"),
            400,
            "/error/code",
            json!("invalid_body"),
        ),
        (
            "reopen",
            lj,
            json!({"by": "王", "reason": "复查发现有烟"}),
            200,
            "/state",
            json!("assigned"),
        ),
    ];
    let last = run_steps(env, id, steps).await;
    let (_, v) = env
        .post(
            &format!("/api/v1/events/{id}/sign"),
            Some(ADMIN_TOKEN),
            &by("李"),
        )
        .await;
    assert!(
        v["error"]["message"].as_str().unwrap().contains("王"),
        "names who signed: {v}"
    );
    last
}

/// The brigade's list: what is assigned to it and its own notices, nothing of yunshan; a
/// township lists by state.
async fn lists_by_scope_and_state(env: &Env, id: &str) {
    let lj = township_token("lanjiang");
    alarm(env, "yunshan-u1", 2).await;
    let field = |list: &Value, key: &str| -> Vec<String> {
        list["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e[key].as_str().unwrap().to_string())
            .collect()
    };
    let (_, list) = env.get("/api/v1/events", Some(BRIGADE)).await;
    assert_eq!(
        field(&list, "kind"),
        ["fire.alarm", "event.assigned"],
        "{list}"
    );
    let (_, list) = env.get("/api/v1/events?state=assigned", Some(&lj)).await;
    assert_eq!(field(&list, "id"), [id]);
    let (s, v) = env.get("/api/v1/events?state=pending", Some(&lj)).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("unknown_state"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_township_assigns_by_hand_within_what_departments_serve() {
    let env = Env::start(&["lanjiang", "yunshan"], departments).await;
    let ys = township_token("yunshan");
    let ys = ys.as_str();
    let id = alarm(&env, "yunshan-u1", 7).await;
    let v = env.wait_event(&id, "open", |v| v["state"] == "open").await;
    assert!(v["case"]["assigned_to"].is_null(), "no rule for yunshan");
    let to = |d: &str| json!({"by": "周", "to": d});
    let steps: Vec<Step> = vec![
        // before signing: 409 with the current stage
        (
            "assign",
            ys,
            to("fire-brigade"),
            409,
            "/error/state",
            json!("open"),
        ),
        (
            "feedback",
            ys,
            json!({"by": "周", "result": "x"}),
            409,
            "/error/code",
            json!("not_signed"),
        ),
        (
            "close",
            ys,
            json!({"by": "周"}),
            409,
            "/error/code",
            json!("invalid_transition"),
        ),
        (
            "sign",
            ys,
            json!({"by": "周"}),
            200,
            "/state",
            json!("signed"),
        ),
        // video ops serves lanjiang only
        (
            "assign",
            ys,
            to("video-ops"),
            400,
            "/error/code",
            json!("unknown_department"),
        ),
        (
            "assign",
            ys,
            to("fire-brigade"),
            200,
            "/state",
            json!("assigned"),
        ),
        // the same assignment again is a no-op
        (
            "assign",
            ys,
            to("fire-brigade"),
            200,
            "/state",
            json!("assigned"),
        ),
        // wave-1 feedback (a note, no verdict) is a progress note: the stage stays
        (
            "feedback",
            ys,
            json!({"by": "周", "result": "已联系单位"}),
            200,
            "/feedback/0/result",
            json!("已联系单位"),
        ),
    ];
    let v = run_steps(&env, &id, steps).await;
    assert_eq!(v["state"], "assigned");
    wait_notices(&env, "fire-brigade", &id, &[("event.assigned", "assign")]).await;
    let sign_assign = [("event.updated", "sign"), ("event.updated", "assign")];
    wait_notices(
        &env,
        "yunshan",
        &id,
        &[
            sign_assign[0],
            sign_assign[1],
            ("event.updated", "feedback"),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_closes_its_ticket_when_it_ends() {
    let env = Env::start(&["lanjiang"], |c| {
        c.extra += "\n[health]\nunit_offline_after_s = 1\n"
    })
    .await;
    env.push("lanjiang-u1", "heartbeat", &json!({})).await;
    let offline = env
        .receiver
        .wait_for(WAIT, "unit.offline", |d| {
            d.iter().any(|d| d.event_header == "unit.offline")
        })
        .await
        .unwrap()
        .into_iter()
        .find(|d| d.event_header == "unit.offline")
        .unwrap();
    let offline_id = offline.idempotency_key;
    let v = env
        .wait_event(&offline_id, "open ticket", |v| v["state"] == "open")
        .await;
    assert_eq!(v["case"]["pair"], "unit-offline/lanjiang-u1");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    env.push("lanjiang-u1", "heartbeat", &json!({})).await;
    let v = env
        .wait_event(&offline_id, "closed by unit.online", |v| {
            v["state"] == "closed"
        })
        .await;
    let case = &v["case"];
    assert_eq!(case["verdict"], "recovered");
    assert!(case["outage_s"].as_i64().unwrap() >= 1, "{v}");
    let online_id = case["resolved_by"].as_str().unwrap().to_string();
    let online = env
        .wait_event(&online_id, "unit.online closed once delivered", |v| {
            v["state"] == "closed"
        })
        .await;
    assert_eq!(online["kind"], "unit.online");
    assert_eq!(online["resolves"], json!([offline_id]));
    // a recovered ticket can be reopened by hand, and it is not a fire alarm: no verdict needed
    let (s, v) = env
        .post(
            &format!("/api/v1/events/{offline_id}/reopen"),
            Some(ADMIN_TOKEN),
            &json!({"by": "运维", "reason": "again"}),
        )
        .await;
    assert_eq!((s, v["state"].as_str()), (200, Some("open")), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn where_and_whom_to_call_travel_with_the_alarm_and_nowhere_else() {
    let env = Env::start(&["lanjiang", "yunshan"], |c| {
        departments(c);
        c.unit_extra.push((
            "lanjiang-u1".into(),
            "address = \"兰溪市兰江街道振兴路1号\"\nlocation = { lat = 29.2101, lon = 119.4605 }\n\
             contacts = { duty_phone = \"0579-88123456\", manager = \"陈经理\", manager_phone = \"13800001234\" }"
                .into(),
        ));
    })
    .await;
    let id = alarm(&env, "lanjiang-u1", 9).await;
    wait_notices(&env, "fire-brigade", &id, &[("event.assigned", "assign")]).await;
    let deliveries = env
        .receiver
        .wait_for(WAIT, "the alarm at its township", |d| {
            d.iter()
                .any(|d| d.township == "lanjiang" && d.event_header == "fire.alarm")
        })
        .await
        .unwrap();
    let body = |to: &str, kind: &str| {
        deliveries
            .iter()
            .find(|d| d.township == to && d.event_header == kind)
            .and_then(|d| d.body.clone())
            .unwrap()
    };
    for b in [
        body("lanjiang", "fire.alarm"),
        body("fire-brigade", "event.assigned"),
    ] {
        assert_eq!(
            b["location"],
            json!({"address": "兰溪市兰江街道振兴路1号", "lat": 29.2101, "lon": 119.4605, "datum": "gcj02"}),
            "{b}"
        );
        assert_eq!(b["contacts"]["duty_phone"], "0579-88123456", "{b}");
        assert_eq!(b["contacts"]["manager"], "陈经理");
    }
    let (s, u) = env
        .get(
            "/api/v1/units/lanjiang-u1",
            Some(&township_token("lanjiang")),
        )
        .await;
    assert_eq!(
        (s, &u["contacts"]["manager_phone"]),
        (200, &json!("13800001234"))
    );
    assert_eq!(u["location"]["datum"], "gcj02");
    let (s, _) = env
        .get(
            "/api/v1/units/lanjiang-u1",
            Some(&township_token("yunshan")),
        )
        .await;
    assert_eq!(s, 404);
    let (s, _) = env.get("/api/v1/units/lanjiang-u1", Some(BRIGADE)).await;
    assert_eq!(
        s, 403,
        "a department reads contacts only on what is assigned to it"
    );
    let leaked = |text: &str| text.contains("13800001234") || text.contains("88123456");
    assert!(!leaked(&env.metrics().await), "contacts in metrics");
    assert!(!leaked(&env.gw.log()), "contacts in the log");
}
