//! Applied changes: a row write and the row's previous state under the change's input offset,
//! kept until the input offset is committed.

use hookline_state_store::{AppliedChange, RowWrite, StateStore};

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "hookline-state-store-changes-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn applied(id: &str, key: &str, previous: Option<&str>) -> Option<AppliedChange> {
    Some(AppliedChange {
        change_id: id.as_bytes().to_vec(),
        key: key.as_bytes().to_vec(),
        previous: previous.map(|p| p.as_bytes().to_vec()),
    })
}

#[test]
fn a_change_keeps_the_row_before_it_until_its_offset_is_committed() {
    let dir = temp_dir("keep");
    {
        let store = StateStore::open(&dir).unwrap();
        let k = b"12:4711";
        store
            .apply_change(3, 10, b"chg-create", k, None, RowWrite::Put(b"A"))
            .unwrap();
        store
            .apply_change(3, 11, b"chg-update", k, Some(b"A"), RowWrite::Put(b"B"))
            .unwrap();
        store
            .apply_change(3, 12, b"chg-refused", k, Some(b"B"), RowWrite::Keep)
            .unwrap();
        store
            .apply_change(4, 11, b"chg-other", b"12:5", None, RowWrite::Put(b"C"))
            .unwrap();
        assert_eq!(store.get(3, k).unwrap().as_deref(), Some(&b"B"[..]));
        store
            .apply_change(3, 13, b"chg-delete", k, Some(b"B"), RowWrite::Delete)
            .unwrap();
        assert_eq!(store.get(3, k).unwrap(), None, "the delete removed the row");
        store.flush().unwrap();
    }
    // What a restart finds: every change with the row before it.
    let store = StateStore::open(&dir).unwrap();
    assert_eq!(
        store.applied_change(3, 10).unwrap(),
        applied("chg-create", "12:4711", None)
    );
    assert_eq!(
        store.applied_change(3, 11).unwrap(),
        applied("chg-update", "12:4711", Some("A"))
    );
    assert_eq!(
        store.applied_change(3, 12).unwrap(),
        applied("chg-refused", "12:4711", Some("B"))
    );
    assert_eq!(store.applied_change(3, 14).unwrap(), None);
    assert_eq!(store.applied_change(5, 11).unwrap(), None, "by partition");

    // A table restore from the beginning drops the rows, not the changes: those are about the
    // input topic, whose offsets are not committed yet.
    store.drop_partition(3).unwrap();
    assert!(store.applied_change(3, 11).unwrap().is_some());

    // The group committed offset 12 of partition 3: what lies below is never read again.
    assert_eq!(store.forget_changes_below(3, 12).unwrap(), 2);
    assert_eq!(store.applied_change(3, 10).unwrap(), None);
    assert_eq!(store.applied_change(3, 11).unwrap(), None);
    assert!(store.applied_change(3, 12).unwrap().is_some());
    assert!(store.applied_change(3, 13).unwrap().is_some());
    assert!(
        store.applied_change(4, 11).unwrap().is_some(),
        "other partitions keep theirs"
    );
    assert_eq!(store.forget_changes_below(3, 12).unwrap(), 0, "idempotent");
    assert_eq!(store.forget_changes_below(3, i64::MAX).unwrap(), 2);
    assert_eq!(store.applied_change(3, 13).unwrap(), None);
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}
