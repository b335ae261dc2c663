//! A value a config reload replaces while readers use it.

use parking_lot::RwLock;
use std::sync::Arc;

/// A shared value that can be replaced whole: readers take the current one (an `Arc`, theirs as
/// long as they need it, so one piece of work sees one version), a reload puts a new one in
/// its place.
#[derive(Debug, Default)]
pub struct Live<T> {
    current: RwLock<Arc<T>>,
}

impl<T> Live<T> {
    /// Starts with `value`.
    pub fn new(value: Arc<T>) -> Self {
        Self {
            current: RwLock::new(value),
        }
    }

    /// The value now.
    pub fn get(&self) -> Arc<T> {
        self.current.read().clone()
    }

    /// Puts `value` in place; returns the one it replaced.
    pub fn replace(&self, value: Arc<T>) -> Arc<T> {
        std::mem::replace(&mut *self.current.write(), value)
    }
}
