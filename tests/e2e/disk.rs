//! The outbox's disk on a bad day, on a real (tmpfs) filesystem of the gateway's own: refused
//! before it is full, and healed without a restart after it was.

use crate::common::*;
use gateway_sim::receiver::Behavior;
use std::time::Duration;

async fn wait_ready(env: &Env, ready: bool) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, body) = env.get("/readyz", None).await;
        if (status == 200) == ready {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "/readyz never became {}: {status} {body}\n{}",
            if ready { "ready" } else { "not ready" },
            env.gw.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn below_min_free_mb_pushes_get_503_and_readyz_says_why_until_there_is_room() {
    let env = Env::start_in_tmpfs(&["lanjiang"], 64, |c| {
        c.extra += "\n[outbox]\nmin_free_mb = 16\n";
    })
    .await;
    assert_eq!(env.push("lanjiang-u1", "status", &fire(1)).await.0, 202);
    let fs = env.tmpfs.as_ref().unwrap();
    fs.fill("ballast", 8 << 20).unwrap();

    let body = wait_ready(&env, false).await;
    assert_eq!(body["disk_low"], true, "{body}");
    assert!(body["disk_free_mb"].as_u64().unwrap() < 16, "{body}");
    let resp = env
        .client
        .post(env.gw.url("/api/v1/ingest/lanjiang-u1/status"))
        .bearer_auth(INGEST_TOKEN)
        .json(&fire(2))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "5");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "disk_low", "{body}");
    env.wait_metric(
        "gateway_ingest_rejected_total{reason=\"disk_low\",source=\"http\"}",
        1.0,
    )
    .await;

    fs.remove("ballast");
    wait_ready(&env, true).await;
    assert_eq!(env.push("lanjiang-u1", "status", &fire(3)).await.0, 202);
    let got = env
        .receiver
        .wait_for(WAIT, "the alarms before and after", |d| d.len() == 2)
        .await
        .unwrap();
    let addrs: Vec<_> = got
        .iter()
        .map(|d| d.body.as_ref().unwrap()["fire"]["component_addr"].clone())
        .collect();
    assert_eq!(addrs, [1, 3]);
}

/// Before: after ENOSPC every push got 503 "Previous I/O error occurred. Please close and
/// re-open the database" until a restart, ~13,000 ERROR lines in 40 s, and deliveries could not
/// be recorded (all sent again after the restart).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_full_disk_the_outbox_heals_without_a_restart_and_keeps_its_delivery_records() {
    let env = Env::start_in_tmpfs(&["lanjiang"], 48, |c| {
        c.extra += "\n[outbox]\nmin_free_mb = 0\n";
    })
    .await;
    // the township is down: what is accepted waits in its queue
    env.receiver.set_behavior("lanjiang", Behavior::Always(503));
    assert_eq!(env.push("lanjiang-u1", "status", &fire(1)).await.0, 202);
    let fs = env.tmpfs.as_ref().unwrap();
    fs.fill("ballast", 0).unwrap();
    assert!(fs.free_bytes() < 64 << 10, "full");

    // pushes until the disk refuses one (redb may still have free pages in its file)
    let mut accepted = vec![1u64];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut refused = 0;
    let mut addr = 2u32;
    while refused < 20 {
        let (status, body) = env.push("lanjiang-u1", "status", &fire(addr)).await;
        match status {
            202 => accepted.push(addr as u64),
            503 => {
                refused += 1;
                assert_eq!(body["error"]["code"], "unavailable", "{body}");
            }
            other => panic!("push answered {other}: {body}"),
        }
        addr += 1;
        assert!(
            tokio::time::Instant::now() < deadline,
            "the full disk never refused a push"
        );
    }
    let body = wait_ready(&env, false).await;
    assert!(body["outbox_storage"]["failing"].is_string(), "{body}");

    // the township returns while the disk is still full: deliveries go on, their records wait
    env.receiver.set_behavior("lanjiang", Behavior::Accept);
    let n = accepted.len();
    env.receiver
        .wait_for(WAIT, "every accepted alarm", |d| d.len() >= n)
        .await
        .unwrap();

    fs.remove("ballast");
    wait_ready(&env, true).await;
    assert!(metric(&env.metrics().await, "gateway_outbox_reopens_total") >= 1.0);
    // the delivery records kept through the outage are written: nothing is pending
    env.wait_metric("gateway_outbox_pending_events", 0.0).await;
    assert_eq!(env.push("lanjiang-u1", "status", &fire(addr)).await.0, 202);
    accepted.push(addr as u64);
    let got = env
        .receiver
        .wait_for(WAIT, "the alarm after healing", |d| d.len() > n)
        .await
        .unwrap();
    let mut delivered: Vec<u64> = got
        .iter()
        .map(|d| {
            d.body.as_ref().unwrap()["fire"]["component_addr"]
                .as_u64()
                .unwrap()
        })
        .collect();
    delivered.sort();
    assert_eq!(delivered, accepted, "each accepted alarm delivered once");

    let log = env.gw.log();
    assert_eq!(
        log.matches("outbox write failed").count(),
        1,
        "one line per outage:\n{log}"
    );
    assert!(
        log.contains("outbox file reopened after the disk failure"),
        "{log}"
    );
    let errors = log.lines().filter(|l| l.contains("ERROR")).count();
    assert!(errors < 10, "{errors} ERROR lines:\n{log}");
}
