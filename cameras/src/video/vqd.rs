//! Video quality diagnosis on a decoded picture's planes — pure: a picture (and the previous
//! sample's thumbnail) in, measured values and failing checks out. No image library: the
//! measures are a few passes over the luma plane, decimated to at most 640 pixels wide so
//! that thresholds mean the same at every resolution, and one pass over the chroma planes.

use super::baseline::Versus;
use super::decode::Picture;
pub use super::verdict::failing;
use serde::Serialize;

pub use alerts::camera::PictureCheck as Check;

/// Thresholds of the checks (luma and chroma in 8-bit code values).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Black when the mean luma is under this …
    pub black_luma: f64,
    /// … and its standard deviation under this.
    pub black_std: f64,
    /// Underexposed under this mean luma.
    pub dark_luma: f64,
    /// Overexposed over this mean luma.
    pub bright_luma: f64,
    /// Low contrast under this luma standard deviation.
    pub min_contrast: f64,
    /// Occluded when at least this share of the picture's blocks is flat.
    pub max_uniform: f64,
    /// Blurred when the strong edges' mean rise is wider than this (pixels at ≤ 640 wide) …
    pub max_edge_width: f64,
    /// … or, for a picture without strong edges, under this variance of the Laplacian.
    pub min_sharpness: f64,
    /// Frozen when at most this share of the thumbnail changed since the previous sample.
    pub max_frozen_change: f64,
    /// Colour cast when the mean chroma is this far from neutral …
    pub cast_distance: f64,
    /// … and this many times the chroma spread around it.
    pub cast_ratio: f64,
    /// Occluded (against the camera's baseline) when at least this share of the picture's
    /// blocks looks covered: level with their neighbours where they were not.
    pub max_covered: f64,
    /// Colour cast (against the camera's baseline) when the mean chroma moved this far from
    /// the camera's normal.
    pub cast_shift: f64,
    /// The view moved (`scene_changed`) when its coarse layout correlates with the baseline's
    /// less than this.
    pub min_view_match: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            black_luma: 28.0,
            black_std: 8.0,
            dark_luma: 45.0,
            bright_luma: 215.0,
            min_contrast: 12.0,
            max_uniform: 0.9,
            max_edge_width: 3.0,
            min_sharpness: 40.0,
            max_frozen_change: 0.0005,
            cast_distance: 24.0,
            cast_ratio: 1.5,
            max_covered: 0.3,
            cast_shift: 13.0,
            min_view_match: 0.5,
        }
    }
}

/// Measured values of one sample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Measures {
    /// Mean luma (0–255).
    pub mean_luma: f64,
    /// Luma standard deviation.
    pub luma_std: f64,
    /// Share of 16×16 blocks (at ≤ 640 wide) whose luma is flat.
    pub uniform_ratio: f64,
    /// Variance of the 4-neighbour Laplacian (at ≤ 640 wide).
    pub sharpness: f64,
    /// Mean 10–90 % rise width in pixels (at ≤ 640 wide) of the picture's strong edges: about
    /// 1–2.5 for a sharp picture, growing with defocus; `None` when it has too few strong edges
    /// to judge (a bare wall, a plain gradient, a heavy blur).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edge_width: Option<f64>,
    /// Distance of the mean chroma from neutral.
    pub cast_distance: f64,
    /// That distance over the mean chroma spread.
    pub cast_ratio: f64,
    /// Mean chroma (Cb, Cr).
    #[serde(skip)]
    pub chroma: (f64, f64),
    /// Share of thumbnail pixels that changed since the previous sample (none for the first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changed_ratio: Option<f64>,
    /// Share of the blocks with detail in the camera's baseline that are flat now (none
    /// without a baseline, or when the baseline has too little detail).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub covered_ratio: Option<f64>,
    /// Share of the blocks with detail now where the baseline had none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revealed_ratio: Option<f64>,
    /// How well the uncovered part of the view matches the baseline's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rest_match: Option<f64>,
    /// How well the picture's coarse layout matches the baseline's (1: the same view; none
    /// without a baseline, or when the view never holds still).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub view_match: Option<f64>,
    /// Distance of the mean chroma from the baseline's (none without a baseline).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chroma_shift: Option<f64>,
}

impl Measures {
    /// Takes in what the sample shows against its camera's baseline.
    pub fn set_versus(&mut self, v: &Versus) {
        self.covered_ratio = v.covered_ratio;
        self.revealed_ratio = v.revealed_ratio;
        self.rest_match = v.rest_match;
        self.view_match = v.view_match;
        self.chroma_shift = Some(v.chroma_shift);
    }
}

