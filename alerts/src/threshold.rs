//! Analog thresholds with hysteresis. A reading beyond a limit raises `fire.analog_threshold`;
//! the alarm clears (a second event, `cleared`) only once a reading is back past the band's
//! clearing value, so a value hovering around the limit does not flood the township. A rule
//! may have a high band (residual current, cable temperature: too much is dangerous), a low band
//! (water pressure, tank level: too little is dangerous), or both. Pure.

use crate::signal::Location;
use std::collections::HashMap;

/// One band of a rule: the limit that raises and the value that clears.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Band {
    /// Raise when a reading goes beyond this.
    pub limit: f64,
    /// Clear when a reading comes back beyond this (on the safe side of `limit`).
    pub clear: f64,
}

/// The limits of a sensor: a high band, a low band, or both.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Limits {
    /// Raise above `limit`, clear under `clear` (`clear` ≤ `limit`).
    pub high: Option<Band>,
    /// Raise below `limit`, clear above `clear` (`clear` ≥ `limit`).
    pub low: Option<Band>,
}

/// Why limits are not usable.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LimitsError {
    /// Neither band.
    #[error("needs `above` and `clear_below`, or `below` and `clear_above`, or both pairs")]
    Empty,
    /// Half a band.
    #[error("`{0}` needs `{1}`")]
    HalfBand(&'static str, &'static str),
    /// A value is not a finite number.
    #[error("`{0}` must be a finite number")]
    NotFinite(&'static str),
    /// A band's clearing value is on the wrong side of its limit.
    #[error("`{clear}` ({clear_value}) must not be {side} `{limit}` ({limit_value})")]
    WrongSide {
        /// The clearing key.
        clear: &'static str,
        /// Its value.
        clear_value: f64,
        /// "above" or "below".
        side: &'static str,
        /// The limit key.
        limit: &'static str,
        /// Its value.
        limit_value: f64,
    },
    /// The low band reaches into the high band.
    #[error("the low band (`below` {below}, `clear_above` {clear_above}) overlaps the high band (`above` {above}, `clear_below` {clear_below})")]
    Overlap {
        /// Low limit.
        below: f64,
        /// Low clear.
        clear_above: f64,
        /// High limit.
        above: f64,
        /// High clear.
        clear_below: f64,
    },
}

impl Limits {
    /// Limits from the four optional values of a configuration, checked.
    pub fn from_values(
        above: Option<f64>,
        clear_below: Option<f64>,
        below: Option<f64>,
        clear_above: Option<f64>,
    ) -> Result<Self, LimitsError> {
        let finite = |v: Option<f64>, key| match v {
            Some(x) if !x.is_finite() => Err(LimitsError::NotFinite(key)),
            _ => Ok(v),
        };
        let (above, clear_below) = (finite(above, "above")?, finite(clear_below, "clear_below")?);
        let (below, clear_above) = (finite(below, "below")?, finite(clear_above, "clear_above")?);
        let high = match (above, clear_below) {
            (Some(limit), Some(clear)) if clear > limit => {
                return Err(LimitsError::WrongSide {
                    clear: "clear_below",
                    clear_value: clear,
                    side: "above",
                    limit: "above",
                    limit_value: limit,
                })
            }
            (Some(limit), Some(clear)) => Some(Band { limit, clear }),
            (Some(_), None) => return Err(LimitsError::HalfBand("above", "clear_below")),
            (None, Some(_)) => return Err(LimitsError::HalfBand("clear_below", "above")),
            (None, None) => None,
        };
        let low = match (below, clear_above) {
            (Some(limit), Some(clear)) if clear < limit => {
                return Err(LimitsError::WrongSide {
                    clear: "clear_above",
                    clear_value: clear,
                    side: "below",
                    limit: "below",
                    limit_value: limit,
                })
            }
            (Some(limit), Some(clear)) => Some(Band { limit, clear }),
            (Some(_), None) => return Err(LimitsError::HalfBand("below", "clear_above")),
            (None, Some(_)) => return Err(LimitsError::HalfBand("clear_above", "below")),
            (None, None) => None,
        };
        match (high, low) {
            (None, None) => Err(LimitsError::Empty),
            (Some(h), Some(l)) if l.clear > h.clear => Err(LimitsError::Overlap {
                below: l.limit,
                clear_above: l.clear,
                above: h.limit,
                clear_below: h.clear,
            }),
            _ => Ok(Self { high, low }),
        }
    }
}

