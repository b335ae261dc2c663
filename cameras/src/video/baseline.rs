//! A camera's own normal picture, learned over its first samples — pure. A camera that always
//! looks at a plain wall, a dark street or the sky is compared with itself: what is measured
//! against its baseline here (blocks that turned into a board, what the rest of the view still
//! matches, the layout, the colour) is judged in [`super::verdict`] — occluded, blurred, dark,
//! faded, tinted, or turned (`scene_changed`, 画面偏移).
//! A check that the baseline cannot support (a view with too little detail, a scene that
//! never holds still) is not judged rather than guessed.

use super::vqd::{decimate, Measures, Thresholds, Thumb};
use serde::{Deserialize, Serialize};

/// The reference grid is the thumbnail reduced by this much (160 × 90 → 32 × 18).
const GRID_STEP: usize = 5;
/// The view is steady enough to judge `scene_changed` when two learning samples in three
/// match the reference at least this well (a bus passing during one sample does not cost the
/// camera its scene check; a view that keeps moving, or turns between two presets, does).
const MIN_STEADY: f64 = 0.85;
/// A flat block is covered where it had no detail when its level against the picture's mean
/// moved this much (×64: an eighth of the mean) …
const LEVEL_SHIFT: u8 = 8;
/// … and its mean luma this much.
const SHADE_SHIFT: f64 = 24.0;
/// Neighbouring blocks of a board differ in mean luma by at most this.
const BOARD_STEP: u8 = 2;
/// The blocks of one board are within this much of its median luma.
const BOARD_SHADES: f64 = 12.0;
/// A grid with a luma spread under this has no structure to match.
const MIN_GRID_STD: f64 = 2.0;

/// What a camera's picture normally is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// Samples it was learned from.
    pub samples: u32,
    /// Median mean luma.
    pub mean_luma: f64,
    /// Median luma standard deviation.
    pub luma_std: f64,
    /// Median variance of the Laplacian.
    pub sharpness: f64,
    /// Whether most samples had strong edges to measure.
    pub edged: bool,
    /// Median edge width of the samples that had strong edges.
    #[serde(default)]
    pub edge_width: Option<f64>,
    /// Median mean chroma (Cb, Cr).
    pub chroma: (f64, f64),
    /// How well two learning samples in three matched the reference at least (1: a still
    /// view).
    pub steady: f64,
    /// Blocks across and down.
    blocks: (usize, usize),
    /// Blocks with detail in most learning samples, one bit each, hex.
    textured: String,
    /// Each block's median mean luma over the picture's mean luma (×64, at most 255), hex.
    levels: String,
    /// Reference grid size.
    grid: (usize, usize),
    /// Each cell's median over the learning samples' grids, hex.
    reference: String,
}

/// What a sample shows against its camera's baseline.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Versus {
    /// Share of the blocks that look covered now: level with a neighbour, where the baseline
    /// had detail or another brightness relative to the whole picture.
    pub covered_ratio: Option<f64>,
    /// Share of the blocks that show detail now where the baseline had none (a moved view
    /// shows new things; a board hides without showing).
    pub revealed_ratio: Option<f64>,
    /// Correlation of the uncovered blocks' levels with the baseline's (`None`: the view does
    /// not hold still, or too little of it is uncovered): a board leaves the rest of the view
    /// as it was, a moved view changes it all.
    pub rest_match: Option<f64>,
    /// Correlation of the picture's coarse layout with the reference (`None`: the view does
    /// not hold still, or has no layout to match).
    pub view_match: Option<f64>,
    /// Distance of the mean chroma from the baseline's.
    pub chroma_shift: f64,
}

/// Collects a camera's first usable samples into a [`Baseline`].
#[derive(Debug, Clone)]
pub struct Learner {
    need: usize,
    means: Vec<f64>,
    stds: Vec<f64>,
    sharpness: Vec<f64>,
    widths: Vec<f64>,
    cb: Vec<f64>,
    cr: Vec<f64>,
    levels: Vec<Vec<u8>>,
    edged: usize,
    textured: Vec<u16>,
    blocks: (usize, usize),
    grids: Vec<Vec<u8>>,
    grid: (usize, usize),
}