/// What is kept of a sample for the next one and for the camera's baseline: a small luma
/// picture (at most 160 pixels wide, for the frozen check and the view's layout) and which
/// 16×16 blocks are flat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thumb {
    width: usize,
    height: usize,
    data: Vec<u8>,
    blocks: (usize, usize),
    flat: Vec<bool>,
    block_means: Vec<u8>,
}

impl Thumb {
    /// Width and height of the luma picture.
    pub fn size(&self) -> (usize, usize) {
        (self.width, self.height)
    }
    /// The luma picture, row by row.
    pub fn luma(&self) -> &[u8] {
        &self.data
    }
    /// Blocks across and down.
    pub fn blocks(&self) -> (usize, usize) {
        self.blocks
    }
    /// Whether each block is flat, row by row.
    pub fn flat(&self) -> &[bool] {
        &self.flat
    }
    /// Each block's mean luma, row by row.
    pub fn block_means(&self) -> &[u8] {
        &self.block_means
    }
}

/// Box-averages `src` (`w × h`) by `f` in both directions.
pub(crate) fn decimate(src: &[u8], w: usize, h: usize, f: usize) -> (Vec<u8>, usize, usize) {
    if f <= 1 {
        return (src.to_vec(), w, h);
    }
    let (ow, oh) = (w / f, h / f);
    let mut sums = vec![0u32; ow];
    let mut out = Vec::with_capacity(ow * oh);
    let n = (f * f) as u32;
    for by in 0..oh {
        sums.fill(0);
        for row in src[by * f * w..(by + 1) * f * w].chunks_exact(w) {
            for (s, px) in sums.iter_mut().zip(row.chunks_exact(f)) {
                *s += px.iter().map(|&p| u32::from(p)).sum::<u32>();
            }
        }
        out.extend(sums.iter().map(|&s| ((s + n / 2) / n) as u8));
    }
    (out, ow, oh)
}

/// Pixels of the work picture (luma at ≤ 640 wide).
const WORK_WIDTH: usize = 640;
/// Thumbnail width bound.
const THUMB_WIDTH: usize = 160;
/// Block size of the uniformity measure.
const BLOCK: usize = 16;
/// A block is flat under this luma standard deviation.
const FLAT_STD: f64 = 3.0;
/// A thumbnail pixel changed when it moved by more than this (low enough that a clock's digits
/// still count when the picture is soft).
const CHANGE_LEVEL: i16 = 3;

/// An edge is a local maximum of the luma step `|I(x+1) − I(x−1)|` of at least this, whose whole
/// rise is at least as much …
const EDGE_STEP: i32 = 16;
/// … and a picture with fewer edges than this share of the pixels looked at has too few to judge.
const MIN_EDGES: f64 = 0.001;
/// An edge's rise is followed this far each way at most.
const MAX_EDGE_WIDTH: usize = 16;

/// The mean 10–90 % rise width of the strong edges along every other row and column (see
/// [`Measures::edge_width`]): from each edge the luma is followed both ways while it keeps
/// rising, and the distance between where it crosses 10 % and 90 % of that rise is its width.
/// A sharp picture with few edges — colour bars, a wall with a door — stays sharp, where the
/// variance of the Laplacian reads low.
fn edge_width(work: &[u8], ww: usize, wh: usize) -> Option<f64> {
    if ww < 8 || wh < 8 {
        return None;
    }
    let (mut sum, mut n, mut looked) = (0f64, 0usize, 0usize);
    for y in (0..wh).step_by(2) {
        edges_along(&work[y * ww..(y + 1) * ww], &mut sum, &mut n);
        looked += ww;
    }
    let mut column = vec![0u8; wh];
    for x in (0..ww).step_by(2) {
        for (y, c) in column.iter_mut().enumerate() {
            *c = work[y * ww + x];
        }
        edges_along(&column, &mut sum, &mut n);
        looked += wh;
    }
    (n as f64 >= looked as f64 * MIN_EDGES && n > 0).then(|| sum / n as f64)
}

