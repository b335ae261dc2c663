//! The closed loop inside the store: steps with their notices in one transaction, stale
//! decisions refused, pairs that close themselves, info events closed on delivery, rows written
//! before the closed loop read as cases.

use alerts::case::{Action, Actor, Applied, Case, Refusal, Role, Stage, Verdict};
use alerts::outbox::{NewEvent, Op, Outcome, Resolve, Store};
use bytes::Bytes;
use chrono::Utc;
use redb::TableDefinition;
use uuid::Uuid;

fn event(kind: &str, pair: Option<&str>, resolves: Vec<Resolve>) -> NewEvent {
    let id = Uuid::now_v7();
    NewEvent {
        id,
        township: "lanjiang".into(),
        kind: kind.into(),
        body: Bytes::from(format!("{{\"id\":\"{id}\"}}")),
        deliver: true,
        route: None,
        case: Case::new(kind).map(|mut c| {
            c.pair = pair.map(String::from);
            c
        }),
        close_on_delivery: false,
        resolves,
    }
}

fn township(by: &str) -> Actor {
    Actor {
        by: by.into(),
        token: Some("room".into()),
        role: Role::Township,
    }
}

fn act(
    id: Uuid,
    action: Action,
    actor: Actor,
    expect_history: usize,
    notices: Vec<NewEvent>,
) -> Op {
    Op::Act {
        id,
        action,
        actor,
        at: Utc::now(),
        expect_history,
        notices,
    }
}

fn open_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("o.redb")).unwrap();
    (dir, store)
}

#[test]
fn a_step_commits_with_its_notice_and_a_stale_one_writes_nothing() {
    let (_dir, store) = open_store();
    let alarm = event("fire.alarm", None, vec![]);
    let id = alarm.id;
    store.apply(&[Op::Commit(vec![alarm])], 100).unwrap();
    let notice = event("event.updated", None, vec![]);
    let notice_id = notice.id;
    let out = store
        .apply(
            &[act(id, Action::Sign, township("wang"), 0, vec![notice])],
            100,
        )
        .unwrap();
    assert_eq!(out[0], Outcome::Acted(Applied::Changed));
    assert!(
        store.get(notice_id).unwrap().is_some(),
        "the notice is committed with the step"
    );
    assert_eq!(store.stats().unwrap().pending, 2);

    // decided on a history of length 0, but it is 1 now: nothing is written
    let late = event("event.updated", None, vec![]);
    let late_id = late.id;
    let out = store
        .apply(&[act(id, Action::Sign, township("li"), 0, vec![late])], 100)
        .unwrap();
    assert_eq!(out[0], Outcome::Stale);
    assert!(store.get(late_id).unwrap().is_none());

    let out = store
        .apply(&[act(id, Action::Sign, township("li"), 1, vec![])], 100)
        .unwrap();
    assert!(matches!(&out[0], Outcome::Refused(Refusal::AlreadySigned(s)) if s.by == "wang"));
    let fb = Action::Feedback {
        verdict: Some(Verdict::FalseAlarm),
        note: "烟感误报".into(),
    };
    let out = store
        .apply(&[act(id, fb, township("wang"), 1, vec![])], 100)
        .unwrap();
    assert_eq!(out[0], Outcome::Acted(Applied::Changed));
    let case = store.get(id).unwrap().unwrap().state.case.unwrap();
    assert_eq!(
        (case.stage, case.verdict),
        (Stage::Handled, Some(Verdict::FalseAlarm))
    );
    let missing = act(Uuid::now_v7(), Action::Sign, township("x"), 0, vec![]);
    assert_eq!(store.apply(&[missing], 100).unwrap()[0], Outcome::NotFound);
}

#[test]
fn a_recovering_event_closes_its_open_tickets() {
    let (_dir, store) = open_store();
    let key = "camera-outage/cam-1";
    let offline = event("camera.offline", Some(key), vec![]);
    let stalled = event("camera.stalled", Some(key), vec![]);
    let (a, b) = (offline.id, stalled.id);
    store
        .apply(&[Op::Commit(vec![offline, stalled])], 100)
        .unwrap();
    assert_eq!(store.open_pairs(key).unwrap(), vec![a, b]);
    let resolves = vec![
        Resolve {
            id: a,
            outage_s: Some(600),
        },
        Resolve {
            id: b,
            outage_s: None,
        },
    ];
    let online = event("camera.online", None, resolves);
    let online_id = online.id;
    store.apply(&[Op::Commit(vec![online])], 100).unwrap();
    for id in [a, b] {
        let case = store.get(id).unwrap().unwrap().state.case.unwrap();
        assert_eq!(case.stage, Stage::Closed);
        assert_eq!(case.verdict, Some(Verdict::Recovered));
        assert_eq!(case.resolved_by, Some(online_id));
        assert!(case.outage_s.is_some());
    }
    let outage = |id| store.get(id).unwrap().unwrap().state.case.unwrap().outage_s;
    assert_eq!(outage(a), Some(600), "the events' own times when given");
    assert!(store.open_pairs(key).unwrap().is_empty());
}

#[test]
fn info_events_close_once_delivered_and_unrouted_at_once() {
    let (_dir, store) = open_store();
    let mut online = event("unit.online", None, vec![]);
    online.close_on_delivery = true;
    let mut quiet = event("unit.online", None, vec![]);
    quiet.close_on_delivery = true;
    quiet.deliver = false;
    let (id, quiet_id) = (online.id, quiet.id);
    store
        .apply(&[Op::Commit(vec![online, quiet])], 100)
        .unwrap();
    let stage = |id| store.get(id).unwrap().unwrap().state.case.unwrap().stage;
    assert_eq!(stage(id), Stage::Open);
    assert_eq!(stage(quiet_id), Stage::Closed);
    let item = store.pending("lanjiang", None, 1).unwrap().remove(0);
    let delivered = Op::Delivered {
        id,
        township: "lanjiang".into(),
        seq: item.seq,
        at: Utc::now(),
    };
    store.apply(&[delivered], 100).unwrap();
    assert_eq!(stage(id), Stage::Closed);
}

