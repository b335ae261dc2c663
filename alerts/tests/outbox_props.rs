//! Property test: across random commits, deliveries, dead letters, replays, restarts and crashes
//! in the middle of a batch, the outbox loses no acknowledged event and keeps each township's
//! queue in commit order.

use alerts::outbox::{DeliveryStatus, NewEvent, Op, Outcome, Store};
use bytes::Bytes;
use chrono::Utc;
use proptest::prelude::*;
use std::collections::{HashMap, VecDeque};
use uuid::Uuid;

const TOWNSHIPS: [&str; 3] = ["lanjiang", "yunshan", "zhuge"];

#[derive(Debug, Clone)]
enum Action {
    Commit { township: usize, n: usize },
    Deliver { township: usize },
    DeadLetter { township: usize },
    ReplayAll,
    Restart,
    CrashMidBatch { township: usize, n: usize },
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        4 => (0..3usize, 1..5usize).prop_map(|(township, n)| Action::Commit { township, n }),
        3 => (0..3usize).prop_map(|township| Action::Deliver { township }),
        1 => (0..3usize).prop_map(|township| Action::DeadLetter { township }),
        1 => Just(Action::ReplayAll),
        1 => Just(Action::Restart),
        1 => (0..3usize, 1..5usize).prop_map(|(township, n)| Action::CrashMidBatch { township, n }),
    ]
}

fn new_events(township: usize, n: usize) -> Vec<NewEvent> {
    (0..n)
        .map(|_| {
            let id = Uuid::now_v7();
            NewEvent {
                id,
                township: TOWNSHIPS[township].to_string(),
                // a notice: no case, so delivery alone decides what a purge may take
                kind: "event.evidence".into(),
                body: Bytes::from(format!("{{\"id\":\"{id}\"}}")),
                deliver: true,
                route: None,
                case: None,
                close_on_delivery: false,
                resolves: Vec::new(),
            }
        })
        .collect()
}

