//! Normalization: what a source saw becomes governance events — worded here, and only here.
//!
//! Pure: no I/O, no clock (the receive time is an input), ids come from the caller. One file
//! per family:
//!
//! * [`fire`] — a unit's [`crate::FireSignal`] → `fire.*`;
//! * [`threshold`] — an analog threshold crossing → `fire.analog_threshold`;
//! * [`unit`](mod@unit) — a unit's liveness change → `unit.online` / `unit.offline`;
//! * [`camera`] — a [`crate::camera::CameraObservation`] → `camera.*`;
//! * [`evidence`] — a late snapshot → `event.evidence`;
//! * [`case`](mod@case) — a closed-loop step → `event.updated` / `event.assigned`; a late
//!   stage → `event.overdue`;
//! * [`report`] — a weekly report ready → `report.weekly`.

pub mod camera;
pub mod case;
pub mod evidence;
pub mod fire;
pub mod report;
pub mod sanity;
pub mod threshold;
pub mod unit;

pub use camera::{camera_event, check_label, device_alarm_event, CameraContext};
pub use case::{assigned_notice, overdue_notice, updated_notice};
pub use evidence::evidence_event;
pub use fire::{kind_for_flag, kind_for_operation, normalize, Context};
pub use threshold::threshold_event;
pub use unit::unit_event;
