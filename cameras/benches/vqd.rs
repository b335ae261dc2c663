//! Cost of one picture sample — decode a keyframe, take its planes, run every check — and of a
//! JPEG snapshot, at 640×360 and 1920×1080. The checks run against a baseline learned from the
//! same scene, as they do once a camera's is learned. The keyframes are real H.264 IDR frames (libx264 at
//! constant QP 20) of a synthetic street-like scene: gradients, edges and texture.
//!
//! `cargo bench -p cameras --bench vqd`

use cameras::video::baseline::{Baseline, Learner};
use cameras::video::decode::{self, Picture};
use cameras::video::vqd;
use cameras::video::VideoCodec;
use criterion::{criterion_group, criterion_main, Criterion};

fn scene(w: u32, h: u32) -> Picture {
    let mut y = Vec::with_capacity((w * h) as usize);
    for j in 0..h {
        for i in 0..w {
            let (x, z) = (i as f64 / w as f64, j as f64 / h as f64);
            // sky gradient, buildings (blocks with windows), textured road
            let v = if z < 0.35 {
                150.0 + 60.0 * z
            } else if z < 0.7 {
                let building = ((x * 9.0) as u32 % 3) as f64 * 25.0 + 60.0;
                let window = ((i / (w / 64).max(1)).is_multiple_of(3)
                    && (j / (h / 36).max(1)).is_multiple_of(2)) as u32;
                building + window as f64 * 90.0
            } else {
                let hsh = (i.wrapping_mul(2654435761) ^ j.wrapping_mul(40503)) % 23;
                70.0 + hsh as f64 + 30.0 * ((x * 40.0).sin() > 0.9) as u32 as f64
            };
            y.push(v.clamp(16.0, 235.0) as u8);
        }
    }
    let c = (w.div_ceil(2) * h.div_ceil(2)) as usize;
    Picture {
        width: w,
        height: h,
        y,
        u: (0..c).map(|k| 118 + (k % 17) as u8).collect(),
        v: (0..c).map(|k| 124 + (k % 13) as u8).collect(),
    }
}

fn bench(c: &mut Criterion) {
    for (w, h) in [(640u32, 360u32), (1920, 1080)] {
        let original = scene(w, h);
        let au = decode::encode_keyframe(&original, VideoCodec::H264).expect("libx264");
        let (_, previous) = vqd::measure(&original, None);
        let thresholds = vqd::Thresholds::default();
        let mut learner = Learner::new(3);
        let baseline = (0..3)
            .find_map(|_| {
                let (m, thumb) = vqd::measure(&original, None);
                learner.add(&m, &thumb, &thresholds)
            })
            .expect("learned");
        let diagnose = |p: &Picture, baseline: &Baseline| {
            let (mut m, thumb) = vqd::measure(p, Some(&previous));
            if let Some(v) = baseline.compare(&m, &thumb, &thresholds) {
                m.set_versus(&v);
            }
            vqd::failing(&m, Some(baseline), &thresholds)
        };
        eprintln!("{w}x{h}: keyframe of {} KiB", au.len() / 1024);
        c.bench_function(&format!("sample {w}x{h}: decode + diagnose"), |b| {
            b.iter(|| {
                let d = decode::decode_bytes(VideoCodec::H264, &au).expect("decodes");
                let p = decode::picture(&d).expect("planes");
                diagnose(&p, &baseline)
            })
        });
        let d = decode::decode_bytes(VideoCodec::H264, &au).expect("decodes");
        let p = decode::picture(&d).expect("planes");
        c.bench_function(&format!("sample {w}x{h}: diagnose only"), |b| {
            b.iter(|| diagnose(&p, &baseline))
        });
        c.bench_function(
            &format!("snapshot {w}x{h}: decode + JPEG (≤ 1280 wide)"),
            |b| {
                b.iter(|| {
                    let d = decode::decode_bytes(VideoCodec::H264, &au).expect("decodes");
                    decode::jpeg(&d, Some(1280), 5).expect("jpeg")
                })
            },
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = bench
}
criterion_main!(benches);
