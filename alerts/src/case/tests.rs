use super::*;
use chrono::TimeZone;

fn at(min: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 8, 0, 0).unwrap() + chrono::Duration::minutes(min)
}

fn township(by: &str) -> Actor {
    Actor {
        by: by.into(),
        token: Some("lanjiang-room".into()),
        role: Role::Township,
    }
}

fn department(code: &str, by: &str) -> Actor {
    Actor {
        by: by.into(),
        token: Some(format!("{code}-token")),
        role: Role::Department(code.into()),
    }
}

fn feedback(verdict: Option<Verdict>, note: &str) -> Action {
    Action::Feedback {
        verdict,
        note: note.into(),
    }
}

#[test]
fn a_fire_alarm_goes_round_the_whole_loop() {
    let mut c = Case::new("fire.alarm").unwrap();
    let zhang = township("张三");
    let brigade = department("fire-brigade", "李队");
    c.apply(&Action::Sign, &zhang, at(1)).unwrap();
    assert_eq!(c.stage, Stage::Signed);
    let assign = Action::Assign {
        to: "fire-brigade".into(),
    };
    c.apply(&assign, &zhang, at(2)).unwrap();
    assert_eq!(c.stage, Stage::Assigned);
    c.apply(&Action::Accept, &brigade, at(3)).unwrap();
    assert_eq!(c.stage, Stage::Accepted);
    c.apply(
        &feedback(Some(Verdict::FalseAlarm), "烟感误报"),
        &brigade,
        at(9),
    )
    .unwrap();
    assert_eq!(
        (c.stage, c.verdict),
        (Stage::Handled, Some(Verdict::FalseAlarm))
    );
    c.apply(&Action::Close, &zhang, at(10)).unwrap();
    assert_eq!(c.stage, Stage::Closed);
    let actions: Vec<_> = c.history.iter().map(|s| s.action.as_str()).collect();
    assert_eq!(actions, ["sign", "assign", "accept", "feedback", "close"]);
    assert_eq!(c.history[1].to.as_deref(), Some("fire-brigade"));
    assert_eq!(c.history[3].token.as_deref(), Some("fire-brigade-token"));
    assert_eq!(c.handled_at, Some(at(9)));
}

#[test]
fn the_first_signer_wins_and_a_repeat_changes_nothing() {
    let mut c = Case::new("fire.fault").unwrap();
    assert_eq!(
        c.apply(&Action::Sign, &township("张三"), at(1)),
        Ok(Applied::Changed)
    );
    assert_eq!(
        c.apply(&Action::Sign, &township("张三"), at(2)),
        Ok(Applied::Unchanged)
    );
    match c.apply(&Action::Sign, &township("王五"), at(3)) {
        Err(Refusal::AlreadySigned(s)) => assert_eq!((s.by.as_str(), s.at), ("张三", at(1))),
        other => panic!("{other:?}"),
    }
    assert_eq!(c.history.len(), 1);
}

#[test]
fn invalid_transitions_name_the_current_stage() {
    let mut c = Case::new("camera.offline").unwrap();
    let err = c
        .apply(&Action::Close, &township("张三"), at(1))
        .unwrap_err();
    assert_eq!(
        err,
        Refusal::Invalid {
            stage: Stage::Open,
            action: "close"
        }
    );
    assert_eq!(
        c.apply(
            &feedback(Some(Verdict::Repaired), "x"),
            &township("张三"),
            at(1)
        ),
        Err(Refusal::NotSigned("giving feedback"))
    );
    let assign = Action::Assign { to: "ops".into() };
    assert_eq!(
        c.apply(&assign, &township("张三"), at(1)),
        Err(Refusal::NotSigned("assigning it"))
    );
    assert!(c.history.is_empty());
}

