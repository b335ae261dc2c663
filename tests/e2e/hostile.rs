//! Hostile and broken HTTP clients (issue 13): every connection has a deadline, a declared
//! oversize body is refused before it is read, and beyond the connection limit `/healthz`
//! still answers.

use crate::common::*;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn with_limits(c: &mut gateway_sim::harness::TestConfig) {
    c.api_extra = "header_timeout_s = 1\nrequest_timeout_s = 2\nmax_connections = 16\n".into();
}

/// Reads until the server answers or closes; (what it sent, how long it took).
async fn answer(stream: &mut TcpStream, within: Duration) -> (String, Duration) {
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while started.elapsed() < within {
        match tokio::time::timeout(Duration::from_millis(100), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                got.extend_from_slice(&buf[..n]);
                if got.windows(4).any(|w| w == b"\r\n\r\n") && !got.starts_with(b"HTTP/1.1 2") {
                    break;
                }
            }
            Err(_) => {}
        }
    }
    (
        String::from_utf8_lossy(&got).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_requests_are_cut_off_and_health_answers_beyond_the_limit() {
    let env = Env::start(&["lanjiang"], with_limits).await;
    let addr = env.gw.addr;
    // 16 connections that never finish their headers take every served slot
    let mut loris = Vec::new();
    for _ in 0..16 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"POST /api/v1/ingest/lanjiang-u1/status HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        loris.push(s);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // beyond the limit: /healthz answers, the rest is 503 busy
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let health = client.get(env.gw.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200, "health answers beyond the limit");
    let busy = client
        .get(env.gw.url("/api/v1/events"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(busy.status(), 503);
    assert_eq!(
        busy.json::<serde_json::Value>().await.unwrap()["error"]["code"],
        "busy"
    );
    // the half requests are closed at the header deadline (1 s), and the slots come back
    for s in loris.iter_mut() {
        let (_, took) = answer(s, Duration::from_secs(5)).await;
        assert!(
            took < Duration::from_secs(3),
            "closed at the header deadline: {took:?}"
        );
    }
    let (s, _) = env.push("lanjiang-u1", "status", &fire(1)).await;
    assert_eq!(s, 202, "serving again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lying_length_is_refused_at_once_and_a_stalled_body_times_out() {
    let env = Env::start(&["lanjiang"], with_limits).await;
    let head = |len: u64| {
        format!(
            "POST /api/v1/ingest/lanjiang-u1/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {INGEST_TOKEN}\r\n\
             Content-Type: application/json\r\nContent-Length: {len}\r\n\r\n"
        )
    };
    let mut s = TcpStream::connect(env.gw.addr).await.unwrap();
    s.write_all(head(999_999_999).as_bytes()).await.unwrap();
    let (got, took) = answer(&mut s, Duration::from_secs(5)).await;
    assert!(got.starts_with("HTTP/1.1 413"), "{got}");
    assert!(took < Duration::from_secs(1), "at once: {took:?}");

    let mut s = TcpStream::connect(env.gw.addr).await.unwrap();
    s.write_all(head(100).as_bytes()).await.unwrap();
    s.write_all(b"{\"system_").await.unwrap();
    let (got, took) = answer(&mut s, Duration::from_secs(6)).await;
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    assert!(
        took < Duration::from_secs(4),
        "request deadline 2 s: {took:?}"
    );
    let m = env.metrics().await;
    assert_eq!(
        metric(
            &m,
            "gateway_ingest_rejected_total{reason=\"too_large\",source=\"http\"}"
        ),
        1.0
    );
}
