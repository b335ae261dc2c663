//! Events held back from delivery for a moment: when a `fire.alarm` is committed, snapshots
//! from the unit's cameras are being taken (the pipeline's video linkage). The delivery worker
//! holds such an event until its evidence is attached or its deadline passes — never longer: a
//! fire alarm is not held back for a picture.
//!
//! The holds are in memory: after a restart nothing is held, and events go out as stored.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::Notify;
use tokio::time::Instant;
use uuid::Uuid;

struct Awaited {
    deadline: Instant,
    done: Arc<Notify>,
}

/// Events whose evidence is being gathered, held back from delivery until it is attached or
/// their deadline passes.
#[derive(Default)]
pub struct Holds {
    awaited: Mutex<HashMap<Uuid, Awaited>>,
}

impl Holds {
    /// Evidence for `id` is expected until `deadline`.
    pub fn expect(&self, id: Uuid, deadline: Instant) {
        self.awaited.lock().insert(
            id,
            Awaited {
                deadline,
                done: Arc::new(Notify::new()),
            },
        );
    }

    /// Nothing more is awaited for `id` (attached, or given up).
    pub fn settle(&self, id: Uuid) {
        if let Some(a) = self.awaited.lock().remove(&id) {
            a.done.notify_waiters();
        }
    }

    /// Waits until `id` is settled or its deadline passes; `true` when it was awaited at all
    /// (its stored body may have changed).
    pub async fn wait(&self, id: Uuid) -> bool {
        let (deadline, done) = match self.awaited.lock().get(&id) {
            Some(a) => (a.deadline, a.done.clone()),
            None => return false,
        };
        let notified = done.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        // settled between the lookup and `enable`?
        if !self.awaited.lock().contains_key(&id) {
            return true;
        }
        let _ = tokio::time::timeout_at(deadline, notified).await;
        true
    }

    /// Events awaited now.
    pub fn len(&self) -> usize {
        self.awaited.lock().len()
    }

    /// Whether nothing is awaited.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn waits_end_when_settled_or_at_the_deadline() {
        let board = Arc::new(Holds::default());
        let id = Uuid::now_v7();
        assert!(!board.wait(id).await, "not awaited: no wait");

        board.expect(id, Instant::now() + Duration::from_secs(30));
        let b = board.clone();
        let waiter = tokio::spawn(async move { b.wait(id).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        board.settle(id);
        let r = tokio::time::timeout(Duration::from_secs(5), waiter).await;
        assert!(r.expect("woken by settle").unwrap());

        let late = Uuid::now_v7();
        board.expect(late, Instant::now() + Duration::from_millis(50));
        let started = Instant::now();
        assert!(board.wait(late).await);
        assert!(started.elapsed() >= Duration::from_millis(45));
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(board.len(), 1, "the deadline does not settle it");
    }
}