#[test]
fn verdicts_must_fit_the_kind() {
    let mut c = Case::new("camera.offline").unwrap();
    c.apply(&Action::Sign, &township("张三"), at(1)).unwrap();
    let err = c
        .apply(
            &feedback(Some(Verdict::FalseAlarm), "x"),
            &township("张三"),
            at(2),
        )
        .unwrap_err();
    assert!(matches!(err, Refusal::BadVerdict { .. }), "{err:?}");
    assert!(
        err.to_string().contains("repaired, no_fault, other"),
        "{err}"
    );
    let err = c
        .apply(
            &feedback(Some(Verdict::Recovered), "x"),
            &township("张三"),
            at(2),
        )
        .unwrap_err();
    assert!(matches!(err, Refusal::BadVerdict { .. }));
}

#[test]
fn a_department_acts_only_on_its_own_assignment() {
    let mut c = Case::new("fire.alarm").unwrap();
    c.apply(&Action::Sign, &township("张三"), at(1)).unwrap();
    let other = department("police", "赵");
    assert!(matches!(
        c.apply(&Action::Accept, &other, at(2)),
        Err(Refusal::NotAllowed(_))
    ));
    c.apply(
        &Action::Assign {
            to: "fire-brigade".into(),
        },
        &township("张三"),
        at(2),
    )
    .unwrap();
    assert!(c.apply(&Action::Accept, &other, at(3)).is_err());
    let brigade = department("fire-brigade", "李队");
    assert!(matches!(
        c.apply(&feedback(Some(Verdict::TrueAlarm), "x"), &brigade, at(3)),
        Err(Refusal::NotAllowed(_))
    ));
    assert!(matches!(
        c.apply(&Action::Sign, &brigade, at(3)),
        Err(Refusal::NotAllowed(_))
    ));
}

#[test]
fn a_rule_may_assign_before_the_township_signs() {
    let mut c = Case::new("fire.alarm").unwrap();
    let rule = Actor::gateway("dispatch rule");
    c.apply(
        &Action::Assign {
            to: "fire-brigade".into(),
        },
        &rule,
        at(0),
    )
    .unwrap();
    assert_eq!(c.stage, Stage::Assigned);
    c.apply(&Action::Sign, &township("张三"), at(1)).unwrap();
    assert_eq!(c.stage, Stage::Assigned, "signing keeps the assignment");
    assert!(c.signed.is_some());
}

#[test]
fn reopen_needs_a_closed_case_and_goes_back_to_whoever_had_it() {
    let mut c = Case::new("fire.alarm").unwrap();
    let zhang = township("张三");
    c.apply(&Action::Sign, &zhang, at(1)).unwrap();
    c.apply(&feedback(Some(Verdict::Test), "测试"), &zhang, at(2))
        .unwrap();
    let reopen = Action::Reopen {
        reason: "复查发现真实火情".into(),
    };
    assert!(c.apply(&reopen, &zhang, at(3)).is_err());
    c.apply(&Action::Close, &zhang, at(3)).unwrap();
    assert_eq!(
        c.apply(&Action::Close, &zhang, at(4)),
        Ok(Applied::Unchanged)
    );
    c.apply(&reopen, &zhang, at(5)).unwrap();
    assert_eq!((c.stage, c.verdict), (Stage::Signed, None));
    assert_eq!(c.apply(&reopen, &zhang, at(6)), Ok(Applied::Unchanged));
    assert_eq!(
        c.history.last().unwrap().note.as_deref(),
        Some("复查发现真实火情")
    );
}

#[test]
fn recoveries_close_outages_but_never_a_fire_alarm() {
    let mut c = Case::new("camera.offline").unwrap();
    let by = Uuid::from_u128(7);
    let gw = Actor::gateway("gateway");
    let recover = Action::Recover {
        by_event: by,
        outage_s: 600,
    };
    c.apply(&recover, &gw, at(10)).unwrap();
    assert_eq!(c.stage, Stage::Closed);
    assert_eq!(c.verdict, Some(Verdict::Recovered));
    assert_eq!((c.resolved_by, c.outage_s), (Some(by), Some(600)));
    assert_eq!(c.apply(&recover, &gw, at(11)), Ok(Applied::Unchanged));

    let mut fire = Case::new("fire.alarm").unwrap();
    assert!(fire.apply(&recover, &gw, at(10)).is_err());
    assert_eq!(
        fire.apply(&Action::CloseOnDelivery, &gw, at(10)),
        Ok(Applied::Unchanged)
    );
    assert_eq!(fire.stage, Stage::Open);
}