/// One general rule: which readings it watches and their limits.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// GB/T 26875.3 analog type (9 current, 3 temperature, 4 pressure, …).
    pub analog_type: u8,
    /// Only readings of this component type, when set.
    pub component_type: Option<u8>,
    /// The limits.
    pub limits: Limits,
}

/// Which band a crossing concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// Too high.
    High,
    /// Too low.
    Low,
}

/// A crossing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Crossing {
    /// The band crossed.
    pub side: Side,
    /// Its limit and clearing value.
    pub band: Band,
    /// `false`: went beyond the limit; `true`: came back past the clearing value.
    pub cleared: bool,
}

/// Rules and, per unit and sensor, which band's alarm is raised.
#[derive(Debug, Default)]
pub struct Thresholds {
    rules: Vec<Rule>,
    raised: HashMap<(String, Location, u8), Side>,
}

impl Thresholds {
    /// A set of rules; the first rule that matches a reading applies (specific before general).
    pub fn new(rules: Vec<Rule>) -> Self {
        Self {
            rules,
            raised: HashMap::new(),
        }
    }

    /// New rules (a config reload); alarms already raised stay raised, and the next reading
    /// is judged against the new limits.
    pub fn set_rules(&mut self, rules: Vec<Rule>) {
        self.rules = rules;
    }

    fn rule(&self, location: Location, analog_type: u8) -> Option<Limits> {
        let component = location.component.map(|c| c.kind);
        self.rules
            .iter()
            .find(|r| {
                r.analog_type == analog_type
                    && r.component_type.is_none_or(|c| Some(c) == component)
            })
            .map(|r| r.limits)
    }

    /// A reading: `Some` when it crosses a limit. `own` limits (a vendor profile's, for this
    /// very sensor) take precedence over the general rules.
    pub fn observe(
        &mut self,
        unit: &str,
        location: Location,
        analog_type: u8,
        value: f64,
        own: Option<Limits>,
    ) -> Option<Crossing> {
        let limits = own.or_else(|| self.rule(location, analog_type))?;
        let key = (unit.to_string(), location, analog_type);
        match self.raised.get(&key).copied() {
            None => {
                let (side, band) = match (limits.high, limits.low) {
                    (Some(h), _) if value > h.limit => (Side::High, h),
                    (_, Some(l)) if value < l.limit => (Side::Low, l),
                    _ => return None,
                };
                self.raised.insert(key, side);
                Some(Crossing {
                    side,
                    band,
                    cleared: false,
                })
            }
            Some(side) => {
                let band = match side {
                    Side::High => limits.high,
                    Side::Low => limits.low,
                };
                // a band that disappeared (the configuration changed) clears at once
                let back = band.is_none_or(|b| match side {
                    Side::High => value < b.clear,
                    Side::Low => value > b.clear,
                });
                if !back {
                    return None;
                }
                self.raised.remove(&key);
                band.map(|band| Crossing {
                    side,
                    band,
                    cleared: true,
                })
            }
        }
    }

