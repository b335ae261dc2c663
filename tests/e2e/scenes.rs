//! The picture checks on the reduced labelled scene set (360p, every scene and fault, each scene
//! judged against the baseline learned from its clean frames; the full set is
//! `gwbench scenes --full`): every check must reach the targets — 0.95 precision, 0.90 recall —
//! and no clean scene may be called blurred or occluded. docs/video.md has the figures.

use cameras::video::vqd::{Check, Thresholds};
use gateway_sim::scenes;

#[test]
fn every_check_meets_its_targets_and_no_clean_scene_is_blurred_or_occluded() {
    gateway_sim::harness::require("ffmpeg", "ffmpeg").unwrap_or_else(|e| panic!("{e}"));
    let samples = scenes::judge_all(&scenes::plan(scenes::SCENES, false), &Thresholds::default());
    let report = scenes::report(&samples, false);
    assert!(
        samples.len() >= 100,
        "only {} samples\n{report}",
        samples.len()
    );
    let scores = scenes::scores(&samples);
    let wrong: Vec<_> = samples
        .iter()
        .filter(|x| x.fault == scenes::Fault::Clean)
        .filter(|x| x.got.contains(&Check::Blurred) || x.got.contains(&Check::Occluded))
        .map(|x| x.scene)
        .collect();
    assert!(
        wrong.is_empty(),
        "clean scenes called blurred or occluded: {wrong:?}\n{report}"
    );
    for check in Check::ALL {
        let s = scores[&check];
        assert!(
            s.true_pos > 0 && s.precision() >= 0.95 && s.recall() >= 0.90,
            "{}: precision {:.3}, recall {:.3}\n{report}",
            check.as_str(),
            s.precision(),
            s.recall()
        );
    }
}
