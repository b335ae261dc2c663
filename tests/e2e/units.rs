//! Unit online status: any message → online, silence → `unit.offline`, back → `unit.online`,
//! the networking rate (联网率) in metrics and API, and a restart that adds no event of its own.

use crate::common::*;
use serde_json::json;

fn unit_events(env: &Env, unit: &str) -> Vec<String> {
    env.receiver
        .deliveries()
        .iter()
        .filter(|d| d.event_header.starts_with("unit."))
        .filter(|d| d.body.as_ref().is_some_and(|b| b["source"]["id"] == unit))
        .map(|d| d.event_header.clone())
        .collect()
}

async fn wait_unit_events(env: &Env, unit: &str, want: &[&str]) {
    env.receiver
        .wait_for(WAIT, &format!("{unit}: {want:?}"), |_| {
            unit_events(env, unit) == want
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{:?}\n{}", unit_events(env, unit), env.gw.log()));
}

fn delivered(env: &Env, kind: &str) -> serde_json::Value {
    let d = env
        .receiver
        .deliveries()
        .into_iter()
        .find(|d| d.event_header == kind);
    d.and_then(|d| d.body)
        .unwrap_or_else(|| panic!("no {kind} delivered"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_bring_units_online_silence_takes_them_offline_and_restarts_add_nothing() {
    let mut env = Env::start(&["lanjiang"], |c| {
        c.extra += "\n[health]\nunit_offline_after_s = 1\n"
    })
    .await;
    let ratio = "gateway_unit_online_ratio{township=\"lanjiang\"}";
    assert_eq!(
        metric(&env.metrics().await, ratio),
        0.0,
        "never heard: offline"
    );

    // first contact: online, without an event (a first deployment must not flood the centers)
    let (status, body) = env.push("lanjiang-u1", "heartbeat", &json!({})).await;
    assert_eq!(
        (status, &body["events"]),
        (202, &json!([])),
        "a heartbeat raises no event"
    );
    let m = env.metrics().await;
    assert_eq!(metric(&m, ratio), 0.5, "one of two units online");
    assert_eq!(
        metric(
            &m,
            "gateway_unit_up{township=\"lanjiang\",unit=\"lanjiang-u1\"}"
        ),
        1.0
    );
    let (_, u) = env
        .get(
            "/api/v1/units/lanjiang-u1",
            Some(&township_token("lanjiang")),
        )
        .await;
    assert_eq!(u["online"], true);
    let (_, t) = env.get("/api/v1/townships", Some(ADMIN_TOKEN)).await;
    let t = &t["townships"][0];
    assert_eq!(
        (t["units_online"].as_u64(), t["unit_online_ratio"].as_f64()),
        (Some(1), Some(0.5))
    );

    // silence past the timeout
    wait_unit_events(&env, "lanjiang-u1", &["unit.offline"]).await;
    assert_eq!(metric(&env.metrics().await, ratio), 0.0);
    let b = delivered(&env, "unit.offline");
    assert!(b["unit"]["last_seen"].is_string());
    assert_eq!(
        (&b["unit"]["online"], &b["source"]["protocol"]),
        (&json!(false), &json!("gateway"))
    );
    assert_eq!(b["township"]["code"], "lanjiang");

    // back: unit.online with the outage's length, committed with the message's own events
    let (_, body) = env.push("lanjiang-u1", "status", &fire(1)).await;
    assert_eq!(
        body["events"].as_array().unwrap().len(),
        1,
        "only the alarm is the message's"
    );
    wait_unit_events(&env, "lanjiang-u1", &["unit.offline", "unit.online"]).await;
    assert!(delivered(&env, "unit.online")["unit"]["offline_for_s"]
        .as_i64()
        .is_some());
    assert_eq!(metric(&env.metrics().await, ratio), 0.5);

    // a clean restart while online: the state is restored, no event of its own
    let (_, before) = env
        .get("/api/v1/units/lanjiang-u1", Some(ADMIN_TOKEN))
        .await;
    assert!(env.gw.terminate().await.unwrap().success());
    env.restart().await;
    let (_, after) = env
        .get("/api/v1/units/lanjiang-u1", Some(ADMIN_TOKEN))
        .await;
    assert_eq!(
        (after["online"].as_bool(), &after["since"]),
        (Some(true), &before["since"]),
        "restored"
    );
    // silent after the restart: offline once, a timeout later — and nothing came in between
    wait_unit_events(
        &env,
        "lanjiang-u1",
        &["unit.offline", "unit.online", "unit.offline"],
    )
    .await;
    assert_eq!(
        unit_events(&env, "lanjiang-u2"),
        Vec::<String>::new(),
        "never heard: no event"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linkage_feedback_carries_its_response_time_and_missing_feedback_is_counted() {
    let env = Env::start(&["lanjiang"], |c| {
        c.extra += "\n[linkage]\nfeedback_window_s = 1\n"
    })
    .await;
    let feedback = |addr: u32| {
        let mut f = fire(addr);
        f["system_type"] = json!(10);
        f["component_type"] = json!(91);
        f["status"] = json!(["feedback"]);
        f
    };
    let feedback_events = |env: &Env| -> Vec<serde_json::Value> {
        env.receiver
            .deliveries()
            .into_iter()
            .filter(|d| d.event_header == "fire.linkage_feedback")
            .filter_map(|d| d.body)
            .collect()
    };

    // in time: the pump reports back within the window
    env.push("lanjiang-u1", "status", &fire(1)).await;
    env.push("lanjiang-u1", "status", &feedback(1)).await;
    env.receiver
        .wait_for(WAIT, "the feedback", |_| feedback_events(&env).len() == 1)
        .await
        .unwrap();
    let f = &feedback_events(&env)[0]["fire"];
    let response = f["linkage_response_s"].as_f64().unwrap();
    assert!((0.0..1.0).contains(&response), "{f}");
    assert_eq!(f["linkage_result"], "in_time");
    env.wait_metric("gateway_linkage_feedback_total{result=\"in_time\"}", 1.0)
        .await;

    // missing: no feedback within the window; a late one still gets its response time
    env.push("lanjiang-u2", "status", &fire(2)).await;
    env.wait_metric("gateway_linkage_feedback_total{result=\"missing\"}", 1.0)
        .await;
    env.push("lanjiang-u2", "status", &feedback(2)).await;
    env.receiver
        .wait_for(WAIT, "the late feedback", |_| {
            feedback_events(&env).len() == 2
        })
        .await
        .unwrap();
    let late = feedback_events(&env)
        .into_iter()
        .find(|e| e["source"]["id"] == "lanjiang-u2")
        .unwrap();
    assert_eq!(late["fire"]["linkage_result"], "late");
    assert!(late["fire"]["linkage_response_s"].as_f64().unwrap() > 1.0);
    env.wait_metric("gateway_linkage_feedback_total{result=\"late\"}", 1.0)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analog_thresholds_raise_once_and_clear_under_the_lower_bound() {
    let env = Env::start(&["lanjiang"], |c| {
        c.extra += "\n[[thresholds]]\nanalog_type = 9\nabove = 0.3\nclear_below = 0.25\n"
    })
    .await;
    let reading = |value: f64| {
        json!({"system_type": 1, "system_addr": 1, "component_type": 17, "component_addr": 5,
               "analog_type": 9, "value": value})
    };
    let mut raised = Vec::new();
    for (value, events) in [
        (0.2, 0),
        (0.35, 1),
        (0.5, 0),
        (0.28, 0),
        (0.31, 0),
        (0.2, 1),
        (0.4, 1),
    ] {
        let (status, body) = env.push("lanjiang-u1", "analog", &reading(value)).await;
        assert_eq!(status, 202);
        assert_eq!(
            body["events"].as_array().unwrap().len(),
            events,
            "value {value}: {body}"
        );
        raised.extend(body["events"].as_array().unwrap().iter().cloned());
    }
    let got = env
        .receiver
        .wait_for(WAIT, "three threshold events", |d| d.len() == 3)
        .await
        .unwrap();
    let bodies: Vec<_> = got.iter().map(|d| d.body.clone().unwrap()).collect();
    assert!(got
        .iter()
        .all(|d| d.event_header == "fire.analog_threshold"));
    assert_eq!(
        bodies.iter().map(|b| b["id"].clone()).collect::<Vec<_>>(),
        raised
    );
    let a = &bodies[0]["fire"]["analog"];
    assert_eq!(
        (a["value"].as_f64(), a["above"].as_f64(), &a["unit"]),
        (Some(0.35), Some(0.3), &json!("A"))
    );
    assert_eq!(bodies[0]["severity"], "major");
    assert_eq!(
        (
            &bodies[1]["fire"]["analog"]["cleared"],
            &bodies[1]["severity"]
        ),
        (&json!(true), &json!("info"))
    );
    assert_eq!(
        bodies[2]["fire"]["analog"]["value"].as_f64(),
        Some(0.4),
        "raised again after the clear"
    );
    // the clear closed the first crossing's ticket; the second crossing is open
    let first = raised[0].as_str().unwrap();
    let v = env
        .wait_event(first, "closed by the clear", |v| v["state"] == "closed")
        .await;
    assert_eq!(
        (&v["case"]["verdict"], &v["case"]["resolved_by"]),
        (&json!("recovered"), &raised[1])
    );
    let again = raised[2].as_str().unwrap();
    let v = env
        .wait_event(again, "open", |v| v["state"] == "open")
        .await;
    assert!(v["case"]["pair"]
        .as_str()
        .unwrap()
        .starts_with("threshold/lanjiang-u1/"));
}
