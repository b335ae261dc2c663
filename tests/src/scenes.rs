//! A labelled scene set for the picture checks, generated at run time (nothing downloaded):
//! varied content rendered by ffmpeg's sources, each clean and with each fault at graded
//! strengths, at 360p, 720p and 1080p, then through the real encoder (libx264, an IDR frame) and
//! the real decode path into the checks. Each sample carries what a person would say of it;
//! samples a person could call either way (a slight blur, a quarter of the view covered) are left
//! out rather than labelled by the measure. Each scene at each size is a camera: its baseline is
//! learned from its clean frames first, as the gateway learns a camera's over its first samples.

use cameras::video::baseline::{Baseline, Learner};
use cameras::video::decode::{self, Picture};
use cameras::video::vqd::{self, Check, Thresholds};
use cameras::video::VideoCodec;
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// A scene: an ffmpeg source graph (`{w}`, `{h}` replaced), and whether it moves by itself.
#[derive(Debug, Clone, Copy)]
pub struct Scene {
    /// Short name.
    pub name: &'static str,
    /// The lavfi graph.
    pub graph: &'static str,
    /// Whether two frames a second apart differ (for the frozen pairs).
    pub moving: bool,
}

/// The scenes: test patterns and fractals, and the low-texture views real cameras have (a wall
/// with a door, a corridor, a night street with a few lights), each with sensor noise and the
/// on-screen clock nearly every camera in China shows.
pub const SCENES: &[Scene] = &[
    Scene { name: "testsrc2", graph: "testsrc2=size={w}x{h}:rate=25", moving: true },
    Scene { name: "smptebars", graph: "smptebars=size={w}x{h}:rate=25", moving: false },
    Scene { name: "smptehdbars", graph: "smptehdbars=size={w}x{h}:rate=25", moving: false },
    Scene { name: "mandelbrot", graph: "mandelbrot=size={w}x{h}:rate=25", moving: true },
    Scene { name: "life", graph: "life=size={w}x{h}:rate=25:mold=10:ratio=0.3:seed=7:life_color=#e0e0e0:death_color=#303030", moving: true },
    Scene { name: "cellauto", graph: "cellauto=size={w}x{h}:rate=25:rule=30:seed=7", moving: true },
    Scene {
        name: "sky",
        graph: "nullsrc=size={w}x{h}:rate=25,format=yuv420p,geq=lum='200-110*Y/H':cb='150-16*Y/H':cr=120,noise=alls=3:allf=t,drawtext=timecode='08\\:00\\:00\\:00':rate=25:fontcolor=white:fontsize=h/18:x=w*0.68:y=h*0.04",
        moving: true,
    },
    Scene {
        name: "wall-door",
        graph: "color=c=0xb4ab95:size={w}x{h}:rate=25,drawbox=x=iw*0.38:y=ih*0.18:w=iw*0.22:h=ih*0.82:c=0x4a3b2a:t=ih*0.03,drawbox=x=iw*0.405:y=ih*0.21:w=iw*0.17:h=ih*0.79:c=0x8a6f50:t=fill,noise=alls=4:allf=t,drawtext=timecode='08\\:00\\:00\\:00':rate=25:fontcolor=white:fontsize=h/18:x=w*0.68:y=h*0.04",
        moving: true,
    },
    Scene {
        name: "corridor",
        graph: "color=c=0x9a9a96:size={w}x{h}:rate=25,drawbox=x=0:y=ih*0.7:w=iw:h=ih*0.3:c=0x5c5a55:t=fill,drawbox=x=iw*0.3:y=ih*0.25:w=iw*0.4:h=ih*0.45:c=0x2a2a2a:t=fill,drawbox=x=iw*0.3:y=ih*0.25:w=iw*0.4:h=ih*0.45:c=0xd8d8d0:t=ih*0.01,noise=alls=5:allf=t,drawtext=timecode='08\\:00\\:00\\:00':rate=25:fontcolor=white:fontsize=h/18:x=w*0.68:y=h*0.04",
        moving: true,
    },
    Scene {
        name: "night",
        graph: "color=c=0x141618:size={w}x{h}:rate=25,drawbox=x=iw*0.1:y=ih*0.3:w=iw*0.02:h=ih*0.03:c=0xfff0c0:t=fill,drawbox=x=iw*0.45:y=ih*0.28:w=iw*0.02:h=ih*0.03:c=0xfff0c0:t=fill,drawbox=x=iw*0.8:y=ih*0.32:w=iw*0.02:h=ih*0.03:c=0xfff0c0:t=fill,drawbox=x=0:y=ih*0.75:w=iw:h=ih*0.25:c=0x2a2c30:t=fill,noise=alls=6:allf=t,drawtext=timecode='08\\:00\\:00\\:00':rate=25:fontcolor=white:fontsize=h/18:x=w*0.68:y=h*0.04",
        moving: true,
    },
];

