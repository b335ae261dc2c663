//! HTTP conventions: pagination of registry lists, compression, request ids, CORS.

use crate::common::*;
use serde_json::{json, Value};

/// Before: `/units` and `/cameras` came whole and uncompressed (39 KB for 49 cameras).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_lists_come_in_pages_and_compressed() {
    let env = Env::start(&["lanjiang", "yunshan"], |_| {}).await;
    let (status, first) = env.get("/api/v1/units?limit=3", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 200, "{first}");
    let ids = |v: &Value| -> Vec<String> {
        v["units"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&first), ["lanjiang-u1", "lanjiang-u2", "yunshan-u1"]);
    assert_eq!(first["next"], "yunshan-u1");
    let (_, rest) = env
        .get("/api/v1/units?limit=3&after=yunshan-u1", Some(ADMIN_TOKEN))
        .await;
    assert_eq!(ids(&rest), ["yunshan-u2"]);
    assert_eq!(rest["next"], Value::Null);
    let (status, bad) = env.get("/api/v1/units?limit=0", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 400);
    assert_eq!(bad["error"]["code"], "invalid_limit");

    let zipped = env
        .client
        .get(env.gw.url("/api/v1/units"))
        .bearer_auth(ADMIN_TOKEN)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(zipped.headers()["content-encoding"], "gzip");
    // a live stream is never compressed (it would be held back in the compressor)
    let stream = env
        .client
        .get(env.gw.url("/api/v1/events/stream"))
        .bearer_auth(ADMIN_TOKEN)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert!(stream.headers().get("content-encoding").is_none());
}

/// Every answer carries a request id (the client's own, or a new one); CORS is off unless
/// origins are configured, and then only for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_carry_request_ids_and_cors_is_only_for_configured_origins() {
    let env = Env::start(&["lanjiang"], |c| {
        c.api_extra = "cors_origins = [\"https://console.lanxi.example\"]\n".into();
    })
    .await;
    let r = env.client.get(env.gw.url("/healthz")).send().await.unwrap();
    let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
    let r = env
        .client
        .get(env.gw.url("/api/v1/townships"))
        .header("x-request-id", "trace-42")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "errors get one too");
    assert_eq!(r.headers()["x-request-id"], "trace-42");

    let preflight = |origin: &'static str| {
        env.client
            .request(reqwest::Method::OPTIONS, env.gw.url("/api/v1/events"))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
    };
    let allowed = preflight("https://console.lanxi.example").await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://console.lanxi.example"
    );
    let other = preflight("https://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());

    // and off by default
    let plain = Env::start(&["lanjiang"], |_| {}).await;
    let r = plain
        .client
        .get(plain.gw.url("/healthz"))
        .header("origin", "https://console.lanxi.example")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

/// `2026-11-30T18:02:03.456+08:00`: RFC 3339, milliseconds, the configured offset.
fn canonical(t: &Value) -> bool {
    let Some(s) = t.as_str() else { return false };
    let b = s.as_bytes();
    s.len() == 29
        && chrono::DateTime::parse_from_rfc3339(s).is_ok()
        && b[19] == b'.'
        && s.ends_with("+08:00")
}

/// Before: `occurred_at` was written `+08:00` while `committed_at`, `since`, `last_seen`,
/// `captured_at` and the CLI wrote UTC `Z` with nanoseconds. Every time is now written one way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_time_is_written_one_way() {
    let env = Env::start(&["lanjiang"], |_| {}).await;
    // refused for now: the event stays pending
    env.receiver.set_behavior(
        "lanjiang",
        gateway_sim::receiver::Behavior::FailTimes {
            status: 503,
            times: 1000,
        },
    );
    let (status, pushed) = env.push("lanjiang-u1", "status", &fire(2)).await;
    assert_eq!(status, 202);
    let id = pushed["events"][0].as_str().unwrap();
    let (_, e) = env
        .get(&format!("/api/v1/events/{id}"), Some(ADMIN_TOKEN))
        .await;
    let mut times = vec![
        ("occurred_at", e["occurred_at"].clone()),
        ("received_at", e["received_at"].clone()),
        (
            "delivery.committed_at",
            e["delivery"]["committed_at"].clone(),
        ),
        ("due.sign", e["due"]["sign"].clone()),
    ];
    let (_, unit) = env
        .get("/api/v1/units/lanjiang-u1", Some(ADMIN_TOKEN))
        .await;
    times.push(("unit since", unit["since"].clone()));
    times.push(("unit last_seen", unit["last_seen"].clone()));
    let (_, stats) = env.get("/api/v1/outbox/stats", Some(ADMIN_TOKEN)).await;
    times.push((
        "oldest pending",
        stats["oldest_pending_by_township"]["lanjiang"].clone(),
    ));
    let (code, out, err) = env.cli(&["outbox", "stats", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let cli: Value = serde_json::from_str(&out).unwrap();
    times.push((
        "CLI oldest pending",
        cli["oldest_pending_by_township"]["lanjiang"].clone(),
    ));
    for (what, t) in times {
        assert!(canonical(&t), "{what}: {t}");
    }
}

/// Before: no description of the API. `GET /api/v1/openapi.json` describes every route from
/// the table the router is built from; each described route is really there (not the
/// fallback's 404, not 405), and no route is registered outside the table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_every_route_there_is() {
    let env = Env::start(&["lanjiang"], |_| {}).await;
    let (status, doc) = env.get("/api/v1/openapi.json", None).await;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    let mut operations = 0;
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            assert!(op["summary"].is_string(), "{method} {path}");
            let url = env.gw.url(&path.replace('{', "x").replace('}', ""));
            let request = match method.as_str() {
                "get" => env.client.get(&url),
                "post" => env.client.post(&url).json(&json!({})),
                other => panic!("{other} {path}"),
            };
            let r = request
                .bearer_auth(ADMIN_TOKEN)
                .timeout(std::time::Duration::from_secs(10))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            assert_ne!(status, 405, "{method} {path}");
            if status == 404 {
                let body: Value = r.json().await.unwrap_or(Value::Null);
                assert_ne!(
                    body["error"]["code"], "not_found",
                    "{method} {path} is not routed"
                );
            }
        }
    }
    assert!(operations >= 38, "{operations} operations");
    // and it is a valid OpenAPI 3.1 document
    gateway_sim::harness::require(
        "openapi-spec-validator",
        "openapi-spec-validator from PyPI (./scripts/test installs it in target/tools)",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let file = env.dir.path().join("openapi.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let out = std::process::Command::new("openapi-spec-validator")
        .arg(&file)
        .output()
        .unwrap();
    assert_ran("openapi-spec-validator", &out);
    // the router has no route of its own beside the table's
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api");
    for f in std::fs::read_dir(src).unwrap() {
        let f = f.unwrap().path();
        let text = std::fs::read_to_string(&f).unwrap();
        if !f.ends_with("routes.rs") {
            assert!(
                !text.contains(".route("),
                "{} registers a route",
                f.display()
            );
        }
    }
}
