//! A township command center's webhook receiver.
//!
//! Verifies `X-Gateway-Signature` with each township's secret, records every attempt and every
//! accepted delivery, and answers as told per township: accept, fail N times with a status then
//! accept, always answer a status, or answer slowly.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use sha2::Sha256;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How a township's receiver answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Behavior {
    /// 200 to everything.
    Accept,
    /// Answer `status` to the next `times` requests, then accept.
    FailTimes {
        /// Status to answer.
        status: u16,
        /// How many times.
        times: u32,
    },
    /// Always answer `status`.
    Always(u16),
    /// Accept after a delay.
    Slow(Duration),
}

/// One accepted delivery.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Township (the URL path).
    pub township: String,
    /// `Idempotency-Key`.
    pub idempotency_key: String,
    /// `X-Gateway-Event`.
    pub event_header: String,
    /// Whether the wave-1 `X-Gateway-Signature` (no timestamp) came too.
    pub legacy_signature: bool,
    /// The body, parsed (when recording bodies).
    pub body: Option<serde_json::Value>,
}

/// One request, accepted or not.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// Township.
    pub township: String,
    /// `Idempotency-Key`.
    pub idempotency_key: String,
    /// Status answered.
    pub status: u16,
}

#[derive(Default)]
struct Inner {
    deliveries: Vec<Delivery>,
    attempts: Vec<Attempt>,
    behaviors: HashMap<String, Behavior>,
    unique: HashSet<u128>,
    latencies_us: Vec<u64>,
}

struct Shared {
    secrets: HashMap<String, Vec<u8>>,
    record_bodies: bool,
    inner: Mutex<Inner>,
    received: AtomicU64,
    bad_signatures: AtomicU64,
}

/// A running receiver.
pub struct Receiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

/// Microseconds since the Unix epoch (pushers embed it, the receiver subtracts it).
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_micros() as u64
}

/// `sha256=<hex HMAC-SHA256(secret, body)>`, as a township webhook's `X-Gateway-Signature`
/// carries it: written here from the spec, independently of the gateway's own signing, so
/// that the receiver checks the gateway rather than itself.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// How far a `X-Gateway-Signature-V1` timestamp may be from now.
pub const SIGNATURE_WINDOW_S: i64 = 300;

