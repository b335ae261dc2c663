//! One log line per outage, not one per retry: a source that keeps meeting the same refusal
//! (the outbox full, its disk low or failing) says so once, and once more when it is over.

use std::sync::atomic::{AtomicBool, Ordering};

/// Whether an outage is going on, as far as one log site knows.
#[derive(Debug, Default)]
pub struct Outage {
    active: AtomicBool,
}

impl Outage {
    /// A quiet state.
    pub const fn new() -> Self {
        Self {
            active: AtomicBool::new(false),
        }
    }

    /// Notes a failure; `true` for the first of an outage (log it), `false` while it lasts.
    pub fn failed(&self) -> bool {
        !self.active.swap(true, Ordering::Relaxed)
    }

    /// Notes a success; `true` when it ends an outage (log that).
    pub fn recovered(&self) -> bool {
        self.active.load(Ordering::Relaxed) && self.active.swap(false, Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_failure_and_the_first_success_after_it_are_told() {
        let o = Outage::new();
        assert!(!o.recovered(), "nothing to recover from");
        assert!(o.failed());
        assert!(!o.failed());
        assert!(!o.failed());
        assert!(o.recovered());
        assert!(!o.recovered());
        assert!(o.failed(), "a new outage");
    }
}
