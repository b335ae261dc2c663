//! Webhook delivery: one worker per township, in commit order, signed, retried with backoff.
//!
//! Each township's worker reads its own queue from the outbox and posts one event at a time, so
//! order follows commit order and a slow or dead township only ever holds up its own queue.
//! Connections are reused (one pooled HTTP client for all workers).
//!
//! * 2xx → delivered.
//! * 408, 429, 5xx, timeouts, connection errors → retried with exponential backoff and jitter
//!   (honouring `Retry-After`), for as long as the outbox holds the event.
//! * any other status → dead letter (kept, listed by `gateway outbox dead-letters`, replayable).
//!
//! An event whose evidence is on its way ([`Holds`]) waits for it, within its deadline, and is
//! re-read from the outbox before it goes out.

mod hold;

pub use hold::Holds;

use crate::metrics::Metrics;
use crate::outbox::{Op, Outbox, PendingItem};
use crate::registry::{LiveRegistry, Township, Webhook};
use chrono::Utc;
use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Delivery settings.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// Per-request timeout unless the township sets its own.
    pub timeout: Duration,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// First retry delay.
    pub backoff_initial: Duration,
    /// Longest retry delay.
    pub backoff_max: Duration,
    /// Pending events read from the outbox per batch.
    pub read_batch: usize,
    /// A refusal (4xx other than 408/429) is retried with backoff until an event has been
    /// refused this many times, then it goes to the dead letters (a receiver misconfigured for
    /// a few seconds does not dead-letter fire alarms on their first try).
    pub refused_attempts: u32,
    /// Also send the wave-1 `X-Gateway-Signature` (no timestamp) beside
    /// `X-Gateway-Signature-V1`.
    pub legacy_signature: bool,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(3),
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(60),
            read_batch: 256,
            refused_attempts: 5,
            legacy_signature: true,
        }
    }
}