#[test]
fn a_row_from_before_the_closed_loop_reads_as_its_case() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.redb");
    let id = Uuid::now_v7();
    {
        let store = Store::open(&path).unwrap();
        store
            .apply(&[Op::Commit(vec![event("fire.alarm", None, vec![])])], 10)
            .unwrap();
    }
    {
        // the state row as the previous version wrote it
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let events: TableDefinition<u128, &[u8]> = TableDefinition::new("events");
            let state: TableDefinition<u128, &[u8]> = TableDefinition::new("state");
            txn.open_table(events)
                .unwrap()
                .insert(id.as_u128(), b"{}".as_slice())
                .unwrap();
            let row = r#"{"township":"lanjiang","kind":"fire.alarm","seq":9,"committed_at":"2026-11-01T00:00:00Z","delivery":"delivered","attempts":0,"signed":{"by":"wang","at":"2026-11-01T00:01:00Z"},"feedback":[{"by":"wang","result":"checked","at":"2026-11-01T00:05:00Z"}]}"#;
            txn.open_table(state)
                .unwrap()
                .insert(id.as_u128(), row.as_bytes())
                .unwrap();
        }
        txn.commit().unwrap();
    }
    let store = Store::open(&path).unwrap();
    let case = store.get(id).unwrap().unwrap().state.case.unwrap();
    assert_eq!(case.stage, Stage::Signed);
    assert_eq!(case.signed.unwrap().by, "wang");
    assert_eq!(case.feedback[0].note, "checked");
}

#[test]
fn a_redelivered_message_gets_its_first_ids_and_commits_nothing() {
    use alerts::outbox::MessageKey;
    let (_dir, store) = open_store();
    let key = |window_ms| MessageKey {
        key: "mqtt:u-1:status:abc".into(),
        window_ms,
    };
    let first = event("fire.alarm", None, vec![]);
    let id = first.id;
    let op = |e: NewEvent, window_ms| Op::CommitMessage {
        key: key(window_ms),
        own: vec![e.id],
        events: vec![e],
    };
    assert!(matches!(
        store.apply(&[op(first, 60_000)], 100).unwrap()[0],
        Outcome::Committed(_)
    ));
    let again = event("fire.alarm", None, vec![]);
    let again_id = again.id;
    assert_eq!(
        store.apply(&[op(again, 60_000)], 100).unwrap()[0],
        Outcome::Repeated(vec![id])
    );
    assert!(
        store.get(again_id).unwrap().is_none(),
        "nothing committed the second time"
    );
    assert_eq!(store.stats().unwrap().events, 1);
    // past its window the same key is a new message
    std::thread::sleep(std::time::Duration::from_millis(5));
    let later = event("fire.alarm", None, vec![]);
    assert!(matches!(
        store.apply(&[op(later, 1)], 100).unwrap()[0],
        Outcome::Committed(_)
    ));
}

/// Ids listed for a stage (or the overdue ones).
fn listed(store: &Store, stage: Option<Stage>) -> Vec<Uuid> {
    let q = alerts::outbox::ListQuery {
        stage,
        limit: 100,
        ..Default::default()
    };
    store
        .list(&q)
        .unwrap()
        .events
        .iter()
        .map(|e| e.id)
        .collect()
}

#[test]
fn open_cases_are_listed_from_their_index_and_leave_it_when_closed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.redb");
    // many notices (no case) before them, which an open list does not read
    let info: Vec<NewEvent> = (0..200)
        .map(|_| event("event.updated", None, vec![]))
        .collect();
    let (a, b) = (
        event("fire.alarm", None, vec![]),
        event("fire.alarm", None, vec![]),
    );
    let (ida, idb) = (a.id, b.id);
    {
        let store = Store::open(&path).unwrap();
        store.apply(&[Op::Commit(info)], 1000).unwrap();
        store.apply(&[Op::Commit(vec![a, b])], 1000).unwrap();
        assert_eq!(listed(&store, Some(Stage::Open)), [ida, idb]);
        store
            .apply(&[act(ida, Action::Sign, township("wang"), 0, vec![])], 1000)
            .unwrap();
        assert_eq!(listed(&store, Some(Stage::Open)), [idb]);
        assert_eq!(listed(&store, Some(Stage::Signed)), [ida]);
        let feedback = Action::Feedback {
            verdict: Some(Verdict::FalseAlarm),
            note: String::new(),
        };
        store
            .apply(&[act(ida, feedback, township("wang"), 1, vec![])], 1000)
            .unwrap();
        store
            .apply(
                &[act(ida, Action::Close, township("wang"), 2, vec![])],
                1000,
            )
            .unwrap();
        assert_eq!(listed(&store, Some(Stage::Signed)), Vec::<Uuid>::new());
        assert_eq!(listed(&store, Some(Stage::Closed)), [ida]);
    }
    {
        // a file from before the index: its rows gone, its marker back to 1
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let open: TableDefinition<u128, ()> = TableDefinition::new("open_cases");
            let meta: TableDefinition<&str, u64> = TableDefinition::new("meta");
            let mut t = txn.open_table(open).unwrap();
            t.retain(|_, _| false).unwrap();
            txn.open_table(meta)
                .unwrap()
                .insert("cases_indexed", 1)
                .unwrap();
        }
        txn.commit().unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(listed(&store, Some(Stage::Open)), [idb], "indexed on open");
}
