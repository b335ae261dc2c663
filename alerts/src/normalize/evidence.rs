//! `event.evidence`: a snapshot that came after its alarm was delivered.

use crate::event::{Event, Evidence, Kind};
use chrono::{DateTime, FixedOffset};
use uuid::Uuid;

/// The follow-up that carries `evidence` taken too late for `original`: the original's
/// envelope, kind `event.evidence`, and `refers_to` the original (a re-delivery of the
/// original under its own id would be dropped by receivers as a duplicate).
pub fn evidence_event(
    original: &Event,
    evidence: Evidence,
    received_at: DateTime<FixedOffset>,
    id: Uuid,
) -> Event {
    let kind = Kind::EventEvidence;
    Event {
        id,
        kind,
        severity: kind.severity(),
        title: format!("{}: {}", kind.label(), original.title),
        received_at,
        refers_to: Some(original.id),
        resolves: Vec::new(),
        case: None,
        overdue: None,
        report: None,
        evidence: vec![evidence],
        ..original.clone()
    }
}