struct Model {
    queues: HashMap<&'static str, VecDeque<Uuid>>,
    dead: Vec<(Uuid, &'static str)>,
    acknowledged: Vec<Uuid>,
}

fn check(store: &Store, model: &Model) -> Result<(), TestCaseError> {
    let mut total = 0;
    for t in TOWNSHIPS {
        let got: Vec<Uuid> = store
            .pending(t, None, usize::MAX)
            .unwrap()
            .iter()
            .map(|p| p.id)
            .collect();
        let want: Vec<Uuid> = model.queues[t].iter().copied().collect();
        prop_assert_eq!(&got, &want, "queue of {} in commit order", t);
        total += want.len() as u64;
    }
    let stats = store.stats().unwrap();
    prop_assert_eq!(stats.pending, total);
    prop_assert_eq!(stats.dead_letters, model.dead.len() as u64);
    for id in &model.acknowledged {
        prop_assert!(
            store.get(*id).unwrap().is_some(),
            "acknowledged event {} lost",
            id
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn nothing_acknowledged_is_lost_and_order_holds(actions in prop::collection::vec(action(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.redb");
        let mut store = Store::open(&path).unwrap();
        let mut model = Model {
            queues: TOWNSHIPS.iter().map(|t| (*t, VecDeque::new())).collect(),
            dead: Vec::new(),
            acknowledged: Vec::new(),
        };
        for action in actions {
            match action {
                Action::Commit { township, n } => {
                    let events = new_events(township, n);
                    let out = store.apply(&[Op::Commit(events.clone())], u64::MAX).unwrap();
                    prop_assert!(matches!(&out[0], Outcome::Committed(c) if c.len() == n));
                    for e in events {
                        model.queues.get_mut(TOWNSHIPS[township]).unwrap().push_back(e.id);
                        model.acknowledged.push(e.id);
                    }
                }
                Action::Deliver { township } | Action::DeadLetter { township } => {
                    let t = TOWNSHIPS[township];
                    let head = store.pending(t, None, 1).unwrap();
                    let Some(item) = head.first() else { continue };
                    prop_assert_eq!(Some(&item.id), model.queues[t].front());
                    let op = if matches!(action, Action::Deliver { .. }) {
                        Op::Delivered { id: item.id, township: t.into(), seq: item.seq, at: Utc::now() }
                    } else {
                        model.dead.push((item.id, t));
                        Op::Dead { id: item.id, township: t.into(), seq: item.seq, error: "HTTP 400".into(), status: Some(400) }
                    };
                    store.apply(&[op], u64::MAX).unwrap();
                    model.queues.get_mut(t).unwrap().pop_front();
                }
                Action::ReplayAll => {
                    store.apply(&[Op::Replay { ids: vec![], township: None }], u64::MAX).unwrap();
                    // dead letters go back at the end of their queues, oldest id first
                    model.dead.sort_by_key(|(id, _)| *id);
                    for (id, t) in model.dead.drain(..) {
                        model.queues.get_mut(t).unwrap().push_back(id);
                    }
                }
                Action::Restart => {
                    drop(store);
                    store = Store::open(&path).unwrap();
                }
                Action::CrashMidBatch { township, n } => {
                    // a batch that never committed: none of it may appear, nothing else may go
                    store.abandon(&[Op::Commit(new_events(township, n))]).unwrap();
                    drop(store);
                    store = Store::open(&path).unwrap();
                }
            }
            check(&store, &model)?;
        }
        for id in &model.acknowledged {
            let stored = store.get(*id).unwrap().unwrap();
            let in_queue = model.queues.values().any(|q| q.contains(id));
            let dead = model.dead.iter().any(|(d, _)| d == id);
            let expected = if in_queue { DeliveryStatus::Pending } else if dead { DeliveryStatus::Dead } else { DeliveryStatus::Delivered };
            prop_assert_eq!(stored.state.delivery, expected);
        }
    }
}

#[test]
fn full_outbox_refuses_whole_batches_and_keeps_nothing_of_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("o.redb")).unwrap();
    let out = store.apply(&[Op::Commit(new_events(0, 3))], 4).unwrap();
    assert!(matches!(out[0], Outcome::Committed(_)));
    let refused = new_events(0, 2);
    let out = store.apply(&[Op::Commit(refused.clone())], 4).unwrap();
    assert_eq!(out[0], Outcome::Full { pending: 3, max: 4 });
    for e in refused {
        assert!(store.get(e.id).unwrap().is_none());
    }
    assert_eq!(store.stats().unwrap().pending, 3);
}

#[test]
fn purge_keeps_open_cases() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("o.redb")).unwrap();
    let mut alarm = new_events(0, 1).remove(0);
    alarm.kind = "fire.alarm".into();
    alarm.case = alerts::case::Case::new("fire.alarm");
    alarm.deliver = false;
    store.apply(&[Op::Commit(vec![alarm.clone()])], 10).unwrap();
    let all_old = Op::Purge {
        before: Utc::now() + chrono::Duration::hours(1),
        limit: 100,
        after: None,
    };
    assert_eq!(
        store.apply(&[all_old], 10).unwrap()[0],
        Outcome::Purged {
            purged: 0,
            next: None
        }
    );
    assert!(
        store.get(alarm.id).unwrap().is_some(),
        "an unhandled alarm stays"
    );
}

#[test]
fn purge_removes_old_delivered_events_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("o.redb")).unwrap();
    let events = new_events(0, 3);
    store.apply(&[Op::Commit(events.clone())], 10).unwrap();
    let head = store.pending(TOWNSHIPS[0], None, 1).unwrap().remove(0);
    let delivered = Op::Delivered {
        id: head.id,
        township: TOWNSHIPS[0].into(),
        seq: head.seq,
        at: Utc::now(),
    };
    store.apply(&[delivered], 10).unwrap();
    // nothing is old enough yet
    let not_yet = Op::Purge {
        before: Utc::now() - chrono::Duration::hours(1),
        limit: 100,
        after: None,
    };
    assert_eq!(
        store.apply(&[not_yet], 10).unwrap()[0],
        Outcome::Purged {
            purged: 0,
            next: None
        }
    );
    let all_old = Op::Purge {
        before: Utc::now() + chrono::Duration::hours(1),
        limit: 100,
        after: None,
    };
    assert_eq!(
        store.apply(&[all_old], 10).unwrap()[0],
        Outcome::Purged {
            purged: 1,
            next: None
        }
    );
    assert!(
        store.get(events[0].id).unwrap().is_none(),
        "the delivered one is gone"
    );
    assert!(
        store.get(events[1].id).unwrap().is_some(),
        "pending ones stay"
    );
    assert_eq!(store.pending(TOWNSHIPS[0], None, 10).unwrap().len(), 2);
}

