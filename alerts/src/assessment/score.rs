//! The score (考核得分) of a township and the ranking (排名).

use serde::{Deserialize, Serialize};

/// `[assessment]` weights: how much each figure counts in the score. A figure a township has no
/// data for (no cameras, no alarms) is left out and the others are re-weighted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Weights {
    /// Camera availability (在线率).
    pub camera_availability: f64,
    /// Camera integrity (完好率).
    pub camera_integrity: f64,
    /// Unit networking rate (联网率).
    pub unit_networking: f64,
    /// Share of cases signed on time (及时签收率).
    pub sign_on_time: f64,
    /// Share of cases handled on time (及时处置率).
    pub handle_on_time: f64,
    /// Share of judged fire alarms that were not false (1 − 误报率).
    pub true_alarm_share: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            camera_availability: 20.0,
            camera_integrity: 20.0,
            unit_networking: 20.0,
            sign_on_time: 15.0,
            handle_on_time: 15.0,
            true_alarm_share: 10.0,
        }
    }
}

/// The score out of 100 from `(weight, share)` pairs (a share of `None` is left out); `None`
/// when nothing is available.
pub fn score(parts: &[(f64, Option<f64>)]) -> Option<f64> {
    let (mut sum, mut weight) = (0.0, 0.0);
    for (w, v) in parts {
        if let Some(v) = v {
            sum += w * v;
            weight += w;
        }
    }
    (weight > 0.0).then(|| (100.0 * sum / weight * 100.0).round() / 100.0)
}

/// Ranks by score, highest first (no score last; ties share a rank, then by code): 1-based
/// ranks in the order of `scores`.
pub fn ranks(scores: &[(String, Option<f64>)]) -> Vec<u32> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    let key = |i: usize| scores[i].1.unwrap_or(f64::NEG_INFINITY);
    order.sort_by(|&a, &b| {
        key(b)
            .total_cmp(&key(a))
            .then(scores[a].0.cmp(&scores[b].0))
    });
    let mut out = vec![0; scores.len()];
    for (pos, &i) in order.iter().enumerate() {
        let tied = pos > 0 && key(order[pos - 1]) == key(i);
        out[i] = if tied {
            out[order[pos - 1]]
        } else {
            pos as u32 + 1
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_figures_are_left_out_and_ties_share_a_rank() {
        assert_eq!(score(&[(20.0, Some(1.0)), (20.0, Some(0.5))]), Some(75.0));
        assert_eq!(score(&[(20.0, Some(1.0)), (20.0, None)]), Some(100.0));
        assert_eq!(score(&[(20.0, None)]), None);
        let s = |c: &str, v: Option<f64>| (c.to_string(), v);
        assert_eq!(
            ranks(&[
                s("a", Some(80.0)),
                s("b", Some(90.0)),
                s("c", None),
                s("d", Some(80.0))
            ]),
            [2, 1, 4, 2]
        );
    }
}
