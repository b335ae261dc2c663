//! An online backup: a consistent copy taken while a writer keeps committing, holding every
//! table of the file.

use alerts::case::Case;
use alerts::outbox::{NewEvent, Op, Store};
use bytes::Bytes;
use std::sync::Arc;
use uuid::Uuid;

fn alarm() -> NewEvent {
    let id = Uuid::now_v7();
    NewEvent {
        id,
        township: "lanjiang".into(),
        kind: "fire.alarm".into(),
        body: Bytes::from(format!("{{\"id\":\"{id}\"}}")),
        deliver: true,
        route: None,
        case: Case::new("fire.alarm"),
        close_on_delivery: false,
        resolves: vec![],
    }
}

#[test]
fn a_backup_taken_while_committing_is_consistent_and_complete() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("outbox.redb")).unwrap());
    for _ in 0..200 {
        store
            .apply(&[Op::Commit(vec![alarm()])], 1_000_000)
            .unwrap();
    }
    // a writer keeps committing while the backup is taken
    let writing = {
        let store = store.clone();
        std::thread::spawn(move || {
            for _ in 0..2_000 {
                store
                    .apply(&[Op::Commit(vec![alarm()])], 1_000_000)
                    .unwrap();
            }
        })
    };
    let to = dir.path().join("backup.redb");
    let done = store.backup_to(&to).unwrap();
    writing.join().unwrap();
    assert!(!dir.path().join("backup.redb.tmp").exists());

    // every table of the file is in the copy (read as written, before a Store adds any)
    let tables: Vec<String> = {
        use redb::{ReadableDatabase, TableHandle};
        let db = redb::Database::open(&to).unwrap();
        let txn = db.begin_read().unwrap();
        let mut names: Vec<String> = txn
            .list_tables()
            .unwrap()
            .map(|t| t.name().to_string())
            .collect();
        names.sort();
        names
    };
    assert_eq!(tables, store.table_names().unwrap());
    let copy = Store::open(&to).unwrap();
    let stats = copy.stats().unwrap();
    // one moment: as many pending deliveries as events, whatever the writer did meanwhile
    assert!(stats.events >= 200, "{stats:?}");
    assert_eq!(stats.pending, stats.events, "{stats:?}");
    assert!(done.rows > stats.events, "{done:?}");
    assert_eq!(store.stats().unwrap().events, 2_200);
}
