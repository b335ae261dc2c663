//! The verdict on one sample — pure: its measures, the camera's baseline (once learned) and the
//! thresholds in, the failing checks out. The most specific finding hides the ones it implies: a
//! black picture is also dark, flat, edgeless and unchanging, but it is reported as black only; a
//! covered picture is not also blurred or tinted, nor a flat, covered or featureless one frozen; a
//! view that moved is not also tinted, nor blurred against the view it had. A check the picture
//! gives no ground for is not judged rather than guessed: blur without strong edges and without a
//! baseline with detail, occlusion of a view that is plain by nature, the layout of a view that
//! never holds still.

use super::baseline::Baseline;
use super::vqd::{Check, Measures, Thresholds};

/// A camera that is normally darker than `dark_luma` is underexposed below this share of its
/// own normal mean luma.
const DARKER: f64 = 0.6;
/// Against a baseline, contrast is low under this share of the camera's normal luma spread.
const FADED: f64 = 0.4;
/// A covered view whose rest holds still keeps at least this correlation with the baseline there.
const MIN_REST_MATCH: f64 = 0.5;
/// A faded picture whose layout still matches its baseline at least this well is fog, not a board.
const FOG_MATCH: f64 = 0.9;
/// A covered picture shows new detail in at most this share of as many blocks as it covers.
const MAX_REVEALED: f64 = 0.25;
/// Against a baseline, a picture is blurred when its strong edges are this many times as wide
/// as the camera's normal …
const EDGE_GROWTH: f64 = 1.6;
/// … and wider than this (pixels at ≤ 640 wide: below it every picture looks sharp).
const MIN_SOFT_WIDTH: f64 = 2.2;
/// A picture with strong edges is blurred all the same when its variance of the Laplacian fell
/// below this share of its camera's normal (and that normal shows detail).
const SMEARED: f64 = 0.05;
/// A picture without strong edges is blurred when its variance of the Laplacian fell below this
/// share of its camera's normal (and that normal shows detail).
const SOFTER: f64 = 0.2;

/// What the exposure and contrast checks found, which the others depend on.
struct Light {
    dark: bool,
    bright: bool,
    /// Under `min_contrast`.
    flat: bool,
    /// Most of the camera's own contrast gone.
    faded: bool,
}

/// The checks a sample fails; `m`'s baseline measures (`covered_ratio`, `view_match`, …) are
/// filled from `baseline` when there is one.
pub fn failing(m: &Measures, baseline: Option<&Baseline>, t: &Thresholds) -> Vec<Check> {
    if m.mean_luma < t.black_luma && m.luma_std < t.black_std {
        return vec![Check::Black];
    }
    let light = light(m, baseline, t);
    let occluded = occluded(m, baseline, t, &light);
    // the view moved: judged on a picture that shows its scene
    let shows = !light.dark && !light.bright && !occluded;
    let moved = shows && m.view_match.is_some_and(|x| x < t.min_view_match);
    let blurred = !occluded && blurred(m, baseline, t, &light, moved);
    // an unchanging picture is only frozen if it shows detail that could have changed: a
    // covered, flat or nearly featureless one (its clock hidden, washed out or smeared beyond
    // reading) cannot be judged
    let featureless = m.sharpness < t.min_sharpness / 10.0;
    let frozen = !light.flat
        && !occluded
        && !featureless
        && m.changed_ratio.is_some_and(|c| c <= t.max_frozen_change);
    // against a baseline, a cast is the colour moving from the camera's normal (a sodium-lit
    // street is orange every night) — unless the camera looks at something else now, or at a
    // board; alone, a shift of the whole picture off grey
    let cast = match (baseline, m.chroma_shift) {
        (Some(_), Some(shift)) => shift > t.cast_shift && !light.dark && !moved && !occluded,
        _ => m.cast_distance > t.cast_distance && m.cast_ratio > t.cast_ratio,
    };
    // fog or a dirty dome; a view that is dim by nature is compared with itself, not with
    // `min_contrast`
    let low_contrast = baseline.map_or(light.flat, |_| light.faded);
    [
        (light.dark, Check::Underexposed),
        (light.bright, Check::Overexposed),
        (low_contrast, Check::LowContrast),
        (occluded, Check::Occluded),
        (blurred, Check::Blurred),
        (frozen, Check::Frozen),
        (moved, Check::SceneChanged),
        (cast, Check::ColorCast),
    ]
    .into_iter()
    .filter_map(|(failed, check)| failed.then_some(check))
    .collect()
}