/// Scenes kept out of the tuning: judged with the thresholds the scenes above set, they show
/// what the checks make of pictures they were not fitted to (`gwbench scenes --holdout`).
pub const HOLDOUT: &[Scene] = &[
    Scene { name: "colorchart", graph: "colorchart=rate=25:patch_size=80x80,scale={w}:{h}:flags=neighbor", moving: false },
    Scene { name: "sierpinski", graph: "sierpinski=size={w}x{h}:rate=25:seed=7", moving: true },
    Scene { name: "testsrc", graph: "testsrc=size={w}x{h}:rate=25", moving: true },
    Scene { name: "pal75bars", graph: "pal75bars=size={w}x{h}:rate=25", moving: false },
    Scene { name: "gst-pinwheel", graph: "gst:pinwheel", moving: false },
    Scene { name: "gst-spokes", graph: "gst:spokes", moving: false },
    Scene { name: "gst-circular", graph: "gst:circular", moving: false },
    Scene {
        name: "parking",
        graph: "color=c=0x55585c:size={w}x{h}:rate=25,drawbox=x=iw*0.05:y=ih*0.55:w=iw*0.9:h=ih*0.01:c=white:t=fill,drawbox=x=iw*0.05:y=ih*0.85:w=iw*0.9:h=ih*0.01:c=white:t=fill,drawbox=x=iw*0.2:y=ih*0.56:w=iw*0.005:h=ih*0.29:c=white:t=fill,drawbox=x=iw*0.45:y=ih*0.56:w=iw*0.005:h=ih*0.29:c=white:t=fill,drawbox=x=iw*0.7:y=ih*0.56:w=iw*0.005:h=ih*0.29:c=white:t=fill,drawbox=x=iw*0.24:y=ih*0.6:w=iw*0.17:h=ih*0.2:c=0x8a1c1c:t=fill,drawbox=x=iw*0.49:y=ih*0.6:w=iw*0.17:h=ih*0.2:c=0xc8c8c8:t=fill,drawbox=x=0:y=0:w=iw:h=ih*0.3:c=0x9fb4c8:t=fill,drawbox=x=iw*0.6:y=ih*0.1:w=iw*0.3:h=ih*0.35:c=0x7a6a5a:t=fill,noise=alls=4:allf=t,drawtext=timecode='08\\:00\\:00\\:00':rate=25:fontcolor=white:fontsize=h/18:x=w*0.05:y=h*0.04",
        moving: true,
    },
];

/// What is done to a scene.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    /// Nothing.
    Clean,
    /// Defocus: a Gaussian blur of this sigma (pixels at the native size).
    Blur(f64),
    /// Darkened.
    Dark,
    /// Over-exposed.
    Bright,
    /// Heavy noise (no check names it: the picture stays clear).
    Noise,
    /// A colour cast over the whole picture.
    Cast,
    /// Fog or a dirty dome: the contrast washed out to a fifth.
    Fog,
    /// A uniform board over this share of the frame.
    Occlude(f64),
    /// No signal.
    Black,
    /// The same frame sampled twice.
    Frozen,
    /// The camera turned and zoomed: another part of the scene fills the frame.
    Moved,
}

