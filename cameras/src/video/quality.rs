//! One camera's picture-quality state: a check must fail on `confirm` consecutive samples before
//! it is reported, and pass on as many before it is cleared — one odd sample (a car's
//! headlights, a bird on the lens) neither raises nor clears anything. Pure.

use super::vqd::Check;
use std::collections::BTreeSet;

/// What changed with a sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QualityChange {
    /// Failing checks now reported (empty: the picture is clear again).
    pub failing: Vec<Check>,
    /// Checks newly reported with this sample.
    pub raised: Vec<Check>,
    /// Checks cleared with this sample.
    pub cleared: Vec<Check>,
}

/// A camera's reported picture faults and the streaks leading to changes.
#[derive(Debug, Clone, Default)]
pub struct Quality {
    confirm: u32,
    reported: BTreeSet<Check>,
    fail_streak: [u32; Check::ALL.len()],
    pass_streak: [u32; Check::ALL.len()],
}

fn index(c: Check) -> usize {
    Check::ALL.iter().position(|&x| x == c).expect("listed")
}

impl Quality {
    /// A state that needs `confirm` (≥ 1) samples in a row to raise or clear a check.
    pub fn new(confirm: u32) -> Self {
        Self {
            confirm: confirm.max(1),
            ..Self::default()
        }
    }

    /// The checks reported now.
    pub fn reported(&self) -> impl Iterator<Item = Check> + '_ {
        self.reported.iter().copied()
    }

    /// Whether no check is reported.
    pub fn is_clear(&self) -> bool {
        self.reported.is_empty()
    }

    /// One sample's failing checks; the change to report, if any.
    pub fn sample(&mut self, failing: &[Check]) -> Option<QualityChange> {
        let (mut raised, mut cleared) = (Vec::new(), Vec::new());
        for c in Check::ALL {
            let i = index(c);
            if failing.contains(&c) {
                self.fail_streak[i] += 1;
                self.pass_streak[i] = 0;
                if self.fail_streak[i] >= self.confirm && self.reported.insert(c) {
                    raised.push(c);
                }
            } else {
                self.pass_streak[i] += 1;
                self.fail_streak[i] = 0;
                if self.pass_streak[i] >= self.confirm && self.reported.remove(&c) {
                    cleared.push(c);
                }
            }
        }
        (!raised.is_empty() || !cleared.is_empty()).then(|| QualityChange {
            failing: self.reported.iter().copied().collect(),
            raised,
            cleared,
        })
    }

    /// Forgets the streaks (the camera stopped streaming: its next samples start afresh) but
    /// keeps what is reported, so a camera back with the same fault raises nothing new.
    pub fn interrupt(&mut self) {
        self.fail_streak = Default::default();
        self.pass_streak = Default::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Check::*;

    #[test]
    fn two_samples_raise_two_clear_and_one_odd_sample_does_nothing() {
        let mut q = Quality::new(2);
        assert_eq!(q.sample(&[Black]), None);
        assert_eq!(q.sample(&[]), None, "one odd sample");
        assert_eq!(q.sample(&[Black]), None);
        let c = q.sample(&[Black]).expect("raised");
        assert_eq!(
            (c.failing, c.raised, c.cleared),
            (vec![Black], vec![Black], vec![])
        );
        assert_eq!(q.sample(&[Black]), None, "reported once");
        assert_eq!(q.sample(&[]), None, "one good sample does not clear");
        assert_eq!(q.sample(&[Black]), None);
        assert_eq!(q.sample(&[]), None);
        let c = q.sample(&[]).expect("cleared");
        assert_eq!(
            (c.failing, c.raised, c.cleared),
            (vec![], vec![], vec![Black])
        );
        assert!(q.is_clear());
    }

    #[test]
    fn checks_are_tracked_apart() {
        let mut q = Quality::new(2);
        q.sample(&[Frozen]);
        let c = q.sample(&[Frozen, Blurred]).unwrap();
        assert_eq!(c.raised, vec![Frozen]);
        let c = q.sample(&[Blurred]).unwrap();
        assert_eq!(
            (c.failing, c.raised),
            (vec![Blurred, Frozen], vec![Blurred])
        );
        let c = q.sample(&[Blurred]).unwrap();
        assert_eq!((c.failing, c.cleared), (vec![Blurred], vec![Frozen]));
        q.interrupt();
        assert_eq!(q.sample(&[Blurred]), None, "still reported, nothing new");
        assert_eq!(q.reported().collect::<Vec<_>>(), vec![Blurred]);
    }
}