fn light(m: &Measures, baseline: Option<&Baseline>, t: &Thresholds) -> Light {
    let dark = match baseline {
        Some(b) if b.mean_luma < t.dark_luma => m.mean_luma < b.mean_luma * DARKER,
        _ => m.mean_luma < t.dark_luma,
    };
    Light {
        dark,
        bright: m.mean_luma > t.bright_luma,
        flat: m.luma_std < t.min_contrast,
        faded: baseline.is_some_and(|b| m.luma_std < b.luma_std * FADED),
    }
}

/// A board over the view: blocks turn level that were not while the rest of the view stays as
/// it was (a moved view changes it all and shows new things), or the whole picture turns blank
/// where it never is. A dark, washed-out or faded picture loses its detail for another reason.
/// Without a baseline: most of the picture's blocks flat, the picture itself not.
fn occluded(m: &Measures, baseline: Option<&Baseline>, t: &Thresholds, l: &Light) -> bool {
    let Some(b) = baseline else {
        return m.uniform_ratio >= t.max_uniform && !l.flat;
    };
    let Some(c) = m.covered_ratio else {
        return false;
    };
    // the rest of the view as it was, or (a view that changes by itself) nothing new shown
    let rest_kept = m.rest_match.is_some_and(|r| r >= MIN_REST_MATCH)
        || m.revealed_ratio.unwrap_or(0.0) < c * MAX_REVEALED;
    // fog fades every block level too, but leaves the view's layout as it was
    let fog = l.faded && m.view_match.is_none_or(|v| v >= FOG_MATCH);
    let board = c >= t.max_covered && rest_kept && !fog;
    let blank = m.luma_std < t.min_contrast / 3.0
        && m.uniform_ratio >= t.max_uniform
        && b.luma_std >= t.min_contrast;
    (board || blank) && !l.dark && !l.bright
}

