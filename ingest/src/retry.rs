//! Reconnecting sources wait the same way: exponential backoff with jitter, cut short by the
//! stop signal.

use std::time::Duration;
use tokio::sync::watch;

/// Waits the backoff of the `failures`-th consecutive failure (between `initial` and `max`,
/// jittered); `false` when `stop` turned true meanwhile.
pub async fn pause(
    failures: u32,
    initial: Duration,
    max: Duration,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    let delay = alerts::delivery::backoff(failures, initial, max, &mut rand::thread_rng());
    tokio::select! {
        _ = stop.changed() => false,
        _ = tokio::time::sleep(delay) => true,
    }
}
