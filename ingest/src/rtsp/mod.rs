//! Cameras over RTSP.

pub mod health;