/// Adds the rise widths of the strong edges along one line of luma to `sum`, counting them.
fn edges_along(line: &[u8], sum: &mut f64, n: &mut usize) {
    let px = |x: usize| i32::from(line[x]);
    let step = |x: usize| px(x + 1) - px(x - 1);
    for x in 2..line.len() - 2 {
        let g = step(x);
        if g.abs() < EDGE_STEP || g.abs() < step(x - 1).abs() || g.abs() < step(x + 1).abs() {
            continue;
        }
        let up = g.signum();
        let (mut a, mut b) = (x, x);
        while a > 0 && x - a < MAX_EDGE_WIDTH && (px(a) - px(a - 1)) * up > 0 {
            a -= 1;
        }
        while b + 1 < line.len() && b - x < MAX_EDGE_WIDTH && (px(b + 1) - px(b)) * up > 0 {
            b += 1;
        }
        let (lo, rise) = (px(a) * up, f64::from((px(b) - px(a)) * up));
        if rise < f64::from(EDGE_STEP) {
            continue;
        }
        // where the luma crosses 10 % and 90 % of the rise, interpolated
        let cross = |frac: f64| {
            let level = f64::from(lo) + rise * frac;
            (a..b)
                .find_map(|i| {
                    let (v0, v1) = (f64::from(px(i) * up), f64::from(px(i + 1) * up));
                    (v1 >= level).then(|| i as f64 + (level - v0) / (v1 - v0).max(1e-9))
                })
                .unwrap_or(b as f64)
        };
        *sum += cross(0.9) - cross(0.1);
        *n += 1;
    }
}

