//! Analog thresholds with hysteresis: a reading above `above` raises `fire.analog_threshold`;
//! the alarm clears (a second event, `cleared`) only once a reading falls under `clear_below`,
//! so a value hovering around the limit does not flood the township. Pure.

use crate::signal::Location;
use std::collections::HashMap;

/// One rule: which readings it watches and its two limits.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// GB/T 26875.3 analog type (9 current, 3 temperature, 4 pressure, …).
    pub analog_type: u8,
    /// Only readings of this component type, when set.
    pub component_type: Option<u8>,
    /// Raise when a reading is above this.
    pub above: f64,
    /// Clear when a reading is under this (≤ `above`).
    pub clear_below: f64,
}

/// A crossing.
#[derive(Debug, Clone, PartialEq)]
pub enum Crossing {
    /// Went above the rule's `above`.
    Raised(Rule),
    /// Came back under the rule's `clear_below`.
    Cleared(Rule),
}

/// Rules and, per unit and sensor, whether its alarm is raised.
#[derive(Debug, Default)]
pub struct Thresholds {
    rules: Vec<Rule>,
    raised: HashMap<(String, Location, u8), bool>,
}

impl Thresholds {
    /// A set of rules; the first rule that matches a reading applies (specific before general).
    pub fn new(rules: Vec<Rule>) -> Self {
        Self {
            rules,
            raised: HashMap::new(),
        }
    }

    fn rule(&self, location: Location, analog_type: u8) -> Option<&Rule> {
        let component = location.component.map(|c| c.kind);
        self.rules.iter().find(|r| {
            r.analog_type == analog_type && r.component_type.is_none_or(|c| Some(c) == component)
        })
    }

    /// A reading: `Some` when it crosses its rule's limits.
    pub fn observe(
        &mut self,
        unit: &str,
        location: Location,
        analog_type: u8,
        value: f64,
    ) -> Option<Crossing> {
        let rule = self.rule(location, analog_type)?.clone();
        let key = (unit.to_string(), location, analog_type);
        let raised = self.raised.get(&key).copied().unwrap_or(false);
        if !raised && value > rule.above {
            self.raised.insert(key, true);
            Some(Crossing::Raised(rule))
        } else if raised && value < rule.clear_below {
            self.raised.remove(&key);
            Some(Crossing::Cleared(rule))
        } else {
            None
        }
    }

    /// Undoes the last crossing of a sensor (its event could not be committed; the retry
    /// crosses again).
    pub fn undo(&mut self, unit: &str, location: Location, analog_type: u8, crossing: &Crossing) {
        let key = (unit.to_string(), location, analog_type);
        match crossing {
            Crossing::Raised(_) => {
                self.raised.remove(&key);
            }
            Crossing::Cleared(_) => {
                self.raised.insert(key, true);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::Component;

    fn loc(kind: u8) -> Location {
        Location {
            system_type: 1,
            system_addr: 1,
            component: Some(Component { kind, addr: 5 }),
        }
    }

    #[test]
    fn raises_once_clears_under_the_lower_bound_and_not_in_between() {
        let rule = Rule {
            analog_type: 9,
            component_type: None,
            above: 0.3,
            clear_below: 0.25,
        };
        let mut t = Thresholds::new(vec![rule.clone()]);
        assert_eq!(
            t.observe("u", loc(17), 9, 0.30),
            None,
            "at the limit: not above"
        );
        assert_eq!(
            t.observe("u", loc(17), 9, 0.31),
            Some(Crossing::Raised(rule.clone()))
        );
        assert_eq!(t.observe("u", loc(17), 9, 0.50), None, "raised once");
        assert_eq!(
            t.observe("u", loc(17), 9, 0.28),
            None,
            "between the limits: still raised"
        );
        assert_eq!(
            t.observe("u", loc(17), 9, 0.31),
            None,
            "no second raise without a clear"
        );
        assert_eq!(
            t.observe("u", loc(17), 9, 0.24),
            Some(Crossing::Cleared(rule.clone()))
        );
        assert_eq!(t.observe("u", loc(17), 9, 0.20), None);
        assert_eq!(
            t.observe("u", loc(17), 3, 99.0),
            None,
            "another analog type: no rule"
        );
        assert_eq!(
            t.observe("v", loc(17), 9, 0.40),
            Some(Crossing::Raised(rule)),
            "per unit"
        );
    }

    #[test]
    fn component_specific_rules_come_first_and_undo_restores() {
        let specific = Rule {
            analog_type: 3,
            component_type: Some(18),
            above: 70.0,
            clear_below: 60.0,
        };
        let general = Rule {
            analog_type: 3,
            component_type: None,
            above: 50.0,
            clear_below: 45.0,
        };
        let mut t = Thresholds::new(vec![specific.clone(), general.clone()]);
        assert_eq!(
            t.observe("u", loc(18), 3, 55.0),
            None,
            "the cable-temperature rule applies"
        );
        assert_eq!(
            t.observe("u", loc(30), 3, 55.0),
            Some(Crossing::Raised(general))
        );
        let c = t.observe("u", loc(18), 3, 75.0).unwrap();
        assert_eq!(c, Crossing::Raised(specific.clone()));
        t.undo("u", loc(18), 3, &c);
        assert_eq!(
            t.observe("u", loc(18), 3, 75.0),
            Some(Crossing::Raised(specific)),
            "raised again"
        );
    }
}
