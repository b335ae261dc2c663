//! The core of the gateway: what a signal from a source becomes, and how it gets to a township.
//!
//! Flow, in one direction:
//!
//! ```text
//! FireSignal ──▶ normalize (pure) ──▶ dedup (pure, injected clock) ──▶ outbox (redb, group commit)
//!                                                                         │ receipt → the source acks
//!                                                                         ▼
//!                                                            delivery worker per township ──▶ webhook
//! ```
//!
//! * [`signal`] — the one fire vocabulary every source translates into.
//! * [`event`] — governance events as delivered to command centers.
//! * [`normalize`] and [`dedup`] — pure functions of their inputs and a clock.
//! * [`linkage`] — fire → linkage feedback tracking (pure).
//! * [`liveness`] — unit online/offline (pure, injected clock).
//! * [`threshold`] — analog thresholds with hysteresis (pure).
//! * [`outbox`] — the durable store and the only source of truth for events.
//! * [`delivery`] — signed webhook delivery, one worker per township.
//! * [`camera`] — the camera vocabulary: what camera sources observe; [`availability`] —
//!   uptime from the camera log (pure).
//! * [`pipeline`] — the one door into the outbox: sources hand over signals and observations,
//!   and get a durable receipt.

pub mod assessment;
pub mod availability;
pub mod camera;
pub mod camera_tally;
pub mod case;
pub mod clock;
pub mod codes;
pub mod dedup;
pub mod delivery;
pub mod event;
pub mod linkage;
pub mod live;
pub mod liveness;
pub mod metrics;
pub mod normalize;
pub mod outage;
pub mod outbox;
pub mod pipeline;
pub mod place;
pub mod quarantine;
pub mod registry;
pub mod secret;
pub mod signal;
pub mod threshold;
pub mod time;

pub use clock::{Clock, ManualClock, SystemClock};
pub use event::{Event, Kind, Severity};
pub use metrics::Metrics;
pub use pipeline::{Pipeline, SubmitError, Submitted, Trackers};
pub use registry::Registry;
pub use secret::Secret;
pub use signal::FireSignal;
