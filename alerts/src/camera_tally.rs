//! Cameras counted per township, whatever watches them (RTSP sessions, GB/T 28181 devices):
//! each camera source reports its counts every tick; their sums set
//! `gateway_camera_online_ratio` and `gateway_camera_integrity_ratio` (online, and online with a
//! clear picture — 在线率 and 完好率 — over watched cameras) and answer the API's townships.
//! `gateway_camera_up{camera,township}` is shared the same way.

use parking_lot::Mutex;
use prometheus::{GaugeVec, IntGaugeVec, Opts, Registry};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// One township's cameras, as a source counted them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TownshipCount {
    /// Online.
    pub online: usize,
    /// Online with a clear picture (完好).
    pub intact: usize,
    /// Watched.
    pub watched: usize,
}

impl TownshipCount {
    fn add(&mut self, other: &TownshipCount) {
        self.online += other.online;
        self.intact += other.intact;
        self.watched += other.watched;
    }
}

/// The counts of every camera source, and the gauges they set.
#[derive(Clone)]
pub struct CameraTally {
    by_source: Arc<Mutex<BTreeMap<&'static str, HashMap<String, TownshipCount>>>>,
    /// `gateway_camera_up{camera,township}`: 1 while a camera is online.
    pub up: IntGaugeVec,
    online_ratio: GaugeVec,
    integrity_ratio: GaugeVec,
}

impl CameraTally {
    /// Creates the gauges in `registry`.
    pub fn new(registry: &Registry) -> Self {
        let ratio = |name: &str, help: &str| {
            crate::metrics::register(
                registry,
                GaugeVec::new(Opts::new(name, help), &["township"]),
            )
        };
        Self {
            by_source: Arc::default(),
            up: crate::metrics::register(
                registry,
                IntGaugeVec::new(
                    Opts::new("gateway_camera_up", "1 while a camera is online"),
                    &["camera", "township"],
                ),
            ),
            online_ratio: ratio(
                "gateway_camera_online_ratio",
                "Online cameras / watched cameras, per township",
            ),
            integrity_ratio: ratio(
                "gateway_camera_integrity_ratio",
                "Cameras online with a clear picture / registered cameras, per township",
            ),
        }
    }

    /// A source's counts now (they replace its last ones); the ratios are set from the sums.
    pub fn report(&self, source: &'static str, counts: HashMap<String, TownshipCount>) {
        let total = {
            let mut by = self.by_source.lock();
            by.insert(source, counts);
            sum(&by)
        };
        let ratio = |n: usize, of: usize| if of == 0 { 0.0 } else { n as f64 / of as f64 };
        for (township, c) in &total {
            let t = [township.as_str()];
            self.online_ratio
                .with_label_values(&t)
                .set(ratio(c.online, c.watched));
            self.integrity_ratio
                .with_label_values(&t)
                .set(ratio(c.intact, c.watched));
        }
    }

    /// Per township, the sums of the sources' last counts.
    pub fn township_counts(&self) -> HashMap<String, TownshipCount> {
        sum(&self.by_source.lock())
    }
}

fn sum(
    by: &BTreeMap<&'static str, HashMap<String, TownshipCount>>,
) -> HashMap<String, TownshipCount> {
    let mut total: HashMap<String, TownshipCount> = HashMap::new();
    for counts in by.values() {
        for (t, c) in counts {
            total.entry(t.clone()).or_default().add(c);
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_add_up_and_replace_their_own_counts() {
        let r = Registry::new();
        let tally = CameraTally::new(&r);
        let c = |online, intact, watched| TownshipCount {
            online,
            intact,
            watched,
        };
        tally.report("rtsp", HashMap::from([("a".to_string(), c(1, 1, 2))]));
        tally.report("gb28181", HashMap::from([("a".to_string(), c(2, 1, 2))]));
        tally.report("gb28181", HashMap::from([("a".to_string(), c(1, 1, 2))]));
        assert_eq!(tally.township_counts()["a"], c(2, 2, 4));
        assert_eq!(tally.online_ratio.with_label_values(&["a"]).get(), 0.5);
    }
}
