//! Video, decoded sparingly: the camera sessions keep each camera's latest keyframe (rebuilt
//! from its RTP packets, [`keyframe`]); a bounded pool of decoder threads ([`pool`]) turns one
//! into a picture now and then for the quality checks ([`vqd`], [`quality`]) and on demand for
//! JPEG snapshots ([`decode`]).

pub mod baseline;
pub mod decode;
pub mod evidence;
pub mod keyframe;
pub mod pool;
pub mod quality;
pub mod verdict;
pub mod vqd;

pub use decode::{Picture, VideoError};
pub use keyframe::{Keyframe, KeyframeBuilder, VideoCodec};