impl Learner {
    /// A learner that needs `need` (≥ 1) usable samples.
    pub fn new(need: usize) -> Self {
        Self {
            need: need.max(1),
            means: Vec::new(),
            stds: Vec::new(),
            sharpness: Vec::new(),
            widths: Vec::new(),
            cb: Vec::new(),
            cr: Vec::new(),
            levels: Vec::new(),
            edged: 0,
            textured: Vec::new(),
            blocks: (0, 0),
            grids: Vec::new(),
            grid: (0, 0),
        }
    }

    /// Samples taken so far.
    pub fn progress(&self) -> usize {
        self.means.len()
    }

    /// Samples needed.
    pub fn needed(&self) -> usize {
        self.need
    }

    /// Adds one sample; the baseline once enough were seen. A black sample teaches nothing (a
    /// camera that starts without a picture is not learned as normal), and a sample of another
    /// size starts the learning over.
    pub fn add(&mut self, m: &Measures, thumb: &Thumb, t: &Thresholds) -> Option<Baseline> {
        if m.mean_luma < t.black_luma && m.luma_std < t.black_std {
            return None;
        }
        let (grid, gw, gh) = grid_of(thumb);
        if self.progress() > 0 && (self.blocks != thumb.blocks() || self.grid != (gw, gh)) {
            *self = Self::new(self.need);
        }
        if self.progress() == 0 {
            self.blocks = thumb.blocks();
            self.textured = vec![0; thumb.flat().len()];
            self.grid = (gw, gh);
        }
        self.means.push(m.mean_luma);
        self.stds.push(m.luma_std);
        self.sharpness.push(m.sharpness);
        self.cb.push(m.chroma.0);
        self.cr.push(m.chroma.1);
        self.levels.push(levels_of(thumb, m.mean_luma));
        self.edged += usize::from(m.edge_width.is_some());
        self.widths.extend(m.edge_width);
        for (n, &flat) in self.textured.iter_mut().zip(thumb.flat()) {
            *n += u16::from(!flat);
        }
        self.grids.push(grid);
        (self.progress() >= self.need).then(|| self.finish())
    }

    fn finish(&mut self) -> Baseline {
        let n = self.progress();
        let (gw, gh) = self.grid;
        let reference: Vec<u8> = (0..gw * gh)
            .map(|i| {
                let mut at: Vec<f64> = self.grids.iter().map(|g| f64::from(g[i])).collect();
                median(&mut at).round() as u8
            })
            .collect();
        let steady = steadiness(&self.grids, &reference);
        let textured: Vec<bool> = self.textured.iter().map(|&k| 2 * k as usize > n).collect();
        let levels: Vec<u8> = (0..self.textured.len())
            .map(|i| {
                let mut at: Vec<f64> = self.levels.iter().map(|l| f64::from(l[i])).collect();
                median(&mut at) as u8
            })
            .collect();
        let b = Baseline {
            samples: n as u32,
            mean_luma: median(&mut self.means),
            luma_std: median(&mut self.stds),
            sharpness: median(&mut self.sharpness),
            edged: 2 * self.edged > n,
            edge_width: (2 * self.edged > n).then(|| median(&mut self.widths)),
            chroma: (median(&mut self.cb), median(&mut self.cr)),
            steady,
            blocks: self.blocks,
            textured: to_hex(&pack(&textured)),
            levels: to_hex(&levels),
            grid: self.grid,
            reference: to_hex(&reference),
        };
        *self = Self::new(self.need);
        b
    }
}

impl Baseline {
    /// Whether the view held still enough while learning for `scene_changed` to be judged.
    pub fn judges_view(&self) -> bool {
        self.steady >= MIN_STEADY
    }

    /// The sample (its measures and thumbnail) against this baseline; `None` when the
    /// picture's size changed (the baseline no longer applies).
    pub fn compare(&self, m: &Measures, thumb: &Thumb, t: &Thresholds) -> Option<Versus> {
        let (grid, gw, gh) = grid_of(thumb);
        let n = thumb.flat().len();
        if thumb.blocks() != self.blocks || (gw, gh) != self.grid || n == 0 {
            return None;
        }
        let was = Blocks {
            textured: unpack(&from_hex(&self.textured)?, n),
            levels: from_hex(&self.levels)?,
            mean_luma: self.mean_luma,
        };
        if was.levels.len() != n {
            return None;
        }
        let chroma_shift = (m.chroma.0 - self.chroma.0).hypot(m.chroma.1 - self.chroma.1);
        // a tinted picture changes each colour's shade its own way: its shades tell nothing
        let board = was.board(thumb, m.mean_luma, chroma_shift > t.cast_shift);
        let rest_match = self
            .judges_view()
            .then(|| was.rest_match(thumb, m.mean_luma))
            .flatten();
        let reference = from_hex(&self.reference)?;
        let view_match = self
            .judges_view()
            .then(|| correlation(&grid, &reference))
            .flatten();
        Some(Versus {
            covered_ratio: Some(board.covered),
            revealed_ratio: Some(board.revealed),
            rest_match,
            view_match,
            chroma_shift,
        })
    }
}