impl Fault {
    /// The ffmpeg filters that apply it to a `w × h` picture (`None`: nothing to add).
    fn filter(self, (w, h): (u32, u32)) -> Option<String> {
        Some(match self {
            Fault::Clean | Fault::Frozen => return None,
            // the scene drawn larger (as a zoom lens sees it) and another part of it framed
            Fault::Moved => format!("crop={w}:{h}:in_w-{w}:in_h*0.2"),
            Fault::Blur(s) => format!("gblur=sigma={s}"),
            Fault::Dark => "eq=brightness=-0.45:contrast=0.5".into(),
            Fault::Bright => "eq=brightness=0.6:contrast=0.5".into(),
            Fault::Noise => "noise=alls=40:allf=t".into(),
            Fault::Cast => "colorchannelmixer=rr=1.0:gg=0.55:bb=0.35".into(),
            Fault::Fog => "eq=contrast=0.2".into(),
            Fault::Occlude(f) => {
                let side = f.sqrt();
                format!("drawbox=x=0:y=0:w=iw*{side}:h=ih*{side}:c=0x5a5a5a:t=fill")
            }
            Fault::Black => "drawbox=x=0:y=0:w=iw:h=ih:c=black:t=fill,noise=alls=3:allf=t".into(),
        })
    }

    /// The size the scene is drawn at for a `size` picture: larger when the camera zoomed.
    fn source_size(self, (w, h): (u32, u32)) -> (u32, u32) {
        match self {
            Fault::Moved => ((w * 5 / 3) & !1, (h * 5 / 3) & !1),
            _ => (w, h),
        }
    }

    /// A short name for the report.
    pub fn name(self) -> String {
        match self {
            Fault::Clean => "clean".into(),
            Fault::Blur(s) => format!("blur σ{s}"),
            Fault::Dark => "dark".into(),
            Fault::Bright => "bright".into(),
            Fault::Noise => "noise".into(),
            Fault::Cast => "cast".into(),
            Fault::Fog => "fog".into(),
            Fault::Occlude(f) => format!("occluded {:.0}%", f * 100.0),
            Fault::Black => "black".into(),
            Fault::Frozen => "frozen".into(),
            Fault::Moved => "moved".into(),
        }
    }
}

/// What may also be said of a fault without being wrong: a darkened or washed-out picture is
/// also flat, a darkened one may read as no signal, a heavy blur or a board flattens the picture;
/// and where a board or a turn hides a still view's clock, nothing in it could show that the
/// stream still runs.
fn also(scene: &Scene, fault: Fault) -> BTreeSet<Check> {
    use Check::*;
    let allowed: &[Check] = match fault {
        Fault::Dark => &[LowContrast, Black, Underexposed],
        Fault::Bright | Fault::Blur(_) => &[LowContrast],
        Fault::Fog => &[Blurred],
        Fault::Occlude(_) | Fault::Moved if CLOCK_ONLY.contains(&scene.name) => {
            &[LowContrast, Frozen]
        }
        Fault::Occlude(_) => &[LowContrast],
        _ => &[],
    };
    allowed.iter().copied().collect()
}

/// Scenes in which only the clock (and sensor noise) moves.
const CLOCK_ONLY: [&str; 5] = ["wall-door", "corridor", "night", "sky", "parking"];