    /// Undoes the last crossing of a sensor (its event could not be committed; the retry
    /// crosses again).
    pub fn undo(&mut self, unit: &str, location: Location, analog_type: u8, crossing: &Crossing) {
        let key = (unit.to_string(), location, analog_type);
        if crossing.cleared {
            self.raised.insert(key, crossing.side);
        } else {
            self.raised.remove(&key);
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

    fn high(limit: f64, clear: f64) -> Limits {
        Limits::from_values(Some(limit), Some(clear), None, None).unwrap()
    }

    fn raised(side: Side, limit: f64, clear: f64) -> Option<Crossing> {
        Some(Crossing {
            side,
            band: Band { limit, clear },
            cleared: false,
        })
    }

    fn cleared(side: Side, limit: f64, clear: f64) -> Option<Crossing> {
        Some(Crossing {
            side,
            band: Band { limit, clear },
            cleared: true,
        })
    }

    #[test]
    fn raises_once_clears_under_the_lower_bound_and_not_in_between() {
        let rule = Rule {
            analog_type: 9,
            component_type: None,
            limits: high(0.3, 0.25),
        };
        let mut t = Thresholds::new(vec![rule]);
        let mut obs = |unit: &str, kind, at, v| t.observe(unit, loc(kind), at, v, None);
        assert_eq!(obs("u", 17, 9, 0.30), None, "at the limit: not above");
        assert_eq!(obs("u", 17, 9, 0.31), raised(Side::High, 0.3, 0.25));
        assert_eq!(obs("u", 17, 9, 0.50), None, "raised once");
        assert_eq!(obs("u", 17, 9, 0.28), None, "between: still raised");
        assert_eq!(
            obs("u", 17, 9, 0.31),
            None,
            "no second raise without a clear"
        );
        assert_eq!(obs("u", 17, 9, 0.24), cleared(Side::High, 0.3, 0.25));
        assert_eq!(obs("u", 17, 9, 0.20), None);
        assert_eq!(obs("u", 17, 3, 99.0), None, "another analog type: no rule");
        assert_eq!(
            obs("v", 17, 9, 0.40),
            raised(Side::High, 0.3, 0.25),
            "per unit"
        );
    }

    #[test]
    fn a_low_band_raises_below_and_clears_above() {
        let limits = Limits::from_values(Some(1.2), Some(1.0), Some(0.1), Some(0.15)).unwrap();
        let mut t = Thresholds::new(Vec::new());
        let mut obs = |v| t.observe("u", loc(99), 4, v, Some(limits));
        assert_eq!(obs(0.5), None);
        assert_eq!(obs(0.09), raised(Side::Low, 0.1, 0.15));
        assert_eq!(obs(0.12), None, "between: still low");
        assert_eq!(obs(0.05), None, "raised once");
        assert_eq!(obs(0.16), cleared(Side::Low, 0.1, 0.15));
        assert_eq!(obs(1.3), raised(Side::High, 1.2, 1.0), "the high band too");
        assert_eq!(obs(0.05), cleared(Side::High, 1.2, 1.0), "clears first");
        assert_eq!(obs(0.05), raised(Side::Low, 0.1, 0.15), "then low");
    }

    #[test]
    fn own_limits_win_over_rules_and_undo_restores() {
        let mut t = Thresholds::new(vec![Rule {
            analog_type: 3,
            component_type: None,
            limits: high(50.0, 45.0),
        }]);
        assert_eq!(
            t.observe("u", loc(18), 3, 55.0, Some(high(70.0, 60.0))),
            None
        );
        assert_eq!(
            t.observe("u", loc(30), 3, 55.0, None),
            raised(Side::High, 50.0, 45.0)
        );
        let c = t
            .observe("u", loc(18), 3, 75.0, Some(high(70.0, 60.0)))
            .unwrap();
        t.undo("u", loc(18), 3, &c);
        assert_eq!(
            t.observe("u", loc(18), 3, 75.0, Some(high(70.0, 60.0))),
            raised(Side::High, 70.0, 60.0),
            "raised again"
        );
    }

    #[test]
    fn component_specific_rules_come_first() {
        let mut t = Thresholds::new(vec![
            Rule {
                analog_type: 3,
                component_type: Some(18),
                limits: high(70.0, 60.0),
            },
            Rule {
                analog_type: 3,
                component_type: None,
                limits: high(50.0, 45.0),
            },
        ]);
        assert_eq!(t.observe("u", loc(18), 3, 55.0, None), None);
        assert_eq!(
            t.observe("u", loc(18), 3, 75.0, None),
            raised(Side::High, 70.0, 60.0)
        );
    }

    #[test]
    fn limits_are_checked() {
        let e = |a, cb, b, ca| Limits::from_values(a, cb, b, ca).unwrap_err().to_string();
        assert!(e(None, None, None, None).contains("needs `above`"));
        assert_eq!(
            e(Some(1.0), None, None, None),
            "`above` needs `clear_below`"
        );
        assert_eq!(
            e(Some(1.0), Some(2.0), None, None),
            "`clear_below` (2) must not be above `above` (1)"
        );
        assert_eq!(
            e(None, None, Some(1.0), Some(0.5)),
            "`clear_above` (0.5) must not be below `below` (1)"
        );
        assert!(e(Some(1.0), Some(0.5), Some(0.4), Some(0.8)).contains("overlaps"));
        assert_eq!(
            e(Some(f64::NAN), Some(0.5), None, None),
            "`above` must be a finite number"
        );
    }
}
