//! The API's contract: scopes, errors that name the problem, counting, sign-off, SSE, the CLI.

use crate::common::*;
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scope_matrix() {
    let env = Env::start(&["lanjiang", "yunshan"], |_| {}).await;
    let (_, a) = env.push("lanjiang-u1", "status", &fire(1)).await;
    let (_, b) = env.push("yunshan-u1", "status", &fire(2)).await;
    let lj_id = a["events"][0].as_str().unwrap();
    let ys_id = b["events"][0].as_str().unwrap();
    let lj = township_token("lanjiang");

    // no token, unknown token
    assert_eq!(env.get("/api/v1/events", None).await.0, 401);
    assert_eq!(env.get("/api/v1/events", Some("not-a-token")).await.0, 401);
    assert_eq!(
        env.push_raw(
            "lanjiang-u1",
            "status",
            fire(3).to_string().into_bytes(),
            None
        )
        .await
        .0,
        401
    );
    assert_eq!(
        env.get("/healthz", None).await.0,
        200,
        "healthz needs no token"
    );

    // ingest-only: may push, may not read
    assert_eq!(env.get("/api/v1/events", Some(INGEST_TOKEN)).await.0, 403);
    assert_eq!(
        env.get(&format!("/api/v1/events/{lj_id}"), Some(INGEST_TOKEN))
            .await
            .0,
        403
    );
    assert_eq!(
        env.get("/api/v1/outbox/stats", Some(INGEST_TOKEN)).await.0,
        403
    );

    // a township sees its own events only
    let (s, v) = env.get("/api/v1/events", Some(&lj)).await;
    assert_eq!(s, 200);
    let townships: Vec<&str> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["township"]["code"].as_str().unwrap())
        .collect();
    assert_eq!(townships, vec!["lanjiang"]);
    assert_eq!(
        env.get(&format!("/api/v1/events/{lj_id}"), Some(&lj))
            .await
            .0,
        200
    );
    assert_eq!(
        env.get(&format!("/api/v1/events/{ys_id}"), Some(&lj))
            .await
            .0,
        404,
        "no leak of other townships' ids"
    );
    assert_eq!(
        env.get("/api/v1/events?township=yunshan", Some(&lj))
            .await
            .0,
        403
    );
    assert_eq!(
        env.post(
            &format!("/api/v1/events/{ys_id}/sign"),
            Some(&lj),
            &json!({"by": "x"})
        )
        .await
        .0,
        404
    );
    assert_eq!(
        env.push_raw(
            "lanjiang-u1",
            "status",
            fire(3).to_string().into_bytes(),
            Some(&lj)
        )
        .await
        .0,
        403
    );
    assert_eq!(env.get("/api/v1/outbox/stats", Some(&lj)).await.0, 403);
    let (_, t) = env.get("/api/v1/townships", Some(&lj)).await;
    assert_eq!(t["townships"].as_array().unwrap().len(), 1);

    // admin sees all
    let (s, v) = env.get("/api/v1/events", Some(ADMIN_TOKEN)).await;
    assert_eq!(s, 200);
    assert_eq!(v["events"].as_array().unwrap().len(), 2);
    let (s, v) = env
        .get(
            "/api/v1/events?township=yunshan&kind=fire.alarm",
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!((s, v["events"][0]["id"].as_str()), (200, Some(ys_id)));
    assert_eq!(
        env.get("/api/v1/outbox/stats", Some(ADMIN_TOKEN)).await.0,
        200
    );

    // the ingest counters saw the refused pushes too
    let m = env.metrics().await;
    assert_eq!(
        metric(
            &m,
            "gateway_ingest_rejected_total{reason=\"unauthorized\",source=\"http\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(
            &m,
            "gateway_ingest_rejected_total{reason=\"forbidden\",source=\"http\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(&m, "gateway_ingest_messages_total{source=\"http\"}"),
        4.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_off_and_feedback_follow_the_closed_loop() {
    let env = Env::start(&["lanjiang"], |_| {}).await;
    let (_, a) = env.push("lanjiang-u1", "status", &fire(1)).await;
    let id = a["events"][0].as_str().unwrap();
    let lj = township_token("lanjiang");
    let path = |p: &str| format!("/api/v1/events/{id}/{p}");

    let (s, v) = env
        .post(
            &path("feedback"),
            Some(&lj),
            &json!({"by": "王", "result": "已处置"}),
        )
        .await;
    assert_eq!((s, v["error"]["code"].as_str()), (409, Some("not_signed")));
    let (s, v) = env
        .post(&path("sign"), Some(&lj), &json!({"who": "王"}))
        .await;
    assert_eq!(s, 400);
    assert!(
        v["error"]["message"].as_str().unwrap().contains("who"),
        "{v}"
    );
    let (s, v) = env
        .post(&path("sign"), Some(&lj), &json!({"by": "王"}))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["signed"]["by"], "王");
    let (s, v) = env
        .post(&path("sign"), Some(ADMIN_TOKEN), &json!({"by": "李"}))
        .await;
    assert_eq!(s, 409);
    assert!(
        v["error"]["message"].as_str().unwrap().contains("王"),
        "{v}"
    );
    let (s, v) = env
        .post(
            &path("feedback"),
            Some(&lj),
            &json!({"by": "王", "result": "误报，已复位"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["feedback"][0]["result"], "误报，已复位");
    let (_, v) = env.get(&format!("/api/v1/events/{id}"), Some(&lj)).await;
    assert_eq!(v["signed"]["by"], "王");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_rejected_with_a_reason_counted_and_the_gateway_keeps_serving() {
    let env = Env::start(&["lanjiang"], |c| c.max_body_bytes = Some(1024)).await;
    // (unit, channel, body, status, error code, text the message must contain)
    type Case<'a> = (&'a str, &'a str, Vec<u8>, u16, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        (
            "lanjiang-u1",
            "status",
            b"{\"system_type\": 1,".to_vec(),
            400,
            "malformed_json",
            "malformed JSON",
        ),
        (
            "lanjiang-u1",
            "status",
            br#"{"system_type": "x", "system_addr": 1, "status": ["fire"]}"#.to_vec(),
            400,
            "invalid_payload",
            "system_type",
        ),
        (
            "lanjiang-u1",
            "status",
            br#"{"system_type": 1, "system_addr": 1, "status": ["smoke"]}"#.to_vec(),
            400,
            "invalid_payload",
            "unknown StatusFlag `smoke`",
        ),
        (
            "nobody",
            "status",
            fire(1).to_string().into_bytes(),
            404,
            "unknown_unit",
            "unit `nobody`",
        ),
        (
            "lanjiang-u1",
            "alarms",
            fire(1).to_string().into_bytes(),
            404,
            "unknown_channel",
            "`alarms`",
        ),
        (
            "lanjiang-u1",
            "status",
            vec![b' '; 4096],
            413,
            "too_large",
            "1024 bytes",
        ),
    ];
    for (unit, channel, body, status, code, needle) in &cases {
        let (s, v) = env
            .push_raw(unit, channel, body.clone(), Some(INGEST_TOKEN))
            .await;
        assert_eq!(s, *status, "{unit}/{channel}: {v}");
        assert_eq!(v["error"]["code"], *code, "{v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(needle),
            "{v} lacks {needle}"
        );
    }
    let (s, _) = env.push("lanjiang-u1", "status", &fire(1)).await;
    assert_eq!(s, 202, "still serving");
    let m = env.metrics().await;
    for (reason, n) in [
        ("malformed_json", 1.0),
        ("invalid_payload", 2.0),
        ("unknown_unit", 1.0),
        ("unknown_channel", 1.0),
        ("too_large", 1.0),
    ] {
        let series =
            format!("gateway_ingest_rejected_total{{reason=\"{reason}\",source=\"http\"}}");
        assert_eq!(metric(&m, &series), n, "{series}");
    }
    assert_eq!(
        metric(&m, "gateway_ingest_messages_total{source=\"http\"}"),
        7.0
    );
    // API errors are JSON that names the problem too
    let (s, v) = env
        .get("/api/v1/events?kind=fire.smoke", Some(ADMIN_TOKEN))
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("unknown_kind"))
    );
    let (s, v) = env.get("/api/v1/events?limit=0", Some(ADMIN_TOKEN)).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("invalid_limit"))
    );
    let (s, v) = env
        .get("/api/v1/events?colour=red", Some(ADMIN_TOKEN))
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("unknown_parameter"))
    );
    assert_eq!(env.get("/api/v1/nothing", Some(ADMIN_TOKEN)).await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_list_pages_with_a_cursor() {
    let env = Env::start(&["lanjiang"], |_| {}).await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let (_, v) = env.push("lanjiang-u1", "status", &fire(n)).await;
        ids.push(v["events"][0].as_str().unwrap().to_string());
    }
    let mut seen = Vec::new();
    let mut path = "/api/v1/events?limit=2".to_string();
    loop {
        let (s, v) = env.get(&path, Some(ADMIN_TOKEN)).await;
        assert_eq!(s, 200);
        seen.extend(
            v["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_str().unwrap().to_string()),
        );
        match v["next"].as_str() {
            Some(next) => path = format!("/api/v1/events?limit=2&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen, ids);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_stream_carries_live_events_within_scope() {
    let env = Env::start(&["lanjiang", "yunshan"], |_| {}).await;
    let mut resp = env
        .client
        .get(env.gw.url("/api/v1/events/stream"))
        .bearer_auth(township_token("lanjiang"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (_, b) = env.push("yunshan-u1", "status", &fire(2)).await;
    let (_, a) = env.push("lanjiang-u1", "status", &fire(1)).await;
    let lj_id = a["events"][0].as_str().unwrap();
    let ys_id = b["events"][0].as_str().unwrap();
    let mut text = String::new();
    let read = async {
        while !text.contains(lj_id) {
            let chunk = resp.chunk().await.unwrap().expect("stream open");
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    tokio::time::timeout(WAIT, read)
        .await
        .expect("lanjiang's event on the stream");
    assert!(text.contains("event: fire.alarm"), "{text}");
    assert!(
        !text.contains(ys_id),
        "another township's event leaked: {text}"
    );
    let data = text.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
    let e: Value = serde_json::from_str(data).unwrap();
    assert_eq!(e["id"], lj_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_names_file_line_and_key_and_a_second_gateway_is_refused() {
    let env = Env::start(&["lanjiang"], |_| {}).await;
    let (code, out, _) = env.cli(&["check"]);
    assert_eq!(code, 0, "{out}");
    let bad = env.dir.path().join("bad.toml");
    let text = std::fs::read_to_string(&env.config_path)
        .unwrap()
        .replace("township = \"lanjiang\"", "township = \"lanjaing\"");
    std::fs::write(&bad, &text).unwrap();
    let (code, _, err) = run_cli(&["check"], &bad);
    assert_eq!(code, 2);
    let line = text.lines().position(|l| l.contains("lanjaing")).unwrap() + 1;
    assert!(err.contains(&format!("bad.toml:{line}:")), "{err}");
    assert!(err.contains("township `lanjaing` does not exist"), "{err}");

    // the outbox is locked by the running gateway: a second one on the same data_dir refuses
    let second = env.dir.path().join("second.toml");
    std::fs::copy(&env.config_path, &second).unwrap();
    let out = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::process::Command::new(bin())
            .args(["run", "--config"])
            .arg(&second)
            .output(),
    )
    .await
    .expect("second gateway exits")
    .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("in use by another gateway process"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_units_are_refused_and_listed_in_quarantine_when_enabled() {
    let off = Env::start(&["lanjiang"], |_| {}).await;
    assert_eq!(off.push("ghost-1", "heartbeat", &json!({})).await.0, 404);
    let (s, v) = off.get("/api/v1/quarantine", Some(ADMIN_TOKEN)).await;
    assert_eq!(
        (s, &v["enabled"], &v["units"]),
        (200, &json!(false), &json!([])),
        "off by default"
    );

    let on = Env::start(&["lanjiang"], |c| {
        c.extra += "\n[registry]\nquarantine_unknown_units = true\n"
    })
    .await;
    for _ in 0..2 {
        let (s, v) = on.push("ghost-7", "status", &fire(1)).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (404, Some("unknown_unit")),
            "still refused"
        );
    }
    // an id far longer than any registry id: refused with a short message, kept cut
    let huge = "g".repeat(5000);
    let (s, v) = on.push(&huge, "heartbeat", &json!({})).await;
    assert_eq!(s, 404);
    assert!(
        v.to_string().len() < 500,
        "the answer does not echo the id whole: {} bytes",
        v.to_string().len()
    );
    let (s, v) = on.get("/api/v1/quarantine", Some(ADMIN_TOKEN)).await;
    assert_eq!(s, 200);
    assert!(v.to_string().len() < 1000, "{v}");
    let units: Vec<Value> = v["units"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["unit"] != format!("{}…", &huge[..64]))
        .cloned()
        .collect();
    assert_eq!(v["units"].as_array().unwrap().len(), 2, "{v}");
    assert_eq!(units.len(), 1, "{v}");
    assert_eq!(
        (
            &units[0]["unit"],
            &units[0]["messages"],
            &units[0]["protocol"]
        ),
        (&json!("ghost-7"), &json!(2), &json!("http"))
    );
    assert_eq!(
        on.get("/api/v1/quarantine", Some(&township_token("lanjiang")))
            .await
            .0,
        403
    );
    let m = on.metrics().await;
    assert_eq!(metric(&m, "gateway_quarantined_units"), 2.0);
    assert_eq!(
        metric(
            &m,
            "gateway_ingest_rejected_total{reason=\"unknown_unit\",source=\"http\"}"
        ),
        3.0
    );
}

/// The Prometheus rules and the Grafana dashboard shipped in deploy/ use only metrics the
/// gateway registers (names as string literals in its sources) and the README documents.
#[test]
fn deploy_files_use_only_real_documented_metrics() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let names = |text: &str| -> std::collections::BTreeSet<String> {
        let mut out = std::collections::BTreeSet::new();
        let mut rest = text;
        while let Some(i) = rest.find("gateway_") {
            let tail = &rest[i..];
            let end = tail
                .find(|c: char| !(c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit()))
                .unwrap_or(tail.len());
            out.insert(tail[..end].to_string());
            rest = &tail[end..];
        }
        out
    };
    let mut registered = String::new();
    for dir in ["alerts/src", "ingest/src", "cameras/src", "gateway/src"] {
        let mut stack = vec![root.join(dir)];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    registered += &std::fs::read_to_string(&p).unwrap();
                }
            }
        }
    }
    let registered: std::collections::BTreeSet<String> = names(&registered)
        .into_iter()
        .filter(|n| registered.contains(&format!("\"{n}\"")))
        .collect();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    for file in [
        "deploy/prometheus/gateway-rules.yml",
        "deploy/grafana/gateway-dashboard.json",
    ] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        let used = names(&text);
        assert!(used.len() >= 8, "{file}: {used:?}");
        for n in used {
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| n.strip_suffix(s))
                .unwrap_or(&n)
                .to_string();
            assert!(
                registered.contains(&base),
                "{file}: `{base}` is not a metric the gateway registers"
            );
            assert!(
                readme.contains(&format!("`{base}`")),
                "{file}: `{base}` is not in the README"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_clocks_out_of_range_and_control_characters_are_not_written() {
    let env = Env::start(&["lanjiang"], |_| {}).await;
    let mut ids = Vec::new();
    for (n, ts) in [
        (1, "9999-12-31T23:59:59+08:00"),
        (2, "1900-01-01T00:00:00+08:00"),
        (3, "2016-12-31T23:59:60Z"),
    ] {
        let mut body = fire(n);
        body["ts"] = json!(ts);
        body["description"] = json!("3F\u{0}east\r\ncorridor\u{7}");
        let (s, v) = env.push("lanjiang-u1", "status", &body).await;
        assert_eq!(s, 202, "{ts}: {v}");
        ids.push(v["events"][0].as_str().unwrap().to_string());
    }
    for (i, id) in ids.iter().enumerate() {
        let (_, e) = env
            .get(&format!("/api/v1/events/{id}"), Some(ADMIN_TOKEN))
            .await;
        let at = e["occurred_at"].as_str().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(at).is_ok()
                && !at.starts_with('+')
                && !at.contains(":60"),
            "{at}"
        );
        assert_eq!(e["fire"]["description"], "3F east  corridor", "{e}");
        assert!(
            !e["title"].as_str().unwrap().chars().any(char::is_control),
            "{e}"
        );
        let skew = e["fire"]["clock_skew_s"].as_i64();
        match i {
            0 => assert!(skew.unwrap() > 365 * 86_400, "far ahead: {e}"),
            1 => assert!(skew.unwrap() < -365 * 86_400, "far behind: {e}"),
            _ => assert_eq!(skew, None, "a leap second is a real time: {e}"),
        }
        if i < 2 {
            assert_eq!(
                e["occurred_at"], e["received_at"],
                "the receive time stands in"
            );
        }
    }
}

/// Pushes `fire(n)`, with an `Idempotency-Key` when given; the event ids answered.
async fn push_keyed(env: &Env, key: Option<&str>, n: u32) -> Value {
    let url = env.gw.url("/api/v1/ingest/lanjiang-u1/status");
    let mut r = env
        .client
        .post(url)
        .bearer_auth(INGEST_TOKEN)
        .json(&fire(n));
    if let Some(k) = key {
        r = r.header("Idempotency-Key", k);
    }
    let v: Value = r.send().await.unwrap().json().await.unwrap();
    v["events"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_sent_again_after_a_crash_keeps_its_event_ids() {
    let mut env = Env::start(&["lanjiang"], |_| {}).await;
    let keyed = push_keyed(&env, Some("panel-7/frame-1"), 1).await;
    let plain = push_keyed(&env, None, 2).await;
    assert_eq!(
        (
            keyed.as_array().unwrap().len(),
            plain.as_array().unwrap().len()
        ),
        (1, 1)
    );
    env.receiver
        .wait_for(WAIT, "both delivered", |d| d.len() == 2)
        .await
        .unwrap();
    // the gateway dies before the pusher hears back; the pusher sends both again
    env.gw.kill9();
    env.restart().await;
    assert_eq!(
        push_keyed(&env, Some("panel-7/frame-1"), 1).await,
        keyed,
        "same key: same ids"
    );
    assert_eq!(
        push_keyed(&env, None, 2).await,
        plain,
        "same body soon after: same ids"
    );
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(env.receiver.unique(), 2, "no new event for a redelivery");
    let (_, list) = env
        .get("/api/v1/events?kind=fire.alarm", Some(ADMIN_TOKEN))
        .await;
    assert_eq!(list["events"].as_array().unwrap().len(), 2, "{list}");
}

/// Before: a query that did not parse got a plain-text 400, a wrong method an empty 405.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_the_framework_makes_come_in_the_json_envelope() {
    let env = Env::start(&["lanjiang"], |_| {}).await;
    let client = reqwest::Client::new();
    let check = |resp: reqwest::Response, status: u16, code: &'static str| async move {
        assert_eq!(resp.status().as_u16(), status);
        let allow = resp.headers().get("allow").cloned();
        assert_eq!(
            resp.headers()["content-type"],
            "application/json",
            "{status}"
        );
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{body}");
        assert!(
            !body["error"]["message"].as_str().unwrap().is_empty(),
            "{body}"
        );
        allow
    };
    // an unknown query parameter (the framework's Query extractor refuses it)
    let bad_query = client
        .get(env.gw.url("/api/v1/cameras?colour=red"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    let _ = check(bad_query, 400, "bad_request").await;
    let wrong_method = client
        .delete(env.gw.url("/api/v1/cameras"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    let allow = check(wrong_method, 405, "method_not_allowed").await;
    assert!(allow.is_some(), "Allow kept");
}

/// Before: the outbox could be backed up only with the gateway stopped. `gateway outbox backup`
/// takes a consistent copy from the running gateway, while pushes go on, that a gateway can
/// start from.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_is_backed_up_online_into_a_file_a_gateway_can_start_from() {
    let env = Env::start(&["lanjiang"], |_| {}).await;
    for addr in 1..=20 {
        assert_eq!(env.push("lanjiang-u1", "status", &fire(addr)).await.0, 202);
    }
    let township = township_token("lanjiang");
    let (status, _) = env.get("/api/v1/outbox/backup", Some(&township)).await;
    assert_eq!(status, 403);

    // pushes go on during the backup
    let pushing = push_in_background(&env, "lanjiang-u2", 1..=50);
    let to = env.dir.path().join("copy.redb");
    let config = env.config_path.clone();
    let to_arg = to.display().to_string();
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        run_cli(&["outbox", "backup", "--to", &to_arg, "--json"], &config)
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{out}{err}");
    pushing.await.unwrap();
    let said: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(said["online"], true, "{said}");
    let leftovers: Vec<_> = std::fs::read_dir(&env.config.data_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("backup-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // a gateway's data_dir holding the copy as its outbox
    let restored = env.dir.path().join("restored");
    std::fs::create_dir_all(&restored).unwrap();
    std::fs::copy(&to, restored.join("outbox.redb")).unwrap();
    let mut other = env.config.clone();
    other.data_dir = restored;
    let other_dir = env.dir.path().join("other");
    std::fs::create_dir_all(&other_dir).unwrap();
    let path = other.write(&other_dir);
    let (code, out, err) = run_cli(&["outbox", "stats", "--json"], &path);
    assert_eq!(code, 0, "{out}{err}");
    let stats: Value = serde_json::from_str(&out).unwrap();
    let events = stats["events"].as_u64().unwrap();
    assert!((20..=70).contains(&events), "{stats}");
}