/// What a person would say of `fault` on `scene` at `width`: the checks that must be reported,
/// or `None` when people could disagree (the sample is left out).
fn label(scene: &Scene, fault: Fault, width: u32) -> Option<BTreeSet<Check>> {
    use Check::*;
    let set = |c: &[Check]| Some(c.iter().copied().collect());
    match fault {
        Fault::Clean | Fault::Noise => set(&[]),
        // a plain sky looks the same however defocused (but for its clock): nobody can tell
        Fault::Blur(_) if scene.name == "sky" => None,
        Fault::Blur(s) => {
            // judged as the gateway sees it, at most 640 wide: what σ is there
            let seen = s * 640.0 / f64::from(width).max(640.0);
            // cellauto's cells are single pixels at every size: smeared by σ 6 it is an even
            // grey field, which nobody can tell from a grey board
            if scene.name == "cellauto" && s >= 6.0 {
                return None;
            }
            if seen >= 2.0 {
                set(&[Blurred])
            } else if seen <= 0.7 {
                set(&[])
            } else {
                None
            }
        }
        // the night street darkened is pitch black to anyone
        Fault::Dark if scene.name == "night" => set(&[Black]),
        Fault::Dark => set(&[Underexposed]),
        Fault::Bright => set(&[Overexposed]),
        Fault::Cast => set(&[ColorCast]),
        // a plain view has little contrast to lose: nobody can tell it fogged
        Fault::Fog if CLOCK_ONLY.contains(&scene.name) => None,
        Fault::Fog => set(&[LowContrast]),
        Fault::Occlude(f) if f >= 0.5 => set(&[Occluded]),
        Fault::Occlude(_) => None,
        Fault::Black => set(&[Black]),
        Fault::Frozen if scene.moving => set(&[Frozen]),
        Fault::Frozen => None,
        // a view that keeps changing by itself (or a plain sky) moved: nobody can tell
        Fault::Moved
            if ["mandelbrot", "life", "cellauto", "sky", "sierpinski"].contains(&scene.name) =>
        {
            None
        }
        Fault::Moved => set(&[SceneChanged]),
    }
}

/// One frame of `graph` drawn at `drawn` (with `filters`, which make it `(w, h)`) at `frame`,
/// as yuv420p planes.
fn render(
    graph: &str,
    filters: Option<&str>,
    drawn: (u32, u32),
    (w, h): (u32, u32),
    frame: u32,
) -> Picture {
    let (input, frame) = match graph.strip_prefix("gst:") {
        // a still GStreamer pattern: one frame, rendered by GStreamer itself
        Some(pattern) => {
            let raw = gst_frame(pattern, drawn);
            let size = format!("{}x{}", drawn.0, drawn.1);
            let args = ["-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", &size, "-i"];
            let mut input: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            input.push(raw.display().to_string());
            (input, 0)
        }
        None => {
            let src = graph
                .replace("{w}", &drawn.0.to_string())
                .replace("{h}", &drawn.1.to_string());
            (vec!["-f".into(), "lavfi".into(), "-i".into(), src], frame)
        }
    };
    let src = input.join(" ");
    let mut vf = format!("select=eq(n\\,{frame})");
    if let Some(f) = filters {
        vf += ",";
        vf += f;
    }
    vf += ",format=yuv420p";
    let out = Command::new("ffmpeg")
        .args(["-v", "error"])
        .args(&input)
        .args(["-vf", &vf])
        .args(["-frames:v", "1", "-f", "rawvideo", "-"])
        .output()
        .expect("ffmpeg");
    let (y, c) = ((w * h) as usize, (w.div_ceil(2) * h.div_ceil(2)) as usize);
    assert!(
        out.status.success() && out.stdout.len() == y + 2 * c,
        "ffmpeg {src} -vf {vf}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let data = out.stdout;
    Picture {
        width: w,
        height: h,
        y: data[..y].to_vec(),
        u: data[y..y + c].to_vec(),
        v: data[y + c..].to_vec(),
    }
}

/// Where the GStreamer frames of this run are kept.
fn gst_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("scene-set-{}", std::process::id()))
}