/// A state row that does not decode (a damaged file, a foreign writer) is counted and skipped:
/// reads, delivery marks and sign-offs answer, nothing panics, the other events are intact.
#[test]
fn a_corrupt_state_row_is_skipped_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.redb");
    let events = new_events(0, 2);
    let (bad, good) = (events[0].id, events[1].id);
    {
        let store = Store::open(&path).unwrap();
        store.apply(&[Op::Commit(events)], u64::MAX).unwrap();
    }
    {
        // written behind the store's back, into its own table
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let state: redb::TableDefinition<u128, &[u8]> = redb::TableDefinition::new("state");
            let mut t = txn.open_table(state).unwrap();
            t.insert(bad.as_u128(), b"{not json".as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }
    let before = alerts::outbox::store::corrupt_rows();
    let store = Store::open(&path).unwrap();
    assert!(
        store.get(bad).unwrap().is_none(),
        "the corrupt event reads as absent"
    );
    assert!(store.get(good).unwrap().is_some());
    let page = store
        .list(&alerts::outbox::ListQuery {
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    let listed: Vec<Uuid> = page.events.iter().map(|e| e.id).collect();
    assert_eq!(listed, vec![good]);
    let pending = store.pending(TOWNSHIPS[0], None, 10).unwrap();
    assert_eq!(pending.len(), 2, "both still go out: the body is intact");
    // the writer takes a mark for it without a panic, and goes on with the next
    store
        .apply(
            &[
                Op::Delivered {
                    id: bad,
                    township: TOWNSHIPS[0].into(),
                    seq: pending[0].seq,
                    at: Utc::now(),
                },
                Op::Delivered {
                    id: good,
                    township: TOWNSHIPS[0].into(),
                    seq: pending[1].seq,
                    at: Utc::now(),
                },
            ],
            u64::MAX,
        )
        .unwrap();
    assert_eq!(
        store.get(good).unwrap().unwrap().state.delivery,
        DeliveryStatus::Delivered
    );
    assert!(alerts::outbox::store::corrupt_rows() > before);
    let rendered = alerts::Metrics::new().render();
    let shown = rendered
        .lines()
        .find_map(|l| l.strip_prefix("gateway_outbox_corrupt_rows "))
        .and_then(|v| v.parse::<u64>().ok());
    assert!(shown.is_some_and(|n| n > before), "{rendered}");
}

#[test]
fn purge_goes_on_past_open_cases_with_its_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("o.redb")).unwrap();
    let mut events = new_events(0, 7);
    for e in events.iter_mut() {
        e.deliver = false;
    }
    for e in events.iter_mut().take(5) {
        e.kind = "fire.alarm".into();
        e.case = alerts::case::Case::new("fire.alarm");
    }
    store.apply(&[Op::Commit(events.clone())], 10).unwrap();
    let before = Utc::now() + chrono::Duration::hours(1);
    let purge = |after| Op::Purge {
        before,
        limit: 1,
        after,
    };
    let (mut after, mut purged, mut calls) = (None, 0, 0);
    loop {
        calls += 1;
        match store.apply(&[purge(after)], 10).unwrap().remove(0) {
            Outcome::Purged { purged: n, next } => {
                purged += n;
                after = next;
            }
            other => panic!("{other:?}"),
        }
        if after.is_none() || calls > 10 {
            break;
        }
    }
    assert_eq!(purged, 2, "both closed notices, none of the open alarms");
    assert!(
        calls <= 4,
        "the cursor steps over the open cases: {calls} calls"
    );
    for e in &events[..5] {
        assert!(store.get(e.id).unwrap().is_some());
    }
}