/// Measures a picture; `previous` is the last sample's thumbnail.
pub fn measure(p: &Picture, previous: Option<&Thumb>) -> (Measures, Thumb) {
    let (w, h) = (p.width as usize, p.height as usize);
    let (work, ww, wh) = decimate(&p.y, w, h, w.div_ceil(WORK_WIDTH).max(1));
    let n = (ww * wh).max(1) as f64;
    let (sum, sq) = work.iter().fold((0u64, 0u64), |(s, q), &v| {
        (s + u64::from(v), q + u64::from(v) * u64::from(v))
    });
    let mean = sum as f64 / n;
    let std = (sq as f64 / n - mean * mean).max(0.0).sqrt();

    // flat blocks
    let (bx, by) = (ww / BLOCK, wh / BLOCK);
    let mut flat_blocks = Vec::with_capacity(bx * by);
    let mut block_means = Vec::with_capacity(bx * by);
    for j in 0..by {
        for i in 0..bx {
            let (mut s, mut q) = (0u32, 0u32);
            for y in j * BLOCK..(j + 1) * BLOCK {
                for &v in &work[y * ww + i * BLOCK..y * ww + (i + 1) * BLOCK] {
                    s += u32::from(v);
                    q += u32::from(v) * u32::from(v);
                }
            }
            let k = (BLOCK * BLOCK) as f64;
            let m = f64::from(s) / k;
            block_means.push(m.round() as u8);
            flat_blocks.push((f64::from(q) / k - m * m).max(0.0).sqrt() < FLAT_STD);
        }
    }
    let uniform_ratio = if bx * by == 0 {
        1.0
    } else {
        flat_blocks.iter().filter(|&&f| f).count() as f64 / (bx * by) as f64
    };

    // variance of the Laplacian over the interior
    let (mut ls, mut lq, mut ln) = (0i64, 0i64, 0i64);
    for y in 1..wh.saturating_sub(1) {
        let (up, row, down) = (
            &work[(y - 1) * ww..y * ww],
            &work[y * ww..(y + 1) * ww],
            &work[(y + 1) * ww..(y + 2) * ww],
        );
        for x in 1..ww.saturating_sub(1) {
            let l = 4 * i64::from(row[x])
                - i64::from(row[x - 1])
                - i64::from(row[x + 1])
                - i64::from(up[x])
                - i64::from(down[x]);
            ls += l;
            lq += l * l;
            ln += 1;
        }
    }
    let sharpness = if ln == 0 {
        0.0
    } else {
        let m = ls as f64 / ln as f64;
        lq as f64 / ln as f64 - m * m
    };

    let edge_width = edge_width(&work, ww, wh);

    // colour cast: mean chroma against its spread (about 16,000 chroma samples are plenty)
    let step = (p.u.len() / 16_384).max(1);
    let (mut su, mut sv, mut cn) = (0u64, 0u64, 0u64);
    for (u, v) in p.u.iter().zip(&p.v).step_by(step) {
        su += u64::from(*u);
        sv += u64::from(*v);
        cn += 1;
    }
    let cn = cn.max(1) as f64;
    let (mu, mv) = (su as f64 / cn, sv as f64 / cn);
    let spread =
        p.u.iter()
            .zip(&p.v)
            .step_by(step)
            .map(|(u, v)| {
                let (du, dv) = (f64::from(*u) - mu, f64::from(*v) - mv);
                (du * du + dv * dv).sqrt()
            })
            .sum::<f64>()
            / cn;
    let cast_distance = (mu - 128.0).hypot(mv - 128.0);
    let cast_ratio = cast_distance / spread.max(1.0);

    let (t, tw, th) = decimate(&work, ww, wh, ww.div_ceil(THUMB_WIDTH).max(1));
    let thumb = Thumb {
        width: tw,
        height: th,
        data: t,
        blocks: (bx, by),
        flat: flat_blocks,
        block_means,
    };
    let changed_ratio = previous
        .filter(|prev| prev.width == tw && prev.height == th)
        .map(|prev| {
            let changed = prev
                .data
                .iter()
                .zip(&thumb.data)
                .filter(|(a, b)| (i16::from(**a) - i16::from(**b)).abs() > CHANGE_LEVEL)
                .count();
            changed as f64 / thumb.data.len().max(1) as f64
        });
    (
        Measures {
            mean_luma: mean,
            luma_std: std,
            uniform_ratio,
            sharpness,
            edge_width,
            cast_distance,
            cast_ratio,
            chroma: (mu, mv),
            changed_ratio,
            covered_ratio: None,
            revealed_ratio: None,
            rest_match: None,
            view_match: None,
            chroma_shift: None,
        },
        thumb,
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::video::baseline::{Baseline, Learner};

    /// A picture from a luma function and constant chroma.
    pub(crate) fn picture(w: u32, h: u32, u: u8, v: u8, luma: impl Fn(u32, u32) -> u8) -> Picture {
        let mut y = Vec::with_capacity((w * h) as usize);
        for j in 0..h {
            for i in 0..w {
                y.push(luma(i, j));
            }
        }
        let c = (w.div_ceil(2) * h.div_ceil(2)) as usize;
        Picture {
            width: w,
            height: h,
            y,
            u: vec![u; c],
            v: vec![v; c],
        }
    }

    /// Busy, high-contrast texture (a street scene stands in for it).
    pub(crate) fn scene(i: u32, j: u32) -> u8 {
        let h = (i.wrapping_mul(2654435761) ^ j.wrapping_mul(40503)).rotate_left(7);
        (40 + (h % 170) / 2 + ((i / 9 + j / 7) % 2) * 80) as u8
    }

    /// The scene in the left 48 columns only; the rest a uniform grey board.
    fn covered() -> Picture {
        picture(
            640,
            360,
            128,
            128,
            |i, j| if i < 48 { scene(i, j) } else { 90 },
        )
    }

    fn checks(p: &Picture, prev: Option<&Thumb>) -> Vec<Check> {
        failing(&measure(p, prev).0, None, &Thresholds::default())
    }

    #[test]
    fn a_good_picture_passes_and_black_is_only_black() {
        let good = picture(640, 360, 128, 128, scene);
        assert_eq!(checks(&good, None), vec![]);
        let black = picture(640, 360, 128, 128, |i, j| 16 + ((i + j) % 3) as u8);
        assert_eq!(checks(&black, None), vec![Check::Black]);
        let (_, t) = measure(&black, None);
        assert_eq!(
            checks(&black, Some(&t)),
            vec![Check::Black],
            "not also frozen"
        );
    }

    #[test]
    fn exposure_contrast_and_occlusion() {
        let dark = picture(320, 240, 128, 128, |i, j| scene(i, j) / 5);
        assert!(checks(&dark, None).contains(&Check::Underexposed));
        let bright = picture(320, 240, 128, 128, |i, j| 200 + scene(i, j) / 5);
        assert!(checks(&bright, None).contains(&Check::Overexposed));
        let grey = picture(320, 240, 128, 128, |i, j| 120 + scene(i, j) / 40);
        assert_eq!(checks(&grey, None), vec![Check::LowContrast]);
        assert_eq!(checks(&covered(), None), vec![Check::Occluded]);
    }

    /// The baseline learned from `n` samples of `p`.
    pub(crate) fn learned(p: &Picture, n: usize) -> Baseline {
        let mut l = Learner::new(n);
        let t = Thresholds::default();
        (0..n)
            .find_map(|_| {
                let (m, thumb) = measure(p, None);
                l.add(&m, &thumb, &t)
            })
            .expect("learned")
    }

    /// The checks of `p` against `b`.
    pub(crate) fn against(p: &Picture, b: &Baseline) -> Vec<Check> {
        let (mut m, thumb) = measure(p, None);
        let v = b
            .compare(&m, &thumb, &Thresholds::default())
            .expect("same size");
        m.set_versus(&v);
        failing(&m, Some(b), &Thresholds::default())
    }

    #[test]
    fn an_edgeless_picture_is_blurred_only_against_a_baseline_with_detail() {
        for (w, h) in [(640, 360), (1920, 1080)] {
            // soft gradients: no edges — a plain view, or a detailed one defocused
            let soft = picture(w, h, 128, 128, |i, j| {
                (60.0 + 60.0 * ((i as f64 / 97.0).sin() + (j as f64 / 71.0).cos())) as u8
            });
            assert_eq!(checks(&soft, None), vec![], "{w}x{h}: cannot tell alone");
            let sharp = picture(w, h, 128, 128, scene);
            assert_eq!(checks(&sharp, None), vec![], "{w}x{h}");
            let b = learned(&sharp, 3);
            assert_eq!(against(&sharp, &b), vec![], "{w}x{h}");
            assert_eq!(against(&soft, &b), vec![Check::Blurred], "{w}x{h}");
            let plain = learned(&soft, 3);
            assert_eq!(against(&soft, &plain), vec![], "{w}x{h}: plain by nature");
        }
    }

    #[test]
    fn colour_bars_are_sharp_and_judged_on_their_edges_and_soft_bars_are_blurred() {
        // eight bars shaded top to bottom (so no 16×16 block is flat): few edges and a low
        // Laplacian, yet sharp
        let noise = |_: u32, j: u32| {
            let t = j % 60;
            ((if t < 30 { t } else { 60 - t }) * 4 / 5) as u8
        };
        let bar = |i: u32| [210u8, 150, 90, 30][(i / 160) as usize];
        let bars = picture(640, 360, 128, 128, |i, j| bar(i) + noise(i, j));
        let (m, _) = measure(&bars, None);
        assert!(m.sharpness < Thresholds::default().min_sharpness, "{m:?}");
        assert!(m.edge_width.is_some_and(|w| w < 1.5), "{m:?}");
        assert_eq!(checks(&bars, None), vec![]);
        // the same bars defocused: each edge a 6-pixel ramp
        let soft = picture(640, 360, 128, 128, |i, j| {
            let (a, b) = (bar(i.saturating_sub(3)), bar((i + 3).min(639)));
            let t = (i + 3) % 160;
            let v = if a == b || t >= 6 {
                bar(i)
            } else {
                (f64::from(a) + (f64::from(b) - f64::from(a)) * f64::from(t) / 6.0) as u8
            };
            v + noise(i, j)
        });
        let (m, _) = measure(&soft, None);
        assert!(m.edge_width.is_some_and(|w| w > 3.0), "{m:?}");
        assert_eq!(checks(&soft, None), vec![Check::Blurred]);
    }

    #[test]
    fn frozen_needs_an_unchanged_picture_and_a_small_change_is_motion() {
        let a = picture(640, 360, 128, 128, scene);
        let (_, ta) = measure(&a, None);
        assert_eq!(checks(&a, Some(&ta)), vec![Check::Frozen]);
        // a clock overlay changing two digits (24×32 pixels) is not frozen
        let b = picture(640, 360, 128, 128, |i, j| {
            if (560..584).contains(&i) && (8..40).contains(&j) {
                255 - scene(i, j)
            } else {
                scene(i, j)
            }
        });
        assert_eq!(checks(&b, Some(&ta)), vec![]);
        // a covered lens does not change either, but it is covered, not frozen
        let (_, tc) = measure(&covered(), None);
        assert_eq!(checks(&covered(), Some(&tc)), vec![Check::Occluded]);
        // a different size (the camera was reconfigured) says nothing about freezing
        let c = picture(320, 240, 128, 128, scene);
        assert_eq!(checks(&c, Some(&ta)), vec![]);
    }

    #[test]
    fn tiny_and_empty_pictures_do_not_panic() {
        for (w, h) in [(0, 0), (0, 5), (1, 1), (1, 5), (5, 1), (2, 2), (3, 3)] {
            let p = picture(w, h, 128, 128, |_, _| 100);
            let (m, _) = measure(&p, None);
            assert!(
                m.mean_luma.is_finite() && m.sharpness.is_finite(),
                "{w}x{h}"
            );
        }
    }

    #[test]
    fn colour_cast_needs_a_shift_of_the_whole_picture() {
        let pink = picture(320, 240, 170, 190, scene);
        assert_eq!(checks(&pink, None), vec![Check::ColorCast]);
        // a colourful scene whose mean is off neutral but spread widely is fine
        let mut colourful = picture(320, 240, 0, 0, scene);
        for (k, (u, v)) in colourful
            .u
            .iter_mut()
            .zip(colourful.v.iter_mut())
            .enumerate()
        {
            *u = [40, 220, 150, 90][k % 4];
            *v = [200, 60, 170, 110][k % 4];
        }
        assert_eq!(checks(&colourful, None), vec![]);
    }
}