/// One frame of GStreamer's `videotestsrc pattern=…` at `(w, h)`, as a raw I420 file rendered
/// once per run (with Debian's python3 and its GStreamer bindings).
fn gst_frame(pattern: &str, (w, h): (u32, u32)) -> std::path::PathBuf {
    let dir = gst_dir();
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let path = dir.join(format!("{pattern}-{w}x{h}.yuv"));
    if path.exists() {
        return path;
    }
    // rendered beside, then renamed: the threads judging other samples see a whole file or none
    let part = dir.join(format!(
        "{pattern}-{w}x{h}.{:?}",
        std::thread::current().id()
    ));
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("gst/render_pattern.py");
    let (ws, hs, part_s) = (w.to_string(), h.to_string(), part.display().to_string());
    let out = Command::new("/usr/bin/python3")
        .arg(&script)
        .args([pattern, &ws, &hs, "1", &part_s])
        .output()
        .expect("python3 with GStreamer (python3-gi)");
    assert!(
        out.status.success(),
        "videotestsrc {pattern}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(&part, &path).expect("rename");
    path
}

/// Through the encoder and the decoder, as a camera's keyframe reaches the checks.
fn through_codec(p: &Picture) -> Picture {
    let au = decode::encode_keyframe(p, VideoCodec::H264).expect("libx264");
    let d = decode::decode_bytes(VideoCodec::H264, &au).expect("decodes");
    decode::picture(&d).expect("planes")
}

/// One judged sample.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The scene.
    pub scene: &'static str,
    /// What was done to it.
    pub fault: Fault,
    /// Its size.
    pub size: (u32, u32),
    /// What a person would say.
    pub label: BTreeSet<Check>,
    /// What may also be said without being wrong.
    pub also: BTreeSet<Check>,
    /// What the checks said.
    pub got: BTreeSet<Check>,
    /// The measures.
    pub measures: vqd::Measures,
}

/// Which samples of `scenes`: every fault at every size (`full`), or a reduced set at 360p for
/// the suite.
pub fn plan(scenes: &[Scene], full: bool) -> Vec<(Scene, Fault, (u32, u32))> {
    let sizes: &[(u32, u32)] = if full {
        &[(640, 360), (1280, 720), (1920, 1080)]
    } else {
        &[(640, 360)]
    };
    let blurs: &[f64] = if full {
        &[1.0, 2.0, 3.0, 4.0, 6.0, 8.0]
    } else {
        &[3.0, 6.0]
    };
    let mut faults = vec![
        Fault::Clean,
        Fault::Noise,
        Fault::Dark,
        Fault::Bright,
        Fault::Cast,
        Fault::Fog,
    ];
    faults.extend(blurs.iter().map(|&s| Fault::Blur(s)));
    faults.extend([0.25, 0.5, 0.75, 1.0].map(Fault::Occlude));
    faults.extend([Fault::Black, Fault::Frozen, Fault::Moved]);
    let mut out = Vec::new();
    for &size in sizes {
        for scene in scenes {
            for &fault in &faults {
                out.push((*scene, fault, size));
            }
        }
    }
    out
}

/// Clean frames a scene's baseline is learned from (a camera learns from ten samples a minute
/// apart; five frames of a still scene are as many as ten).
const LEARN_FRAMES: [u32; 5] = [0, 5, 10, 15, 20];

/// The baseline of `scene` at `size`, learned from its clean frames.
pub fn learn(scene: Scene, size: (u32, u32), t: &Thresholds) -> Baseline {
    let mut learner = Learner::new(LEARN_FRAMES.len());
    LEARN_FRAMES
        .iter()
        .find_map(|&frame| {
            let (m, thumb) = vqd::measure(
                &through_codec(&render(scene.graph, None, size, size, frame)),
                None,
            );
            learner.add(&m, &thumb, t)
        })
        .unwrap_or_else(|| panic!("{} at {size:?} teaches no baseline", scene.name))
}

