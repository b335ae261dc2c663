//! The writer thread: group commit, deferred delivery marks, explicit flush.

use alerts::event::{Event, Kind, Source, SourceKind, TownshipRef};
use alerts::outbox::{DeliveryStatus, Op, Outbox, OutboxConfig, Store};
use alerts::signal::Protocol;
use alerts::Metrics;
use std::time::{Duration, Instant};

fn event(township: &str) -> Event {
    let now = chrono::Utc::now().fixed_offset();
    let source = Source {
        kind: SourceKind::Unit,
        id: "u".into(),
        name: "u".into(),
        protocol: Protocol::Http,
    };
    let township = TownshipRef {
        code: township.into(),
        name: township.into(),
    };
    let id = uuid::Uuid::now_v7();
    Event {
        title: "t".into(),
        ..Event::envelope(id, Kind::FireAlarm, source, township, now, now)
    }
}

async fn poll(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commits_are_grouped_and_marks_become_visible_and_durable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.redb");
    let metrics = Metrics::new();
    let outbox = Outbox::open(
        &path,
        ["a".to_string(), "b".to_string()],
        OutboxConfig::default(),
        metrics.clone(),
    )
    .unwrap();

    assert!(outbox.is_alive(), "the writer thread runs");
    // 64 concurrent commits: all acknowledged, in fewer transactions than commits
    let mut tasks = Vec::new();
    for i in 0..64 {
        let o = outbox.clone();
        tasks.push(tokio::spawn(async move {
            o.commit(&[event(if i % 2 == 0 { "a" } else { "b" })], true)
                .await
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap().unwrap().committed[0]);
    }
    assert_eq!(outbox.pending(), 64);
    let txns = metrics.outbox_commit_batch_events.get_sample_count();
    assert!(
        txns < 64,
        "64 commits took {txns} transactions: not grouped"
    );

    // a delivery mark alone (no other traffic) is applied by the flusher's tick
    let first = outbox.store().pending("a", None, 1).unwrap().remove(0);
    outbox
        .record(Op::Delivered {
            id: first.id,
            township: "a".into(),
            seq: first.seq,
            at: chrono::Utc::now(),
        })
        .await;
    poll("the mark to be visible", || {
        outbox
            .store()
            .get(first.id)
            .unwrap()
            .unwrap()
            .state
            .delivery
            == DeliveryStatus::Delivered
    })
    .await;
    assert_eq!(outbox.pending(), 63);

    // an explicit flush makes it durable: after the outbox closes, the file says so
    outbox.flush().await.unwrap();
    drop(outbox);
    let mut store = None;
    poll("the writer to close the file", || {
        store = Store::open(&path).ok();
        store.is_some()
    })
    .await;
    let store = store.unwrap();
    assert_eq!(
        store.get(first.id).unwrap().unwrap().state.delivery,
        DeliveryStatus::Delivered
    );
    assert_eq!(store.stats().unwrap().pending, 63);
    for c in ids {
        assert!(store.get(c.id).unwrap().is_some());
    }
}
