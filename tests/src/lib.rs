//! Simulators and the test harness, used alike by the end-to-end tests, the demo and the
//! benchmarks.
//!
//! * [`receiver`] — a township command center: receives webhooks, verifies signatures, records
//!   deliveries, and can be told to fail (503 then 200, 400, slow).
//! * [`harness`] — starts the real `gateway` binary on loopback with a generated config, waits
//!   for it to be ready, kills it with SIGKILL.
//! * [`mosquitto`] — a real mosquitto broker on a free loopback port, and a QoS 1 publisher.
//! * [`gb28181sim`] — GB/T 28181 cameras and NVRs registering over SIP.
//! * [`unitsim`] — key fire-safety units pushing the standard profile over HTTP.
//! * [`webdriver`] — headless Chromium through chromedriver, for the console's tests.

pub mod camsim;
pub mod gb28181sim;
pub mod gbsim;
pub mod gst;
pub mod harness;
pub mod mosquitto;
pub mod receiver;
pub mod scenes;
pub mod unitsim;
pub mod webdriver;

use std::time::Duration;

/// Polls `check` every few milliseconds until it returns `Some`, or fails after `timeout`.
pub async fn wait_until<T>(
    timeout: Duration,
    what: &str,
    mut check: impl FnMut() -> Option<T>,
) -> Result<T, String> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return Ok(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!("timed out after {timeout:?} waiting for {what}"));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