#[test]
fn notices_are_not_cases() {
    assert!(Case::new("event.overdue").is_none());
    assert!(Case::new("report.weekly").is_none());
    assert_eq!(Case::new("unit.offline").unwrap().family, Family::Equipment);
}

mod supervision {
    use super::*;
    use crate::case::sla::{rule_for, SlaRule, SlaStage, Supervision};
    use crate::event::Severity;

    fn supervised(kind: &str, start: DateTime<Utc>) -> Case {
        let defaults = SlaRule::defaults();
        let rule = rule_for(&[], &defaults, kind, Severity::Critical).unwrap();
        let mut c = Case::new(kind).unwrap();
        c.sla = Some(Supervision::new(rule, start));
        c
    }

    fn secs(s: i64) -> DateTime<Utc> {
        at(0) + chrono::Duration::seconds(s)
    }

    #[test]
    fn an_unsigned_alarm_is_reminded_at_its_deadline_then_every_interval() {
        let mut c = supervised("fire.alarm", at(0));
        assert_eq!(c.next_due(), Some(secs(180)));
        assert!(c.reminders_due(secs(179)).is_empty());
        let r = c.reminders_due(secs(180));
        assert_eq!(r.len(), 1);
        assert_eq!(
            (r[0].stage, r[0].level, r[0].overdue_s),
            (SlaStage::Sign, 1, 0)
        );
        c.record_reminders(&r, secs(180));
        assert!(c.reminders_due(secs(181)).is_empty(), "not twice");
        assert_eq!(c.next_due(), Some(secs(480)));
        assert_eq!(c.overdue_stages(), [SlaStage::Sign]);
        let r = c.reminders_due(secs(480));
        assert_eq!((r[0].level, r[0].overdue_s), (2, 300));
        c.record_reminders(&r, secs(480));
        // signed: the sign stage is done; handling is due at 30 min
        c.apply(&Action::Sign, &township("张三"), secs(500))
            .unwrap();
        assert!(c.overdue_stages().is_empty());
        assert_eq!(c.next_due(), Some(secs(1800)));
        c.apply(
            &feedback(Some(Verdict::TrueAlarm), "出警"),
            &township("张三"),
            secs(900),
        )
        .unwrap();
        assert_eq!(c.next_due(), None, "nothing left to supervise");
    }

    #[test]
    fn after_downtime_each_late_stage_is_reminded_once_and_then_from_now() {
        let mut c = supervised("fire.alarm", at(0));
        let r = c.reminders_due(secs(4000));
        let stages: Vec<_> = r.iter().map(|r| (r.stage, r.level)).collect();
        assert_eq!(stages, [(SlaStage::Sign, 1), (SlaStage::Handle, 1)]);
        c.record_reminders(&r, secs(4000));
        assert_eq!(c.next_due(), Some(secs(4300)));
    }

    #[test]
    fn a_reopen_starts_the_clock_again_and_a_camera_ticket_is_due_to_close() {
        let mut c = supervised("camera.offline", at(0));
        assert_eq!(c.next_due(), Some(secs(4 * 3600)));
        let zhang = township("张三");
        c.apply(&Action::Sign, &zhang, secs(60)).unwrap();
        assert_eq!(
            c.next_due(),
            Some(secs(72 * 3600)),
            "closing is due in 72 h"
        );
        c.apply(
            &feedback(Some(Verdict::Repaired), "换电源"),
            &zhang,
            secs(120),
        )
        .unwrap();
        c.apply(&Action::Close, &zhang, secs(180)).unwrap();
        assert_eq!(c.next_due(), None);
        c.apply(
            &Action::Reopen {
                reason: "又断了".into(),
            },
            &zhang,
            secs(1000),
        )
        .unwrap();
        assert_eq!(c.next_due(), Some(secs(1000 + 72 * 3600)));
        let defaults = SlaRule::defaults();
        assert!(rule_for(&[], &defaults, "camera.motion", Severity::Info).is_none());
    }
}