/// Blur is judged on the strong edges — against the camera's own, once learned (optics soft by
/// nature stay sharp; a fine texture whose crowded edges read narrow is blurred once they
/// widen; fine detail that vanished while a few coarse edges kept their width is blurred too,
/// unless the view moved). Without strong edges, only against a baseline with detail: the
/// detail fell far below the camera's normal (a flat picture too: a defocus can smear a scene
/// into grey).
fn blurred(
    m: &Measures,
    baseline: Option<&Baseline>,
    t: &Thresholds,
    l: &Light,
    moved: bool,
) -> bool {
    // a view that moved shows other detail than the one learned (the optics are the same: its
    // edges are still compared with the camera's own)
    let detailed = !moved && baseline.is_some_and(|b| b.edged || b.sharpness >= t.min_sharpness);
    match (m.edge_width, baseline) {
        (Some(w), Some(b)) if b.edge_width.is_some() => {
            let wide = w > (b.edge_width.unwrap_or(0.0) * EDGE_GROWTH).max(MIN_SOFT_WIDTH);
            // fine detail gone while a few coarse edges keep their width (rings, a fence)
            let smeared = detailed && !l.dark && !l.bright && m.sharpness < b.sharpness * SMEARED;
            wide || smeared
        }
        (Some(w), _) => w > t.max_edge_width,
        // a dark or washed-out picture loses its detail for another reason
        (None, Some(b)) if detailed && !l.dark && !l.bright => {
            m.sharpness < b.sharpness.max(t.min_sharpness) * SOFTER
        }
        (None, _) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Check::*;

    /// A clear, detailed picture's measures.
    fn clear() -> Measures {
        Measures {
            mean_luma: 120.0,
            luma_std: 50.0,
            uniform_ratio: 0.2,
            sharpness: 900.0,
            edge_width: Some(1.2),
            cast_distance: 3.0,
            cast_ratio: 0.2,
            chroma: (128.0, 128.0),
            changed_ratio: Some(0.2),
            covered_ratio: None,
            revealed_ratio: None,
            rest_match: None,
            view_match: None,
            chroma_shift: None,
        }
    }

    /// The same against a baseline: nothing covered, the view matching, no colour shift.
    fn versus(m: Measures) -> Measures {
        Measures {
            covered_ratio: Some(0.0),
            revealed_ratio: Some(0.0),
            rest_match: Some(1.0),
            view_match: Some(1.0),
            chroma_shift: Some(0.0),
            ..m
        }
    }

    fn t() -> Thresholds {
        Thresholds::default()
    }

    #[test]
    fn a_dim_view_is_compared_with_itself() {
        let night = Baseline::of(38.0, 14.0, 300.0, Some(1.4));
        let m = versus(Measures {
            mean_luma: 38.0,
            luma_std: 10.0,
            ..clear()
        });
        assert_eq!(m.luma_std, 10.0);
        assert_eq!(failing(&m, None, &t()), vec![Underexposed, LowContrast]);
        assert_eq!(failing(&m, Some(&night), &t()), vec![]);
        let darker = Measures {
            mean_luma: 20.0,
            luma_std: 9.0,
            ..m
        };
        assert_eq!(failing(&darker, Some(&night), &t()), vec![Underexposed]);
        let fog = Measures { luma_std: 5.0, ..m };
        assert_eq!(failing(&fog, Some(&night), &t()), vec![LowContrast]);
    }

    #[test]
    fn edges_are_judged_against_the_cameras_own() {
        let soft_optics = Baseline::of(120.0, 50.0, 300.0, Some(2.6));
        let m = versus(Measures {
            edge_width: Some(3.4),
            ..clear()
        });
        assert_eq!(failing(&m, None, &t()), vec![Blurred]);
        assert_eq!(failing(&m, Some(&soft_optics), &t()), vec![], "its normal");
        let fine = Baseline::of(120.0, 50.0, 9000.0, Some(1.0));
        let widened = Measures {
            edge_width: Some(2.5),
            ..m
        };
        assert_eq!(failing(&widened, None, &t()), vec![]);
        assert_eq!(failing(&widened, Some(&fine), &t()), vec![Blurred]);
        // no strong edge left: blurred only against a baseline with detail
        let smeared = Measures {
            edge_width: None,
            sharpness: 20.0,
            ..m
        };
        assert_eq!(failing(&smeared, None, &t()), vec![]);
        assert_eq!(failing(&smeared, Some(&fine), &t()), vec![Blurred]);
        let plain = Baseline::of(120.0, 50.0, 25.0, None);
        assert_eq!(failing(&smeared, Some(&plain), &t()), vec![]);
        // fine rings gone, a few coarse edges left at their usual width
        let rings = Baseline::of(120.0, 50.0, 14000.0, Some(3.0));
        let ringless = Measures {
            edge_width: Some(2.6),
            sharpness: 100.0,
            ..m
        };
        assert_eq!(failing(&ringless, Some(&rings), &t()), vec![Blurred]);
        let some_left = Measures {
            sharpness: 2000.0,
            ..ringless
        };
        assert_eq!(failing(&some_left, Some(&rings), &t()), vec![]);
    }

    #[test]
    fn a_board_hides_what_it_implies_and_a_moved_view_is_not_a_cast() {
        let b = Baseline::of(120.0, 50.0, 900.0, Some(1.2));
        let board = Measures {
            covered_ratio: Some(0.6),
            rest_match: Some(0.9),
            view_match: Some(0.3),
            chroma_shift: Some(20.0),
            edge_width: None,
            sharpness: 10.0,
            ..versus(clear())
        };
        assert_eq!(failing(&board, Some(&b), &t()), vec![Occluded]);
        let moved = Measures {
            rest_match: Some(0.1),
            covered_ratio: Some(0.1),
            ..board
        };
        assert_eq!(
            failing(&moved, Some(&b), &t()),
            vec![SceneChanged],
            "another view's detail is not the old one's"
        );
        let tinted = Measures {
            chroma_shift: Some(20.0),
            ..versus(clear())
        };
        assert_eq!(failing(&tinted, Some(&b), &t()), vec![ColorCast]);
        assert_eq!(failing(&tinted, None, &t()), vec![], "alone: near grey");
    }
}