/// `t=<unix seconds>,v1=<lowercase hex HMAC-SHA256(secret, "<t>." + body)>`, the
/// `X-Gateway-Signature-V1` value: the signature covers the moment it was made, so a captured
/// request cannot be replayed later (receivers refuse a `t` more than a few minutes off).
pub fn timestamped_signature(secret: &[u8], body: &[u8], unix_s: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(unix_s.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={unix_s},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// `sha256=<lowercase hex HMAC-SHA256(secret, body)>`, the `X-Gateway-Signature` value (wave 1;
/// without a timestamp — kept unless `legacy_signature` is off).
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The delay before retry number `attempt` (1-based): exponential from `initial`, capped at
/// `max`, with jitter drawn uniformly from its upper half (so retries of many events spread out
/// but never come sooner than half the nominal delay).
pub fn backoff(attempt: u32, initial: Duration, max: Duration, rng: &mut impl Rng) -> Duration {
    let exp = initial
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
        .min(max);
    let lo = exp / 2;
    lo + Duration::from_nanos(rng.gen_range(0..=(exp - lo).as_nanos() as u64))
}

/// What one attempt came to.
#[derive(Debug)]
enum Attempt {
    Delivered,
    Retry {
        error: String,
        status: Option<u16>,
        retry_after: Option<Duration>,
    },
    Dead {
        error: String,
        status: Option<u16>,
    },
}

/// Classifies a response status.
fn classify(status: reqwest::StatusCode) -> Attempt {
    let code = status.as_u16();
    if status.is_success() {
        Attempt::Delivered
    } else if code == 408 || code == 429 || status.is_server_error() {
        Attempt::Retry {
            error: format!("HTTP {status}"),
            status: Some(code),
            retry_after: None,
        }
    } else {
        Attempt::Dead {
            error: format!("HTTP {status}"),
            status: Some(code),
        }
    }
}

/// The HTTP client shared by all workers.
pub fn client(config: &DeliveryConfig) -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(config.connect_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(90))
        .user_agent(concat!("lanxi-gateway/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("HTTP client")
}

/// Starts one delivery worker per destination (township, department, city) that has a webhook.
/// Each attempt signs and sends with the webhook `registry` has at that moment (a config
/// reload may change a URL, secret or timeout).
pub fn spawn_workers(
    registry: &Arc<LiveRegistry>,
    outbox: &Outbox,
    config: &DeliveryConfig,
    metrics: &Metrics,
    holds: &Arc<Holds>,
    shutdown: watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let client = client(config);
    registry
        .get()
        .destinations()
        .iter()
        .filter_map(|t| {
            let webhook = t.webhook.clone()?;
            let worker = Worker {
                township: t.clone(),
                webhook,
                live: registry.clone(),
                outbox: outbox.clone(),
                client: client.clone(),
                config: config.clone(),
                metrics: metrics.clone(),
                holds: holds.clone(),
                shutdown: shutdown.clone(),
            };
            Some(tokio::spawn(worker.run()))
        })
        .collect()
}

struct Worker {
    township: Arc<Township>,
    /// The webhook at the start; the live registry's is used while it has one.
    webhook: Webhook,
    live: Arc<LiveRegistry>,
    outbox: Outbox,
    client: reqwest::Client,
    config: DeliveryConfig,
    metrics: Metrics,
    holds: Arc<Holds>,
    shutdown: watch::Receiver<bool>,
}

impl Worker {
    async fn run(mut self) {
        let code = self.township.code.clone();
        let Some(wake) = self.outbox.waker(&code) else {
            tracing::error!(township = %code, "no delivery waker for township");
            return;
        };
        let mut cursor: Option<u64> = None;
        // one line when reading the queue starts failing (a disk outage), one when it works again
        let unreadable = crate::outage::Outage::default();
        loop {
            if *self.shutdown.borrow() {
                return;
            }
            let items = match self
                .outbox
                .store()
                .pending(&code, cursor, self.config.read_batch)
            {
                Ok(items) => {
                    if unreadable.recovered() {
                        tracing::info!(township = %code, "pending deliveries readable again");
                    }
                    items
                }
                Err(e) => {
                    if unreadable.failed() {
                        tracing::error!(township = %code, error = %e, "reading pending deliveries failed; retrying every second");
                    }
                    if self.pause(Duration::from_secs(1)).await {
                        return;
                    }
                    continue;
                }
            };
            if items.is_empty() {
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = self.shutdown.changed() => return,
                    // a safety net only; commits wake the worker
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                }
                continue;
            }
            for item in items {
                if !self.deliver(&item).await {
                    return;
                }
                cursor = Some(item.seq);
            }
        }
    }

    /// Sleeps, or returns `true` early if the gateway is shutting down.
    async fn pause(&mut self, d: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(d) => *self.shutdown.borrow(),
            _ = self.shutdown.changed() => true,
        }
    }

    /// Delivers one event, retrying until it is delivered or dead; `false` on shutdown.
    async fn deliver(&mut self, item: &PendingItem) -> bool {
        let code = self.township.code.clone();
        // evidence on its way (a fire alarm's snapshots) is waited for, within its deadline
        let refreshed;
        let item = if self.holds.wait(item.id).await {
            match self.outbox.store().get(item.id) {
                Ok(Some(stored)) => {
                    refreshed = PendingItem {
                        body: stored.body,
                        ..item.clone()
                    };
                    &refreshed
                }
                _ => item,
            }
        } else {
            item
        };
        let mut failures: u32 = 0;
        let mut refused: u32 = 0;
        loop {
            let attempt = match self.attempt(item).await {
                Attempt::Dead { error, status } if refused + 1 < self.config.refused_attempts => {
                    refused += 1;
                    Attempt::Retry {
                        error: format!(
                            "{error} (refused {refused} time(s); dead letter after {})",
                            self.config.refused_attempts
                        ),
                        status,
                        retry_after: None,
                    }
                }
                other => other,
            };
            match attempt {
                Attempt::Delivered => {
                    let now = Utc::now();
                    let waited = (now.timestamp_millis() - item.committed_at_ms).max(0);
                    self.metrics
                        .delivery_seconds
                        .with_label_values(&[&code])
                        .observe(waited as f64 / 1000.0);
                    self.metrics
                        .delivery_attempts_total
                        .with_label_values(&[&code, "ok"])
                        .inc();
                    if failures > 0 {
                        tracing::info!(township = %code, event = %item.id, failures, "township webhook recovered");
                    }
                    self.outbox
                        .record(Op::Delivered {
                            id: item.id,
                            township: code,
                            seq: item.seq,
                            at: now,
                        })
                        .await;
                    return true;
                }
                Attempt::Dead { error, status } => {
                    self.metrics
                        .delivery_attempts_total
                        .with_label_values(&[&code, "dead"])
                        .inc();
                    tracing::warn!(township = %code, event = %item.id, %error, "delivery refused; event moved to dead letters");
                    self.outbox
                        .record(Op::Dead {
                            id: item.id,
                            township: code,
                            seq: item.seq,
                            error,
                            status,
                        })
                        .await;
                    return true;
                }
                Attempt::Retry {
                    error,
                    status,
                    retry_after,
                } => {
                    failures += 1;
                    self.metrics
                        .delivery_attempts_total
                        .with_label_values(&[&code, "retry"])
                        .inc();
                    let mut delay = backoff(
                        failures,
                        self.config.backoff_initial,
                        self.config.backoff_max,
                        &mut rand::thread_rng(),
                    );
                    if let Some(ra) = retry_after {
                        delay = delay.max(ra.min(self.config.backoff_max));
                    }
                    if failures == 1 {
                        tracing::warn!(township = %code, event = %item.id, %error, "delivery failed; retrying with backoff");
                    } else {
                        tracing::debug!(township = %code, event = %item.id, %error, failures, ?delay, "delivery retry");
                    }
                    self.outbox
                        .record(Op::Failed {
                            id: item.id,
                            error,
                            status,
                        })
                        .await;
                    if self.pause(delay).await {
                        return false;
                    }
                }
            }
        }
    }

    async fn attempt(&self, item: &PendingItem) -> Attempt {
        let registry = self.live.get();
        let webhook = registry
            .webhook(&self.township.code)
            .unwrap_or(&self.webhook);
        let secret = webhook.secret.expose().as_bytes();
        let request = self
            .client
            .post(&webhook.url)
            .timeout(webhook.timeout.unwrap_or(self.config.timeout))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("Idempotency-Key", item.id.to_string())
            .header("X-Gateway-Event", item.kind.as_str())
            .header(
                "X-Gateway-Signature-V1",
                timestamped_signature(secret, &item.body, Utc::now().timestamp()),
            );
        let request = if self.config.legacy_signature {
            request.header("X-Gateway-Signature", signature(secret, &item.body))
        } else {
            request
        }
        .body(item.body.clone());
        match request.send().await {
            Ok(response) => {
                let retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                let mut outcome = classify(response.status());
                if let Attempt::Retry {
                    retry_after: ra, ..
                } = &mut outcome
                {
                    *ra = retry_after;
                }
                outcome
            }
            Err(e) => {
                // never the URL: it may carry a key in its query
                let kind = if e.is_timeout() {
                    "timeout"
                } else if e.is_connect() {
                    "connection refused or unreachable"
                } else {
                    "request failed"
                };
                Attempt::Retry {
                    error: format!("{kind}: {}", e.without_url()),
                    status: None,
                    retry_after: None,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn signature_matches_a_known_hmac() {
        // RFC 4231 test case 2
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn the_timestamped_signature_covers_the_moment() {
        // the MAC of "<t>." + body: the same key and body at another moment sign differently
        let a = timestamped_signature(b"Jefe", b"what do ya want for nothing?", 1_800_000_000);
        let b = timestamped_signature(b"Jefe", b"what do ya want for nothing?", 1_800_000_001);
        assert!(a.starts_with("t=1800000000,v1="), "{a}");
        assert_ne!(
            a.split_once(",v1=").unwrap().1,
            b.split_once(",v1=").unwrap().1
        );
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"1800000000.what do ya want for nothing?");
        assert_eq!(
            a,
            format!(
                "t=1800000000,v1={}",
                hex::encode(mac.finalize().into_bytes())
            )
        );
    }

    #[test]
    fn backoff_grows_caps_and_jitters_within_bounds() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let (init, max) = (Duration::from_millis(100), Duration::from_secs(5));
        for attempt in 1..40 {
            let nominal = (init * 2u32.pow((attempt - 1).min(20))).min(max);
            let d = backoff(attempt, init, max, &mut rng);
            assert!(
                d >= nominal / 2 && d <= nominal,
                "attempt {attempt}: {d:?} vs {nominal:?}"
            );
        }
        let spread: std::collections::HashSet<_> =
            (0..20).map(|_| backoff(3, init, max, &mut rng)).collect();
        assert!(spread.len() > 10, "jitter spreads retries");
    }

    #[test]
    fn statuses_are_classified_as_the_spec_says() {
        use reqwest::StatusCode as S;
        for ok in [200, 201, 202, 204] {
            assert!(matches!(
                classify(S::from_u16(ok).unwrap()),
                Attempt::Delivered
            ));
        }
        for retry in [408, 429, 500, 502, 503, 504] {
            assert!(
                matches!(classify(S::from_u16(retry).unwrap()), Attempt::Retry { .. }),
                "{retry}"
            );
        }
        for dead in [301, 400, 401, 403, 404, 409, 410, 422] {
            assert!(
                matches!(classify(S::from_u16(dead).unwrap()), Attempt::Dead { .. }),
                "{dead}"
            );
        }
    }
}
