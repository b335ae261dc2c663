//! Supervision (督办) with the real gateway: an unsigned alarm raises `event.overdue` to its
//! township and the city at its deadline and again after `remind_every_s` with a rising level;
//! a `kill -9` between the two neither loses nor doubles the reminder; signing ends it.

use crate::common::*;
use gateway_sim::harness::township_secret;
use serde_json::json;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// (receiver, level) → distinct event ids of `event.overdue` that refer to `id`.
fn reminders(env: &Env, id: &str) -> Vec<(String, u64, String)> {
    let mut out: BTreeSet<(String, u64, String)> = BTreeSet::new();
    for d in env.receiver.deliveries() {
        let Some(b) = d.body.as_ref() else { continue };
        if d.event_header == "event.overdue" && b["refers_to"] == id {
            let level = b["overdue"]["level"].as_u64().unwrap();
            out.insert((d.township.clone(), level, d.idempotency_key.clone()));
        }
    }
    out.into_iter().collect()
}

fn levels(env: &Env, id: &str, to: &str) -> Vec<u64> {
    reminders(env, id)
        .into_iter()
        .filter(|(t, _, _)| t == to)
        .map(|(_, l, _)| l)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsigned_alarm_is_supervised_across_a_kill() {
    let mut env = Env::start(&["lanjiang"], |c| {
        let base = c.townships[0].1.clone().unwrap();
        let base = base.rsplit_once('/').unwrap().0.to_string();
        c.extra += &format!(
            "\n[city]\nwebhook = {{ url = \"{base}/city\", secret = \"{}\" }}\n\
             \n[[sla]]\nkinds = [\"fire.alarm\"]\nsign_within_s = 3\nhandle_within_s = 600\nremind_every_s = 5\n",
            township_secret("city")
        );
    })
    .await;
    let (s, v) = env.push("lanjiang-u1", "status", &fire(1)).await;
    assert_eq!(s, 202, "{v}");
    let pushed = Instant::now();
    let id = v["events"][0].as_str().unwrap().to_string();
    let v = env
        .wait_event(&id, "supervised", |v| v["due"]["sign"].is_string())
        .await;
    assert_eq!(v["due"]["next"], v["due"]["sign"]);

    // the first reminder: at the deadline (3 s), to the township and the city
    env.receiver
        .wait_for(WAIT, "first reminders", |_| {
            levels(&env, &id, "lanjiang") == [1] && levels(&env, &id, "city") == [1]
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", env.gw.log()));
    let took = pushed.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took <= Duration::from_secs(5),
        "the deadline is 3 s; the reminders came after {took:?}"
    );
    let first = env
        .receiver
        .deliveries()
        .into_iter()
        .find(|d| d.event_header == "event.overdue")
        .unwrap()
        .body
        .unwrap();
    assert_eq!(first["overdue"]["stage"], "sign");
    assert_eq!(first["severity"], "critical");
    assert!(
        first["title"].as_str().unwrap().starts_with("超时未签收"),
        "{first}"
    );
    let (_, list) = env
        .get(
            "/api/v1/events?state=overdue",
            Some(&township_token("lanjiang")),
        )
        .await;
    assert_eq!(list["events"][0]["id"], id.as_str(), "{list}");
    let soon = (chrono::Utc::now() + chrono::Duration::hours(1))
        .to_rfc3339()
        .replace('+', "%2B");
    let (_, list) = env
        .get(
            &format!("/api/v1/events?sort=due&due_before={soon}"),
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(list["events"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["events"][0]["id"], id.as_str());
    let (_, list) = env
        .get(
            "/api/v1/events?sort=due&due_before=2000-01-01T00:00:00Z",
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(list["events"], serde_json::json!([]), "none due by then");
    env.wait_metric(
        "gateway_events_overdue{stage=\"sign\",township=\"lanjiang\"}",
        1.0,
    )
    .await;

    // kill -9 between the two reminders; the second comes once, at level 2
    env.gw.kill9();
    env.restart().await;
    env.receiver
        .wait_for(WAIT, "second reminders", |_| {
            levels(&env, &id, "lanjiang") == [1, 2] && levels(&env, &id, "city") == [1, 2]
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{:?}", reminders(&env, &id)));
    assert!(
        pushed.elapsed() >= Duration::from_secs(7),
        "not before its time"
    );

    // signed: the sign stage is done, nothing overdue any more
    let (s, v) = env
        .post(
            &format!("/api/v1/events/{id}/sign"),
            Some(&township_token("lanjiang")),
            &json!({"by": "王"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["due"]["overdue"], json!([]));
    env.wait_metric(
        "gateway_events_overdue{stage=\"sign\",township=\"lanjiang\"}",
        0.0,
    )
    .await;
    env.wait_metric(
        "gateway_events_open{state=\"signed\",township=\"lanjiang\"}",
        1.0,
    )
    .await;
    assert_eq!(
        reminders(&env, &id).len(),
        4,
        "two levels, each once to the township and once to the city: {:?}",
        reminders(&env, &id)
    );
    let m = env.metrics().await;
    assert_eq!(
        metric(&m, "gateway_sign_seconds_count{township=\"lanjiang\"}"),
        1.0
    );
}
