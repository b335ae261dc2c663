//! The spine end to end: push → commit → signed delivery to the right township, retries, dead
//! letters, isolation between townships, kill -9, back-pressure.

use crate::common::*;
use gateway_sim::receiver::Behavior;
use serde_json::json;
use std::collections::HashSet;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_is_delivered_signed_to_the_right_township_with_the_right_fields() {
    let env = Env::start(&["lanjiang", "yunshan"], |_| {}).await;
    let (status, body) = env.push("lanjiang-u1", "status", &fire(131082)).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["accepted"], true);
    let id = body["events"][0].as_str().unwrap().to_string();

    let got = env
        .receiver
        .wait_for(WAIT, "the alarm", |d| !d.is_empty())
        .await
        .unwrap();
    assert_eq!(got.len(), 1, "exactly one delivery");
    let d = &got[0];
    assert_eq!(d.township, "lanjiang");
    assert_eq!(d.idempotency_key, id);
    assert_eq!(d.event_header, "fire.alarm");
    assert_eq!(
        env.receiver.bad_signatures(),
        0,
        "signature verified with lanjiang's secret"
    );
    let e = d.body.as_ref().unwrap();
    assert_eq!(e["id"], id.as_str());
    assert_eq!(e["kind"], "fire.alarm");
    assert_eq!(e["severity"], "critical");
    assert_eq!(
        e["township"],
        json!({"code": "lanjiang", "name": "lanjiang镇"})
    );
    assert_eq!(
        e["source"],
        json!({"kind": "unit", "id": "lanjiang-u1", "name": "单位lanjiang-u1", "protocol": "http"})
    );
    assert_eq!(e["fire"]["component_type"], 40);
    assert_eq!(e["fire"]["component_addr"], 131082);
    assert_eq!(e["fire"]["description"], "3F east corridor");
    assert_eq!(e["occurred_at"], "2026-11-28T10:00:00.000+08:00");
    assert!(e["received_at"].as_str().unwrap().ends_with("+08:00"));
    assert!(e["title"].as_str().unwrap().starts_with("火警"));
    assert_eq!(id.chars().nth(14), Some('7'), "UUIDv7");

    let v = env
        .wait_event(&id, "delivered status", |v| {
            v["delivery"]["status"] == "delivered"
        })
        .await;
    assert_eq!(v["delivery"]["attempts"], 1, "delivered on the first try");

    // several flags → one event per meaningful flag; a repeat is deduplicated
    let mut multi = fire(7);
    multi["status"] = json!(["fire", "fault", "manual"]);
    let (status, body) = env.push("yunshan-u2", "status", &multi).await;
    assert_eq!(status, 202);
    assert_eq!(body["events"].as_array().unwrap().len(), 2, "{body}");
    let (status, body) = env.push("yunshan-u2", "status", &multi).await;
    assert_eq!(
        (status, &body["events"], &body["deduplicated"]),
        (202, &json!([]), &json!(1))
    );
    let got = env
        .receiver
        .wait_for(WAIT, "two yunshan events", |d| {
            d.iter().filter(|d| d.township == "yunshan").count() == 2
        })
        .await
        .unwrap();
    let kinds: HashSet<_> = got
        .iter()
        .filter(|d| d.township == "yunshan")
        .map(|d| d.event_header.as_str())
        .collect();
    assert_eq!(kinds, HashSet::from(["fire.alarm", "fire.fault"]));
    let m = env.metrics().await;
    assert_eq!(
        metric(&m, "gateway_events_deduplicated_total{source=\"http\"}"),
        1.0
    );
    assert_eq!(
        metric(
            &m,
            "gateway_events_total{kind=\"fire.alarm\",township=\"lanjiang\"}"
        ),
        1.0
    );
    // nothing more arrives than was committed
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(env.receiver.deliveries().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_township_answering_503_gets_the_event_once_it_recovers_with_the_same_id() {
    let env = Env::start(&["lanjiang"], |_| {}).await;
    env.receiver.set_behavior(
        "lanjiang",
        Behavior::FailTimes {
            status: 503,
            times: 3,
        },
    );
    let (_, body) = env.push("lanjiang-u1", "status", &fire(1)).await;
    let id = body["events"][0].as_str().unwrap().to_string();
    env.receiver
        .wait_for(WAIT, "delivery after 503s", |d| d.len() == 1)
        .await
        .unwrap();
    let attempts = env.receiver.attempts();
    let statuses: Vec<u16> = attempts.iter().map(|a| a.status).collect();
    assert_eq!(statuses, vec![503, 503, 503, 200]);
    assert!(
        attempts.iter().all(|a| a.idempotency_key == id),
        "same id on every retry"
    );
    let v = env
        .wait_event(&id, "delivered", |v| v["delivery"]["status"] == "delivered")
        .await;
    assert_eq!(
        v["delivery"]["attempts"], 4,
        "three refused, the fourth delivered: {v}"
    );
    let m = env.metrics().await;
    assert_eq!(
        metric(
            &m,
            "gateway_delivery_attempts_total{result=\"retry\",township=\"lanjiang\"}"
        ),
        3.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_refusing_for_a_moment_does_not_dead_letter_the_alarm() {
    let env = Env::start(&["lanjiang"], |_| {}).await;
    env.receiver.set_behavior(
        "lanjiang",
        Behavior::FailTimes {
            status: 410,
            times: 3,
        },
    );
    let (_, body) = env.push("lanjiang-u1", "status", &fire(5)).await;
    let id = body["events"][0].as_str().unwrap().to_string();
    let v = env
        .wait_event(&id, "delivered", |v| v["delivery"]["status"] == "delivered")
        .await;
    assert_eq!(
        v["delivery"]["attempts"], 4,
        "refused 3 times (of 5 allowed): {v}"
    );
    let statuses: Vec<u16> = env.receiver.attempts().iter().map(|a| a.status).collect();
    assert_eq!(statuses, [410, 410, 410, 200]);
    let (_, first) = env.push("lanjiang-u1", "status", &fire(6)).await;
    let first = first["events"][0].as_str().unwrap().to_string();
    let v = env
        .wait_event(&first, "delivered", |v| {
            v["delivery"]["status"] == "delivered"
        })
        .await;
    assert_eq!(
        v["delivery"]["attempts"], 1,
        "delivered on the first try: {v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_400_goes_to_dead_letters_which_the_outbox_tool_lists_and_replays() {
    let env = Env::start(&["lanjiang", "yunshan"], |_| {}).await;
    env.receiver.set_behavior("yunshan", Behavior::Always(400));
    let (_, body) = env.push("yunshan-u1", "status", &fire(9)).await;
    let id = body["events"][0].as_str().unwrap().to_string();
    let v = env
        .wait_event(&id, "dead letter", |v| v["delivery"]["status"] == "dead")
        .await;
    assert_eq!(v["delivery"]["last_status"], 400);

    // the gateway is running: the tool goes through its API
    let (code, out, err) = env.cli(&["outbox", "dead-letters"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("1 dead letter(s)") && out.contains(&id),
        "{out}"
    );
    let (code, out, _) = env.cli(&["outbox", "stats", "--json"]);
    assert_eq!(code, 0);
    let stats: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(stats["dead_letters"], 1);

    env.receiver.set_behavior("yunshan", Behavior::Accept);
    let (code, out, err) = env.cli(&["outbox", "replay", "--all"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("replayed 1"), "{out}");
    let got = env
        .receiver
        .wait_for(WAIT, "replayed delivery", |d| !d.is_empty())
        .await
        .unwrap();
    assert_eq!(got[0].idempotency_key, id, "replay delivers the same event");
    env.wait_event(&id, "delivered after replay", |v| {
        v["delivery"]["status"] == "delivered"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_tool_works_on_the_file_when_the_gateway_is_stopped() {
    let mut env = Env::start(&["lanjiang"], |_| {}).await;
    env.receiver.set_behavior("lanjiang", Behavior::Always(422));
    let (_, body) = env.push("lanjiang-u1", "status", &fire(3)).await;
    let id = body["events"][0].as_str().unwrap().to_string();
    env.wait_event(&id, "dead letter", |v| v["delivery"]["status"] == "dead")
        .await;
    let status = env.gw.terminate().await.unwrap();
    assert!(status.success(), "SIGTERM is a clean stop: {status}");
    let (code, out, err) = env.cli(&["outbox", "dead-letters", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&id));
    let (code, out, _) = env.cli(&["outbox", "replay", "--id", &id]);
    assert_eq!((code, out.trim()), (0, "replayed 1 event(s)"));
    env.receiver.set_behavior("lanjiang", Behavior::Accept);
    env.restart().await;
    let got = env
        .receiver
        .wait_for(WAIT, "delivery after offline replay", |d| !d.is_empty())
        .await
        .unwrap();
    assert_eq!(got[0].idempotency_key, id);
}

/// A stored state row damaged behind the gateway's back (a bad disk, a foreign writer) is
/// skipped and counted: the gateway starts, lists, answers and delivers as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_stored_row_is_skipped_and_the_gateway_keeps_serving() {
    let mut env = Env::start(&["lanjiang"], |_| {}).await;
    let (_, body) = env.push("lanjiang-u1", "status", &fire(41)).await;
    let bad = body["events"][0].as_str().unwrap().to_string();
    env.wait_event(&bad, "delivered", |v| {
        v["delivery"]["status"] == "delivered"
    })
    .await;
    let status = env.gw.terminate().await.unwrap();
    assert!(status.success(), "{status}");
    {
        let db = redb::Database::create(env.config.data_dir.join("outbox.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let state: redb::TableDefinition<u128, &[u8]> = redb::TableDefinition::new("state");
            let mut t = txn.open_table(state).unwrap();
            let id = uuid::Uuid::parse_str(&bad).unwrap().as_u128();
            t.insert(id, b"\xff not json".as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }
    env.restart().await;
    let (code, _) = env
        .get(&format!("/api/v1/events/{bad}"), Some(ADMIN_TOKEN))
        .await;
    assert_eq!(code, 404, "the damaged event reads as absent");
    let (code, page) = env.get("/api/v1/events?limit=10", Some(ADMIN_TOKEN)).await;
    assert_eq!(code, 200, "{page}");
    assert!(!page.to_string().contains(&bad), "{page}");
    let (status, body) = env.push("lanjiang-u1", "status", &fire(42)).await;
    assert_eq!(status, 202, "{body}");
    let good = body["events"][0].as_str().unwrap().to_string();
    env.wait_event(&good, "delivered", |v| {
        v["delivery"]["status"] == "delivered"
    })
    .await;
    let m = env.metrics().await;
    assert!(metric(&m, "gateway_outbox_corrupt_rows") >= 1.0, "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_between_commit_and_delivery_loses_nothing_and_keeps_order() {
    let mut env = Env::start(&["lanjiang", "yunshan"], |_| {}).await;
    env.receiver.set_behavior("lanjiang", Behavior::Always(503));
    let mut ids = Vec::new();
    for n in 0..30 {
        let (status, body) = env.push("lanjiang-u1", "status", &fire(1000 + n)).await;
        assert_eq!(status, 202);
        ids.push(body["events"][0].as_str().unwrap().to_string());
    }
    env.gw.kill9();
    env.receiver.set_behavior("lanjiang", Behavior::Accept);
    env.receiver.clear();
    env.restart().await;
    let got = env
        .receiver
        .wait_for(WAIT, "all 30 after restart", |d| d.len() >= 30)
        .await
        .unwrap();
    let order: Vec<&str> = got.iter().map(|d| d.idempotency_key.as_str()).collect();
    assert_eq!(order, ids, "every acknowledged event, in commit order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_township_never_delays_another() {
    let env = Env::start(&["lanjiang", "yunshan"], |_| {}).await;
    env.receiver
        .set_behavior("yunshan", Behavior::Slow(Duration::from_secs(30)));
    let (status, _) = env.push("yunshan-u1", "status", &fire(1)).await;
    assert_eq!(status, 202);
    let started = Instant::now();
    for n in 0..20 {
        let (status, _) = env.push("lanjiang-u1", "status", &fire(n)).await;
        assert_eq!(status, 202);
    }
    env.receiver
        .wait_for(WAIT, "lanjiang's 20", |d| {
            d.iter().filter(|d| d.township == "lanjiang").count() == 20
        })
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_outbox_pushes_back_and_recovers() {
    let env = Env::start(&["lanjiang"], |c| {
        c.extra += "\n[outbox]\nmax_pending_events = 5\n"
    })
    .await;
    env.receiver.set_behavior("lanjiang", Behavior::Always(503));
    for n in 0..5 {
        assert_eq!(env.push("lanjiang-u1", "status", &fire(n)).await.0, 202);
    }
    let resp = env
        .client
        .post(env.gw.url("/api/v1/ingest/lanjiang-u1/status"))
        .bearer_auth(INGEST_TOKEN)
        .json(&fire(99))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "1");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "outbox_full");
    let (_, ready) = env.get("/readyz", None).await;
    assert_eq!(ready["outbox_full"], true);
    let m = env.metrics().await;
    assert_eq!(
        metric(
            &m,
            "gateway_ingest_rejected_total{reason=\"outbox_full\",source=\"http\"}"
        ),
        1.0
    );
    assert_eq!(metric(&m, "gateway_outbox_pending_events"), 5.0);

    env.receiver.set_behavior("lanjiang", Behavior::Accept);
    env.receiver
        .wait_for(WAIT, "drain", |d| d.len() == 5)
        .await
        .unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, _) = env.push("lanjiang-u1", "status", &fire(99)).await;
        if status == 202 {
            break;
        }
        assert!(Instant::now() < deadline, "outbox never had room again");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_carry_their_moment_and_the_wave_1_form_can_be_turned_off() {
    let env = Env::start(&["lanjiang"], |c| c.extra += "legacy_signature = false\n").await;
    env.push("lanjiang-u1", "status", &fire(1)).await;
    let got = env
        .receiver
        .wait_for(WAIT, "a delivery", |d| !d.is_empty())
        .await
        .unwrap();
    assert!(
        !got[0].legacy_signature,
        "only X-Gateway-Signature-V1 when turned off"
    );
    assert_eq!(
        env.receiver.bad_signatures(),
        0,
        "the timestamped signature verifies"
    );
    let both = Env::start(&["lanjiang"], |_| {}).await;
    both.push("lanjiang-u1", "status", &fire(1)).await;
    let got = both
        .receiver
        .wait_for(WAIT, "a delivery", |d| !d.is_empty())
        .await
        .unwrap();
    assert!(
        got[0].legacy_signature,
        "both forms by default (wave-1 receivers)"
    );
    assert_eq!(both.receiver.bad_signatures(), 0);
}