/// The baseline's blocks, read back.
struct Blocks {
    textured: Vec<bool>,
    levels: Vec<u8>,
    mean_luma: f64,
}

/// What a board would be: the share of the blocks where one would show that look covered, and
/// of those that show detail they did not have.
struct Board {
    covered: f64,
    revealed: f64,
}

impl Blocks {
    /// The block's normal mean luma.
    fn shade(&self, i: usize) -> f64 {
        f64::from(self.levels[i]) * self.mean_luma / 64.0
    }

    /// Looks for a board: blocks now flat and level with a neighbour that had detail, or whose
    /// brightness changed both as such and against the rest of the picture (a darker picture
    /// changes every block alike) — all of about one shade. Counted among the blocks where such
    /// a board would show at all: a grey board over grey asphalt hides nothing anyone can see.
    fn board(&self, thumb: &Thumb, mean_luma: f64, tinted: bool) -> Board {
        let (n, means) = (self.textured.len(), thumb.block_means());
        let now = levels_of(thumb, mean_luma);
        let moved = |i: usize| {
            !tinted
                && self.levels[i].abs_diff(now[i]) >= LEVEL_SHIFT
                && (self.shade(i) - f64::from(means[i])).abs() >= SHADE_SHIFT
        };
        let candidate: Vec<bool> = (0..n)
            .map(|i| boarded(thumb, i) && (self.textured[i] || moved(i)))
            .collect();
        let mut shades: Vec<f64> = (0..n)
            .filter(|&i| candidate[i])
            .map(|i| f64::from(means[i]))
            .collect();
        if shades.is_empty() {
            return Board {
                covered: 0.0,
                revealed: 0.0,
            };
        }
        let shade = median(&mut shades);
        let visible = (0..n)
            .filter(|&i| self.textured[i] || (self.shade(i) - shade).abs() >= SHADE_SHIFT)
            .count()
            .max(1);
        let covered = (0..n)
            .filter(|&i| candidate[i] && (f64::from(means[i]) - shade).abs() <= BOARD_SHADES)
            .count();
        let revealed = (0..n)
            .filter(|&i| !thumb.flat()[i] && !self.textured[i])
            .count();
        Board {
            covered: covered as f64 / visible as f64,
            revealed: revealed as f64 / visible as f64,
        }
    }

    /// Correlation of the levels of the blocks no board could be hiding (`None` when fewer than
    /// a fifth of the blocks are left).
    fn rest_match(&self, thumb: &Thumb, mean_luma: f64) -> Option<f64> {
        let n = self.textured.len();
        let now = levels_of(thumb, mean_luma);
        let rest: Vec<usize> = (0..n).filter(|&i| !boarded(thumb, i)).collect();
        if rest.len() * 5 < n {
            return None;
        }
        let pick = |l: &[u8]| rest.iter().map(|&i| l[i]).collect::<Vec<u8>>();
        correlation(&pick(&self.levels), &pick(&now))
    }
}

#[cfg(test)]
impl Baseline {
    /// A baseline of these figures, its block maps empty (for the verdict's tests).
    pub(crate) fn of(
        mean_luma: f64,
        luma_std: f64,
        sharpness: f64,
        edge_width: Option<f64>,
    ) -> Self {
        Baseline {
            samples: 10,
            mean_luma,
            luma_std,
            sharpness,
            edged: edge_width.is_some(),
            edge_width,
            chroma: (128.0, 128.0),
            steady: 1.0,
            blocks: (0, 0),
            textured: String::new(),
            levels: String::new(),
            grid: (0, 0),
            reference: String::new(),
        }
    }
}

