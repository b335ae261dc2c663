//! The picture checks on the reduced labelled scene set (360p, every scene and fault; the full
//! set is `gwbench scenes --full`): the checks that reach the targets — 0.95 precision, 0.90
//! recall — must keep them, and no clean scene may be called blurred. docs/video.md lists what
//! does not hold yet.

use cameras::video::vqd::{Check, Thresholds};
use gateway_sim::scenes;

#[test]
fn black_overexposed_and_frozen_meet_their_targets_and_no_clean_scene_is_blurred() {
    gateway_sim::harness::require("ffmpeg", "ffmpeg").unwrap_or_else(|e| panic!("{e}"));
    let samples = scenes::judge_all(&scenes::plan(false), &Thresholds::default());
    let report = scenes::report(&samples, false);
    assert!(
        samples.len() >= 100,
        "only {} samples\n{report}",
        samples.len()
    );
    let scores = scenes::scores(&samples);
    // no clean scene is called blurred (occluded: not yet — a dark sky and a plain gradient
    // still read as covered, see docs/video.md)
    let blurred: Vec<_> = samples
        .iter()
        .filter(|x| x.fault == scenes::Fault::Clean && x.got.contains(&Check::Blurred))
        .map(|x| x.scene)
        .collect();
    assert!(
        blurred.is_empty(),
        "clean scenes called blurred: {blurred:?}\n{report}"
    );
    for check in [Check::Black, Check::Overexposed, Check::Frozen] {
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