/// Checks `t=<unix>,v1=<hex HMAC(secret, "<t>." + body)>` from the spec: a valid MAC over a
/// moment within [`SIGNATURE_WINDOW_S`] of now.
fn verify_v1(secret: &[u8], body: &[u8], header: Option<&str>) -> bool {
    let Some((t, v1)) = header.and_then(|h| {
        let mut t = None;
        let mut v1 = None;
        for part in h.split(',') {
            match part.split_once('=') {
                Some(("t", x)) => t = x.parse::<i64>().ok(),
                Some(("v1", x)) => v1 = hex::decode(x).ok(),
                _ => {}
            }
        }
        Some((t?, v1?))
    }) else {
        return false;
    };
    let now = (now_us() / 1_000_000) as i64;
    if (now - t).abs() > SIGNATURE_WINDOW_S {
        return false;
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    mac.verify_slice(&v1).is_ok()
}

fn verify(secret: &[u8], body: &[u8], header: Option<&str>) -> bool {
    let Some(hex_sig) = header.and_then(|h| h.strip_prefix("sha256=")) else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

fn uuid_u128(key: &str) -> Result<u128, std::num::ParseIntError> {
    u128::from_str_radix(&key.replace('-', ""), 16)
}

/// Finds `t=<micros>` in a raw body without parsing it.
fn sent_at_us_raw(body: &[u8]) -> Option<u64> {
    const MARK: &[u8] = b"bench t=";
    let start = body.windows(MARK.len()).position(|w| w == MARK)? + MARK.len();
    let digits = body[start..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    std::str::from_utf8(&body[start..start + digits])
        .ok()?
        .parse()
        .ok()
}

/// Extracts `t=<micros>` from an event's fire description (set by benchmark pushers).
fn sent_at_us(body: &serde_json::Value) -> Option<u64> {
    body["fire"]["description"]
        .as_str()?
        .split_whitespace()
        .find_map(|w| w.strip_prefix("t=")?.parse().ok())
}

async fn receive(
    State(shared): State<Arc<Shared>>,
    Path(township): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let Some(secret) = shared.secrets.get(&township) else {
        return StatusCode::NOT_FOUND;
    };
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let key = header("idempotency-key");
    let header_str = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let legacy = header_str("x-gateway-signature");
    let has_legacy = legacy.is_some();
    if !verify_v1(secret, &body, header_str("x-gateway-signature-v1"))
        || legacy.is_some_and(|l| !verify(secret, &body, Some(l)))
    {
        shared.bad_signatures.fetch_add(1, Ordering::Relaxed);
        return StatusCode::UNAUTHORIZED;
    }
    let behavior = shared
        .inner
        .lock()
        .behaviors
        .get(&township)
        .cloned()
        .unwrap_or(Behavior::Accept);
    let status = match behavior {
        Behavior::Accept => 200,
        Behavior::Always(s) => s,
        Behavior::FailTimes { status, times } => {
            let mut inner = shared.inner.lock();
            if times > 0 {
                inner.behaviors.insert(
                    township.clone(),
                    Behavior::FailTimes {
                        status,
                        times: times - 1,
                    },
                );
                status
            } else {
                200
            }
        }
        Behavior::Slow(d) => {
            tokio::time::sleep(d).await;
            200
        }
    };
    let ok = (200..300).contains(&status);
    if !shared.record_bodies {
        // benchmark mode: count, time and deduplicate without parsing or keeping bodies
        let mut inner = shared.inner.lock();
        if ok {
            if let Some(t) = sent_at_us_raw(&body) {
                inner.latencies_us.push(now_us().saturating_sub(t));
            }
            if let Ok(id) = uuid_u128(&key) {
                inner.unique.insert(id);
            }
            shared.received.fetch_add(1, Ordering::Relaxed);
        }
        drop(inner);
        return StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    }
    let parsed: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
    let mut inner = shared.inner.lock();
    inner.attempts.push(Attempt {
        township: township.clone(),
        idempotency_key: key.clone(),
        status,
    });
    if ok {
        if let Some(t) = parsed.as_ref().and_then(sent_at_us) {
            inner.latencies_us.push(now_us().saturating_sub(t));
        }
        if let Ok(id) = uuid_u128(&key) {
            inner.unique.insert(id);
        }
        inner.deliveries.push(Delivery {
            township,
            idempotency_key: key,
            event_header: header("x-gateway-event"),
            legacy_signature: has_legacy,
            body: Some(parsed.unwrap_or(serde_json::Value::Null)),
        });
        shared.received.fetch_add(1, Ordering::Relaxed);
    }
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

impl Receiver {
    /// Starts a receiver on `addr` (port 0 for any) with a secret per township.
    pub async fn start(
        addr: SocketAddr,
        secrets: &[(String, String)],
        record_bodies: bool,
    ) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            secrets: secrets
                .iter()
                .map(|(t, s)| (t.clone(), s.as_bytes().to_vec()))
                .collect(),
            record_bodies,
            inner: Mutex::new(Inner::default()),
            received: AtomicU64::new(0),
            bad_signatures: AtomicU64::new(0),
        });
        let app = Router::new()
            .route("/{township}", post(receive))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, shared, task })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The webhook URL of a township.
    pub fn url(&self, township: &str) -> String {
        format!("http://{}/{township}", self.addr)
    }

    /// Sets how a township answers.
    pub fn set_behavior(&self, township: &str, behavior: Behavior) {
        self.shared
            .inner
            .lock()
            .behaviors
            .insert(township.to_string(), behavior);
    }

    /// Accepted deliveries so far, in arrival order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.shared.inner.lock().deliveries.clone()
    }

    /// Every request so far.
    pub fn attempts(&self) -> Vec<Attempt> {
        self.shared.inner.lock().attempts.clone()
    }

    /// Accepted deliveries (with repeats).
    pub fn received(&self) -> u64 {
        self.shared.received.load(Ordering::Relaxed)
    }

    /// Distinct event ids accepted.
    pub fn unique(&self) -> usize {
        self.shared.inner.lock().unique.len()
    }

    /// Requests whose signature did not verify.
    pub fn bad_signatures(&self) -> u64 {
        self.shared.bad_signatures.load(Ordering::Relaxed)
    }

    /// Push-to-receive latencies of events that carried a send time, in µs.
    pub fn take_latencies_us(&self) -> Vec<u64> {
        std::mem::take(&mut self.shared.inner.lock().latencies_us)
    }

    /// Forgets what was recorded (keeps behaviours).
    pub fn clear(&self) {
        let mut inner = self.shared.inner.lock();
        inner.deliveries.clear();
        inner.attempts.clear();
        inner.unique.clear();
        inner.latencies_us.clear();
        self.shared.received.store(0, Ordering::Relaxed);
    }

    /// Waits until `check` holds for the deliveries, polling; fails after `timeout`.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        what: &str,
        check: impl Fn(&[Delivery]) -> bool,
    ) -> Result<Vec<Delivery>, String> {
        crate::wait_until(timeout, what, || {
            let d = self.deliveries();
            check(&d).then_some(d)
        })
        .await
        .map_err(|e| {
            format!(
                "{e}; received so far: {:?}",
                self.deliveries()
                    .iter()
                    .map(|d| (&d.township, &d.event_header))
                    .collect::<Vec<_>>()
            )
        })
    }

    /// Stops listening.
    pub fn stop(self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_verification_accepts_the_right_key_only() {
        let good = sign(b"k", b"body");
        assert!(verify(b"k", b"body", Some(&good)));
        assert!(!verify(b"other", b"body", Some(&good)));
        assert!(!verify(b"k", b"body2", Some(&good)));
        assert!(!verify(b"k", b"body", None));
    }

    #[test]
    fn send_time_is_found_in_raw_and_parsed_bodies() {
        let body = br#"{"fire":{"description":"bench t=1234567"}}"#;
        assert_eq!(sent_at_us_raw(body), Some(1234567));
        assert_eq!(
            sent_at_us(&serde_json::from_slice(body).unwrap()),
            Some(1234567)
        );
        assert_eq!(sent_at_us_raw(b"{}"), None);
    }
}
