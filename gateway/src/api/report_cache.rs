//! Assessments computed for the API, kept for a minute: the console's overview asks every 10 s
//! on every screen for today's and the week's figures, and a week of a county's events takes a
//! few hundred milliseconds to read. One assessment is computed at a time (the others wait for
//! it and take its result), so many screens never cost more than one reader of the outbox.

use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a computed assessment is served again.
pub const TTL: Duration = Duration::from_secs(60);

/// Entries kept at most (the oldest goes first).
const MAX_ENTRIES: usize = 32;

/// The window asked for: `from`, and `to` when given (`None`: up to now).
pub type Key = (DateTime<Utc>, Option<DateTime<Utc>>);

/// The cache (of [`alerts::assessment::Report`]s in the API).
pub struct ReportCache<T> {
    kept: std::sync::Mutex<HashMap<Key, (Instant, Arc<T>)>>,
    computing: tokio::sync::Mutex<()>,
}

impl<T> Default for ReportCache<T> {
    fn default() -> Self {
        Self {
            kept: std::sync::Mutex::new(HashMap::new()),
            computing: tokio::sync::Mutex::new(()),
        }
    }
}

impl<T> ReportCache<T> {
    /// The report for `key`: kept if younger than [`TTL`], else made by `compute` (one at a
    /// time) and kept.
    pub async fn get_or<F, Fut, E>(&self, key: Key, compute: F) -> Result<Arc<T>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        if let Some(r) = self.fresh(&key) {
            return Ok(r);
        }
        let _one = self.computing.lock().await;
        // made while this waited
        if let Some(r) = self.fresh(&key) {
            return Ok(r);
        }
        let report = Arc::new(compute().await?);
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        kept.retain(|_, (at, _)| at.elapsed() <= TTL);
        if kept.len() >= MAX_ENTRIES {
            let oldest = kept.iter().min_by_key(|(_, (at, _))| *at).map(|(k, _)| *k);
            if let Some(k) = oldest {
                kept.remove(&k);
            }
        }
        kept.insert(key, (Instant::now(), report.clone()));
        Ok(report)
    }

    fn fresh(&self, key: &Key) -> Option<Arc<T>> {
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        let (at, r) = kept.get(key)?;
        (at.elapsed() <= TTL).then(|| r.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn a_window_is_computed_once_while_fresh_and_concurrent_askers_share_it() {
        let cache = Arc::new(ReportCache::<u32>::default());
        let made = Arc::new(AtomicUsize::new(0));
        let key: Key = (Utc::now(), None);
        let ask = |cache: Arc<ReportCache<u32>>, made: Arc<AtomicUsize>| async move {
            cache
                .get_or(key, || async {
                    made.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Ok::<_, ()>(7u32)
                })
                .await
        };
        let askers: Vec<_> = (0..8)
            .map(|_| tokio::spawn(ask(cache.clone(), made.clone())))
            .collect();
        for a in askers {
            a.await.unwrap().unwrap();
        }
        assert_eq!(made.load(Ordering::SeqCst), 1, "computed more than once");
        // another window is computed on its own
        let other: Key = (key.0 - chrono::Duration::days(1), None);
        cache
            .get_or(other, || async { Ok::<_, ()>(8u32) })
            .await
            .unwrap();
        assert_eq!(cache.kept.lock().unwrap().len(), 2);
    }
}
