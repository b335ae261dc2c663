//! Camera sources, and the one part of the gateway that links FFmpeg.
//!
//! * [`rtsp`] — one supervised RTSP session per camera, its health, picture checks, ONVIF
//!   notifications and snapshots; what it sees goes to the [`alerts::Pipeline`] as
//!   [`alerts::camera::CameraObservation`]s.
//! * [`video`] — keyframes rebuilt from RTP, decoded sparingly by a bounded pool (FFmpeg), the
//!   picture checks, and evidence files.
//!
//! The fire sources (`ingest`) build and test without FFmpeg or clang.

pub mod rtsp;
pub mod video;