/// Renders and judges one planned sample against its scene's baseline (`None` when it is left
/// out). The previous sample of the frozen check is the same frame (frozen) or, for every other
/// fault, the scene a second earlier.
pub fn judge(
    scene: Scene,
    fault: Fault,
    size: (u32, u32),
    baseline: &Baseline,
    t: &Thresholds,
) -> Option<Sample> {
    let label = label(&scene, fault, size.0)?;
    let filters = fault.filter(size);
    let drawn = fault.source_size(size);
    let now = through_codec(&render(scene.graph, filters.as_deref(), drawn, size, 25));
    let before_frame = if fault == Fault::Frozen { 25 } else { 0 };
    let before = through_codec(&render(
        scene.graph,
        filters.as_deref(),
        drawn,
        size,
        before_frame,
    ));
    let (_, previous) = vqd::measure(&before, None);
    // a still scene gives no frozen verdict either way: its previous sample is not compared
    let previous = (scene.moving || fault == Fault::Frozen).then_some(&previous);
    let (mut measures, thumb) = vqd::measure(&now, previous);
    let versus = baseline
        .compare(&measures, &thumb, t)
        .expect("the scene's size");
    measures.set_versus(&versus);
    let got = vqd::failing(&measures, Some(baseline), t)
        .into_iter()
        .collect();
    Some(Sample {
        scene: scene.name,
        fault,
        size,
        label,
        also: also(&scene, fault),
        got,
        measures,
    })
}

impl Sample {
    /// Whether the checks said what a person would: every labelled check, nothing else but
    /// what may also be said.
    pub fn right(&self) -> bool {
        self.label.is_subset(&self.got)
            && self
                .got
                .iter()
                .all(|c| self.label.contains(c) || self.also.contains(c))
    }
}

/// `f` of every item, on every core, in the items' order.
fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let out = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else {
                    return;
                };
                let r = f(item);
                out.lock().unwrap_or_else(|e| e.into_inner()).push((i, r));
            });
        }
    });
    let mut out = out.into_inner().unwrap_or_else(|e| e.into_inner());
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, r)| r).collect()
}

/// Judges every planned sample with `t` against its scene's baseline (learned first), on
/// every core; the samples in a stable order.
pub fn judge_all(plan: &[(Scene, Fault, (u32, u32))], t: &Thresholds) -> Vec<Sample> {
    let mut cameras: Vec<(Scene, (u32, u32))> = Vec::new();
    for &(scene, _, size) in plan {
        if !cameras
            .iter()
            .any(|(s, z)| s.name == scene.name && *z == size)
        {
            cameras.push((scene, size));
        }
    }
    let baselines = par_map(&cameras, |&(scene, size)| learn(scene, size, t));
    let baseline_of = |scene: &Scene, size| {
        let i = cameras
            .iter()
            .position(|(s, z)| s.name == scene.name && *z == size);
        &baselines[i.expect("learned")]
    };
    let mut samples: Vec<Sample> = par_map(plan, |&(scene, fault, size)| {
        judge(scene, fault, size, baseline_of(&scene, size), t)
    })
    .into_iter()
    .flatten()
    .collect();
    samples
        .sort_by(|a, b| (a.size, a.scene, a.fault.name()).cmp(&(b.size, b.scene, b.fault.name())));
    let _ = std::fs::remove_dir_all(gst_dir());
    samples
}

/// Precision and recall of one check over a set (a check that may also be said is neither a
/// true nor a false positive).
#[derive(Debug, Clone, Copy, Default)]
pub struct Score {
    /// Reported and labelled.
    pub true_pos: usize,
    /// Reported, not labelled.
    pub false_pos: usize,
    /// Labelled, not reported.
    pub false_neg: usize,
}

impl Score {
    /// TP / (TP + FP); 1 when nothing was reported.
    pub fn precision(&self) -> f64 {
        let n = self.true_pos + self.false_pos;
        if n == 0 {
            1.0
        } else {
            self.true_pos as f64 / n as f64
        }
    }
    /// TP / (TP + FN); 1 when nothing was labelled.
    pub fn recall(&self) -> f64 {
        let n = self.true_pos + self.false_neg;
        if n == 0 {
            1.0
        } else {
            self.true_pos as f64 / n as f64
        }
    }
}

