//! A config reload: a new registry and new threshold rules, taken without a restart. What the
//! pipeline knows about units (online state, raised thresholds) carries over.

use super::Pipeline;
use crate::registry::Registry;
use crate::threshold::Rule;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// How a new registry differs from the one it replaced.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RegistryChange {
    /// Units that were not registered.
    pub units_added: Vec<String>,
    /// Units no longer registered.
    pub units_removed: Vec<String>,
    /// Units registered before and after whose entry changed.
    pub units_changed: Vec<String>,
}

impl Pipeline {
    /// Puts a reloaded registry in place. Units kept keep their state (with their new
    /// heartbeat timeout from `timeouts`), new units start offline and unseen (no event until
    /// they report), removed units are forgotten and their gauges dropped.
    pub fn replace_registry(
        &self,
        registry: Arc<Registry>,
        timeouts: impl IntoIterator<Item = (String, Duration)>,
    ) -> RegistryChange {
        let old = self.registry.replace(registry.clone());
        self.liveness.lock().retime(timeouts, self.clock.now());
        let change = unit_change(&old, &registry);
        for u in old.units() {
            let moved = registry
                .unit(&u.id)
                .is_none_or(|n| n.township != u.township);
            if moved {
                let _ = self
                    .metrics
                    .unit_up
                    .remove_label_values(&[u.id.as_str(), u.township.as_str()]);
            }
        }
        let kept: HashSet<&str> = registry
            .townships()
            .iter()
            .map(|t| t.code.as_str())
            .collect();
        for t in old.townships() {
            if !kept.contains(t.code.as_str()) {
                let _ = self
                    .metrics
                    .unit_online_ratio
                    .remove_label_values(&[t.code.as_str()]);
            }
        }
        for t in registry.townships() {
            self.update_unit_metrics(&t.code);
        }
        change
    }

    /// New general threshold rules; alarms already raised stay raised.
    pub fn replace_thresholds(&self, rules: Vec<Rule>) {
        self.thresholds.lock().set_rules(rules);
    }
}

fn unit_change(old: &Registry, new: &Registry) -> RegistryChange {
    let mut change = RegistryChange::default();
    for u in new.units() {
        match old.unit(&u.id) {
            None => change.units_added.push(u.id.clone()),
            Some(o) if o != u => change.units_changed.push(u.id.clone()),
            Some(_) => {}
        }
    }
    for u in old.units() {
        if new.unit(&u.id).is_none() {
            change.units_removed.push(u.id.clone());
        }
    }
    change.units_added.sort();
    change.units_removed.sort();
    change.units_changed.sort();
    change
}
