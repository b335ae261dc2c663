//! GB/T 28181 device access: cameras, NVRs and lower platforms register to the gateway over
//! SIP and are watched through what they send — registrations, keepalives, catalogs and
//! alarms — without pulling a stream.

pub mod devices;
pub mod id;
pub mod manscdp;
pub mod server;
pub mod sip;

pub use server::{DeviceChange, DeviceConfig, Gb28181Config, Picture, PictureError, Server};
pub mod media;