/// Each block's mean luma relative to the picture's (×64, at most 255): a board changes the
/// blocks it covers against the rest, a darker or tinted picture changes them all alike.
fn levels_of(thumb: &Thumb, mean_luma: f64) -> Vec<u8> {
    let mean = mean_luma.max(1.0);
    thumb
        .block_means()
        .iter()
        .map(|&b| (f64::from(b) * 64.0 / mean).round().min(255.0) as u8)
        .collect()
}

/// Whether block `i` looks covered: flat, and level with a flat neighbour — part of a board,
/// where a defocused scene still shades from block to block.
fn boarded(thumb: &Thumb, i: usize) -> bool {
    let (flat, means, (bw, bh)) = (thumb.flat(), thumb.block_means(), thumb.blocks());
    if !flat[i] {
        return false;
    }
    let (x, y) = (i % bw, i / bw);
    let level = |j: usize| flat[j] && means[i].abs_diff(means[j]) <= BOARD_STEP;
    (x > 0 && level(i - 1))
        || (x + 1 < bw && level(i + 1))
        || (y > 0 && level(i - bw))
        || (y + 1 < bh && level(i + bw))
}

/// The thumbnail reduced to the reference grid.
fn grid_of(thumb: &Thumb) -> (Vec<u8>, usize, usize) {
    let (w, h) = thumb.size();
    decimate(thumb.luma(), w, h, GRID_STEP)
}

/// How well two grids in three (the better ones) match `reference` at least.
fn steadiness(grids: &[Vec<u8>], reference: &[u8]) -> f64 {
    let mut fits: Vec<f64> = grids
        .iter()
        .map(|g| correlation(g, reference).unwrap_or(0.0))
        .collect();
    fits.sort_by(|a, b| b.total_cmp(a));
    fits.get((2 * fits.len()).div_ceil(3).max(1) - 1)
        .copied()
        .unwrap_or(0.0)
}

/// Pearson correlation of two equal-length grids (`None` when either has no structure).
fn correlation(a: &[u8], b: &[u8]) -> Option<f64> {
    if a.len() != b.len() || a.is_empty() {
        return None;
    }
    let n = a.len() as f64;
    let mean = |x: &[u8]| x.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let (ma, mb) = (mean(a), mean(b));
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (dx, dy) = (f64::from(x) - ma, f64::from(y) - mb);
        sab += dx * dy;
        saa += dx * dx;
        sbb += dy * dy;
    }
    let min = MIN_GRID_STD * MIN_GRID_STD * n;
    (saa >= min && sbb >= min).then(|| sab / (saa * sbb).sqrt())
}

fn median(x: &mut [f64]) -> f64 {
    x.sort_by(f64::total_cmp);
    match x.len() {
        0 => 0.0,
        n if n % 2 == 1 => x[n / 2],
        n => (x[n / 2 - 1] + x[n / 2]) / 2.0,
    }
}

fn pack(bits: &[bool]) -> Vec<u8> {
    bits.chunks(8)
        .map(|c| {
            c.iter()
                .enumerate()
                .fold(0u8, |a, (i, &b)| a | (u8::from(b) << i))
        })
        .collect()
}

