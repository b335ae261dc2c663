//! HTTP conventions: pagination of registry lists, compression, request ids, CORS.

use crate::common::*;
use serde_json::Value;

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
