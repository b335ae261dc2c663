//! Closed-loop notices: `event.updated` (a step on a case, to its township),
//! `event.assigned` (a case assigned to a department, to the department) and `event.overdue`
//! (a late stage, to the township and the city).

use crate::case::sla::Reminder;
use crate::case::{Case, Step};
use crate::event::{CaseNotice, Event, Kind, OverdueDetail, Severity};
use crate::registry::Department;
use chrono::{DateTime, FixedOffset};
use uuid::Uuid;

/// What a step reads as in a title.
pub fn step_label(step: &Step, department: Option<&Department>) -> String {
    match step.action.as_str() {
        "sign" => "已签收".into(),
        "assign" => format!(
            "已交办 {}",
            department.map_or(step.to.as_deref().unwrap_or(""), |d| d.name.as_str())
        ),
        "accept" => "已接收".into(),
        "feedback" => match step.verdict {
            Some(v) => format!("已反馈 ({})", v.label()),
            None => "处置进展".into(),
        },
        "close" => "已办结".into(),
        "reopen" => "重新打开".into(),
        "recover" => "自动恢复".into(),
        _ => "已关闭".into(),
    }
}

/// A notice about `original`: its source, township and location, nothing else yet.
fn envelope(original: &Event, kind: Kind, at: DateTime<FixedOffset>, id: Uuid) -> Event {
    let (source, township) = (original.source.clone(), original.township.clone());
    Event {
        refers_to: Some(original.id),
        location: original.location.clone(),
        ..Event::envelope(id, kind, source, township, at, at)
    }
}

fn notice(original: &Event, case: &Case, kind: Kind, at: DateTime<FixedOffset>, id: Uuid) -> Event {
    let step = case
        .history
        .last()
        .cloned()
        .expect("a notice follows a step");
    Event {
        case: Some(CaseNotice {
            stage: case.stage,
            step,
            assigned_to: case.assigned_to.clone(),
        }),
        ..envelope(original, kind, at, id)
    }
}

/// `event.overdue`: a reminder (督办) that a stage of `original`'s case is late — for its
/// township and the city. Critical when the original is, else major.
pub fn overdue_notice(
    original: &Event,
    case: &Case,
    reminder: &Reminder,
    at: DateTime<FixedOffset>,
    id: Uuid,
) -> Event {
    let kind = Kind::EventOverdue;
    let severity = match original.severity {
        Severity::Critical => Severity::Critical,
        _ => Severity::Major,
    };
    let late = if reminder.level > 1 {
        format!("{} (第{}次督办)", reminder.stage.label(), reminder.level)
    } else {
        reminder.stage.label().to_string()
    };
    Event {
        severity,
        title: format!("{late}: {}", original.title),
        overdue: Some(OverdueDetail {
            stage: reminder.stage,
            due_at: reminder.due_at.with_timezone(at.offset()),
            overdue_s: reminder.overdue_s,
            level: reminder.level,
            case_stage: case.stage,
        }),
        ..envelope(original, kind, at, id)
    }
}

/// `event.updated`: the step just taken on `original`'s case, for its township.
pub fn updated_notice(
    original: &Event,
    case: &Case,
    department: Option<&Department>,
    at: DateTime<FixedOffset>,
    id: Uuid,
) -> Event {
    let mut e = notice(original, case, Kind::EventUpdated, at, id);
    let step = e.case.as_ref().map(|c| &c.step).expect("notice step");
    e.title = format!("{}: {}", step_label(step, department), original.title);
    e
}

/// `event.assigned`: `original` with its detail and evidence, for the department it was
/// assigned to, as urgent as the original.
pub fn assigned_notice(
    original: &Event,
    case: &Case,
    department: &Department,
    at: DateTime<FixedOffset>,
    id: Uuid,
) -> Event {
    let mut e = notice(original, case, Kind::EventAssigned, at, id);
    e.severity = original.severity;
    e.title = format!(
        "{} {}: {}",
        Kind::EventAssigned.label(),
        department.name,
        original.title
    );
    e.fire = original.fire.clone();
    e.camera = original.camera.clone();
    e.unit = original.unit.clone();
    e.evidence = original.evidence.clone();
    // the department dispatched to the unit needs whom to call there
    e.contacts = original.contacts.clone();
    e
}