fn unpack(bytes: &[u8], n: usize) -> Vec<bool> {
    (0..n)
        .map(|i| bytes.get(i / 8).is_some_and(|b| b >> (i % 8) & 1 == 1))
        .collect()
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video::vqd::tests::{against, learned, picture, scene};
    use crate::video::vqd::{measure, Check};

    /// A street-like scene: texture with large shapes, so that its layout can be matched.
    fn street(dx: u32) -> impl Fn(u32, u32) -> u8 {
        move |i, j| {
            let (i, j) = (i + dx, j);
            let shape = if (i / 80 + j / 60) % 3 == 0 { 90 } else { 0 };
            scene(i, j) / 2 + shape
        }
    }

    #[test]
    fn a_baseline_reads_back_as_it_was_kept() {
        let b = learned(&picture(640, 360, 128, 128, street(0)), 4);
        assert_eq!(b.samples, 4);
        let kept = serde_json::to_vec(&b).unwrap();
        assert_eq!(serde_json::from_slice::<Baseline>(&kept).unwrap(), b);
    }

    #[test]
    fn a_board_over_the_view_is_occluded_and_a_turned_view_has_changed() {
        let b = learned(&picture(640, 360, 128, 128, street(0)), 4);
        assert!(b.steady > 0.99, "a still view: {}", b.steady);
        assert_eq!(against(&picture(640, 360, 128, 128, street(0)), &b), vec![]);
        let street = street(0);
        let board = picture(640, 360, 128, 128, |i, j| {
            if i < 400 && j < 260 {
                120
            } else {
                street(i, j)
            }
        });
        assert_eq!(against(&board, &b), vec![Check::Occluded]);
        let turned = picture(640, 360, 128, 128, self::street(150));
        assert_eq!(against(&turned, &b), vec![Check::SceneChanged]);
    }

    #[test]
    fn a_dark_street_is_dark_only_against_itself() {
        let night = |i, j| 5 + street(0)(i, j) / 3;
        let normal = picture(640, 360, 128, 128, night);
        let b = learned(&normal, 3);
        assert!(b.mean_luma < 45.0, "{}", b.mean_luma);
        assert_eq!(against(&normal, &b), vec![]);
        let darker = picture(640, 360, 128, 128, |i, j| {
            (u16::from(night(i, j)) * 11 / 20) as u8
        });
        assert!(against(&darker, &b).contains(&Check::Underexposed));
    }

    #[test]
    fn black_samples_teach_nothing_and_another_size_starts_over() {
        let t = Thresholds::default();
        let mut l = Learner::new(2);
        let black = picture(640, 360, 128, 128, |i, j| 16 + ((i + j) % 3) as u8);
        let (m, thumb) = measure(&black, None);
        assert!(l.add(&m, &thumb, &t).is_none());
        assert_eq!(l.progress(), 0);
        let (m, thumb) = measure(&picture(320, 240, 128, 128, street(0)), None);
        assert!(l.add(&m, &thumb, &t).is_none());
        let (m, thumb) = measure(&picture(640, 360, 128, 128, street(0)), None);
        assert!(l.add(&m, &thumb, &t).is_none(), "started over");
        let b = l.add(&m, &thumb, &t).expect("learned");
        let (m, small) = measure(&picture(320, 240, 128, 128, street(0)), None);
        assert_eq!(b.compare(&m, &small, &t), None, "another size");
    }

    #[test]
    fn a_view_that_never_holds_still_is_not_matched() {
        let t = Thresholds::default();
        let mut l = Learner::new(4);
        let b = (0..4u32)
            .find_map(|k| {
                let p = picture(640, 360, 128, 128, move |i, j| {
                    scene(i * 7 + k * 131, j + k * 57)
                });
                let (m, thumb) = measure(&p, None);
                l.add(&m, &thumb, &t)
            })
            .expect("learned");
        assert!(b.steady < MIN_STEADY, "{}", b.steady);
        let p = picture(640, 360, 128, 128, street(0));
        let (m, thumb) = measure(&p, None);
        assert_eq!(b.compare(&m, &thumb, &t).unwrap().view_match, None);
    }

    /// A baseline learned from pictures drawn by `view(k)` for sample k.
    fn learned_from<F: Fn(u32, u32) -> u8>(n: u32, view: impl Fn(u32) -> F) -> Baseline {
        let t = Thresholds::default();
        let mut l = Learner::new(n as usize);
        (0..n)
            .find_map(|k| {
                let (m, thumb) = measure(&picture(640, 360, 128, 128, view(k)), None);
                l.add(&m, &thumb, &t)
            })
            .expect("learned")
    }

    #[test]
    fn one_odd_learning_sample_does_not_cost_a_still_view_its_scene_check() {
        // a bus fills the view in one sample of three
        let b = learned_from(3, |k| {
            let street = street(0);
            move |i, j| if k == 1 && i < 500 { 200 } else { street(i, j) }
        });
        assert!(b.steady >= MIN_STEADY, "{}", b.steady);
        assert_eq!(against(&picture(640, 360, 128, 128, street(0)), &b), vec![]);
        let turned = picture(640, 360, 128, 128, street(150));
        assert_eq!(against(&turned, &b), vec![Check::SceneChanged]);
    }

    #[test]
    fn a_view_that_turns_between_two_presets_is_not_matched() {
        let b = learned_from(6, |k| street(if k % 2 == 0 { 0 } else { 150 }));
        assert!(b.steady < MIN_STEADY, "{}", b.steady);
        let (m, thumb) = measure(&picture(640, 360, 128, 128, street(0)), None);
        let t = Thresholds::default();
        assert_eq!(b.compare(&m, &thumb, &t).unwrap().view_match, None);
    }
}