/// Scores per check.
pub fn scores(samples: &[Sample]) -> BTreeMap<Check, Score> {
    let mut out: BTreeMap<Check, Score> =
        Check::ALL.iter().map(|&c| (c, Score::default())).collect();
    for s in samples {
        for c in Check::ALL {
            let e = out.get_mut(&c).expect("every check");
            match (s.label.contains(&c), s.got.contains(&c)) {
                (true, true) => e.true_pos += 1,
                (false, true) if !s.also.contains(&c) => e.false_pos += 1,
                (true, false) => e.false_neg += 1,
                (false, _) => {}
            }
        }
    }
    out
}

/// The confusion between checks: for the samples labelled with each check (or clear), how many
/// were reported with each check, or with none.
fn confusion(samples: &[Sample]) -> String {
    let mut s = String::from("\nlabelled (rows) → reported (columns):\n\n| labelled | n |");
    for c in Check::ALL {
        s += &format!(" `{}` |", c.as_str());
    }
    s += " nothing |\n|---|---|";
    s += &"---|".repeat(Check::ALL.len() + 1);
    s += "\n";
    let rows = Check::ALL
        .iter()
        .map(|&c| (Some(c), c.as_str()))
        .chain([(None, "clear")]);
    for (label, name) in rows {
        let with: Vec<&Sample> = samples
            .iter()
            .filter(|x| label.map_or(x.label.is_empty(), |c| x.label.contains(&c)))
            .collect();
        s += &format!("| `{name}` | {} |", with.len());
        for c in Check::ALL {
            let n = with.iter().filter(|x| x.got.contains(&c)).count();
            s += &if n == 0 {
                " |".to_string()
            } else {
                format!(" {n} |")
            };
        }
        let none = with.iter().filter(|x| x.got.is_empty()).count();
        s += &format!(" {none} |\n");
    }
    s
}

/// The report as Markdown: per check, then the samples judged wrongly (`every`: every sample,
/// for calibrating a measure).
pub fn report(samples: &[Sample], every: bool) -> String {
    let mut s = format!(
        "{} samples\n\n| check | labelled | reported | precision | recall |\n|---|---|---|---|---|\n",
        samples.len()
    );
    for (c, sc) in scores(samples) {
        s += &format!(
            "| `{}` | {} | {} | {:.3} | {:.3} |\n",
            c.as_str(),
            sc.true_pos + sc.false_neg,
            sc.true_pos + sc.false_pos,
            sc.precision(),
            sc.recall()
        );
    }
    s += &confusion(samples);
    let wrong: Vec<&Sample> = samples.iter().filter(|x| every || !x.right()).collect();
    s += &format!("\n{} judged otherwise than labelled:\n\n", wrong.len());
    s += "| scene | fault | size | label | reported | luma mean/std | uniform | covered | revealed | rest match | sharpness | edge width | changed | view match | chroma shift |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
    let names = |set: &BTreeSet<Check>| {
        set.iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    for x in wrong {
        let m = &x.measures;
        s += &format!(
            "| {} | {} | {}×{} | {} | {} | {:.0}/{:.1} | {:.2} | {} | {} | {} | {:.1} | {} | {} | {} | {} |\n",
            x.scene,
            x.fault.name(),
            x.size.0,
            x.size.1,
            names(&x.label),
            names(&x.got),
            m.mean_luma,
            m.luma_std,
            m.uniform_ratio,
            m.covered_ratio.map_or("—".into(), |c| format!("{c:.2}")),
            m.revealed_ratio.map_or("—".into(), |c| format!("{c:.2}")),
            m.rest_match.map_or("—".into(), |c| format!("{c:.2}")),
            m.sharpness,
            m.edge_width.map_or("—".into(), |e| format!("{e:.2}")),
            m.changed_ratio.map_or("—".into(), |c| format!("{c:.4}")),
            m.view_match.map_or("—".into(), |c| format!("{c:.2}")),
            m.chroma_shift.map_or("—".into(), |c| format!("{c:.1}"))
        );
    }
    s
}
