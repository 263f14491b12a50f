use std::collections::HashMap;
use std::error::Error as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hookline_state_store::{StateStore, StoreError, TableRecord};

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "hookline-state-store-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        Self(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if self.0.is_dir() {
            let _ = std::fs::remove_dir_all(&self.0);
        } else {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

fn rec(offset: i64, key: &str, value: Option<&str>) -> TableRecord {
    (
        offset,
        key.as_bytes().to_vec(),
        value.map(|v| v.as_bytes().to_vec()),
    )
}

#[test]
fn rows_round_trip_and_partitions_are_isolated() {
    let dir = TempDir::new("roundtrip");
    let store = StateStore::open(dir.path()).unwrap();
    assert_eq!(store.get(0, b"12:4711").unwrap(), None);

    store.put(0, b"12:4711", Some(br#"{"v":"own"}"#)).unwrap();
    store
        .apply_table_record(1, 7, b"12:4711", Some(br#"{"v":"table"}"#))
        .unwrap();
    assert_eq!(
        store.get(0, b"12:4711").unwrap().as_deref(),
        Some(&br#"{"v":"own"}"#[..])
    );
    assert_eq!(
        store.get(1, b"12:4711").unwrap().as_deref(),
        Some(&br#"{"v":"table"}"#[..]),
        "the same key in another partition is another row"
    );
    assert_eq!(store.get(2, b"12:4711").unwrap(), None);
    assert_eq!(
        store.get(0, b"12:471").unwrap(),
        None,
        "a prefix of a key is not the key"
    );

    store.put(0, b"12:4711", Some(b"second")).unwrap();
    assert_eq!(
        store.get(0, b"12:4711").unwrap().as_deref(),
        Some(&b"second"[..])
    );

    // Partition ids whose big-endian bytes would collide with a naive encoding.
    store.put(-1, b"k", Some(b"minus one")).unwrap();
    store.put(256, b"k", Some(b"two five six")).unwrap();
    store.put(1, b"\0\0\x01\0k", Some(b"binary key")).unwrap();
    assert_eq!(
        store.get(-1, b"k").unwrap().as_deref(),
        Some(&b"minus one"[..])
    );
    assert_eq!(
        store.get(256, b"k").unwrap().as_deref(),
        Some(&b"two five six"[..])
    );
    assert_eq!(store.get(1, b"k").unwrap(), None);

    // An empty value is a value, not a tombstone.
    store.put(3, b"empty", Some(b"")).unwrap();
    assert_eq!(store.get(3, b"empty").unwrap().as_deref(), Some(&b""[..]));

    let clone = store.clone();
    assert_eq!(
        clone.get(256, b"k").unwrap().as_deref(),
        Some(&b"two five six"[..])
    );
}

#[test]
fn tombstones_delete_rows() {
    let dir = TempDir::new("tombstones");
    let store = StateStore::open(dir.path()).unwrap();
    store.apply_table_record(0, 0, b"12:1", Some(b"a")).unwrap();
    store.apply_table_record(0, 1, b"12:2", Some(b"b")).unwrap();
    store.apply_table_record(0, 2, b"12:1", None).unwrap();
    assert_eq!(store.get(0, b"12:1").unwrap(), None);
    assert_eq!(store.get(0, b"12:2").unwrap().as_deref(), Some(&b"b"[..]));
    assert_eq!(
        store.checkpoint(0).unwrap(),
        Some(3),
        "a tombstone moves the checkpoint too"
    );

    store.put(0, b"12:2", None).unwrap();
    assert_eq!(store.get(0, b"12:2").unwrap(), None);
    store.put(0, b"12:never", None).unwrap();
    assert_eq!(store.get(0, b"12:never").unwrap(), None);

    // Within one batch the last record of a key wins, as if applied one by one.
    store
        .apply_table_batch(
            0,
            &[
                rec(3, "12:3", Some("x")),
                rec(4, "12:3", None),
                rec(5, "12:4", None),
                rec(6, "12:4", Some("y1")),
                rec(7, "12:4", Some("y2")),
            ],
        )
        .unwrap();
    assert_eq!(store.get(0, b"12:3").unwrap(), None);
    assert_eq!(store.get(0, b"12:4").unwrap().as_deref(), Some(&b"y2"[..]));

    drop(store);
    let store = StateStore::open(dir.path()).unwrap();
    assert_eq!(
        store.get(0, b"12:1").unwrap(),
        None,
        "tombstones survive a reopen"
    );
    assert_eq!(store.get(0, b"12:3").unwrap(), None);
    assert_eq!(store.get(0, b"12:4").unwrap().as_deref(), Some(&b"y2"[..]));
}

#[test]
fn checkpoints_and_rows_survive_close_and_reopen() {
    let dir = TempDir::new("reopen");
    {
        let store = StateStore::open(dir.path()).unwrap();
        assert_eq!(store.checkpoint(0).unwrap(), None);
        store
            .apply_table_record(0, 41, b"12:1", Some(b"one"))
            .unwrap();
        store
            .apply_table_batch(
                1,
                &[rec(10, "12:2", Some("two")), rec(11, "12:3", Some("three"))],
            )
            .unwrap();
        store.set_checkpoint(2, 1000).unwrap();
        store.put(3, b"12:9", Some(b"own")).unwrap();
        store.flush().unwrap();
        // Written after the last flush: reaches the OS on return, so it survives a close too.
        store
            .apply_table_record(0, 42, b"12:5", Some(b"five"))
            .unwrap();
    }
    let store = StateStore::open(dir.path()).unwrap();
    assert_eq!(store.checkpoint(0).unwrap(), Some(43));
    assert_eq!(store.checkpoint(1).unwrap(), Some(12));
    assert_eq!(store.checkpoint(2).unwrap(), Some(1000));
    assert_eq!(
        store.checkpoint(3).unwrap(),
        None,
        "put moves no checkpoint"
    );
    assert_eq!(store.get(0, b"12:1").unwrap().as_deref(), Some(&b"one"[..]));
    assert_eq!(
        store.get(0, b"12:5").unwrap().as_deref(),
        Some(&b"five"[..])
    );
    assert_eq!(
        store.get(1, b"12:3").unwrap().as_deref(),
        Some(&b"three"[..])
    );
    assert_eq!(store.get(3, b"12:9").unwrap().as_deref(), Some(&b"own"[..]));

    store.set_checkpoint(0, 7).unwrap();
    assert_eq!(
        store.checkpoint(0).unwrap(),
        Some(7),
        "set_checkpoint may move backwards"
    );
}

#[test]
fn a_batch_moves_its_checkpoint_with_its_rows() {
    let dir = TempDir::new("batch");
    let store = StateStore::open(dir.path()).unwrap();
    store.apply_table_batch(0, &[]).unwrap();
    assert_eq!(
        store.checkpoint(0).unwrap(),
        None,
        "an empty batch changes nothing"
    );

    let batch: Vec<_> = (100..600)
        .map(|o| rec(o, &format!("12:{o}"), Some(&format!("v{o}"))))
        .collect();
    store.apply_table_batch(0, &batch).unwrap();
    assert_eq!(store.checkpoint(0).unwrap(), Some(600));
    for o in 100..600 {
        assert_eq!(
            store.get(0, format!("12:{o}").as_bytes()).unwrap(),
            Some(format!("v{o}").into_bytes())
        );
    }
    // The checkpoint is the highest offset + 1, whatever the order of the records.
    store
        .apply_table_batch(0, &[rec(605, "a", Some("1")), rec(603, "b", Some("2"))])
        .unwrap();
    assert_eq!(store.checkpoint(0).unwrap(), Some(606));
    assert_eq!(
        store.checkpoint(1).unwrap(),
        None,
        "only the batch's partition moves"
    );

    // Visibility: a thread that sees a checkpoint sees every row below it.
    let writer = {
        let store = store.clone();
        std::thread::spawn(move || {
            for b in 0..200i64 {
                let recs: Vec<_> = (0..50)
                    .map(|i| {
                        let o = b * 50 + i;
                        rec(o, &format!("k{o}"), Some("x"))
                    })
                    .collect();
                store.apply_table_batch(7, &recs).unwrap();
            }
        })
    };
    let mut checked = 0;
    while !writer.is_finished() || checked == 0 {
        if let Some(next) = store.checkpoint(7).unwrap() {
            for o in (next - 50).max(0)..next {
                assert!(
                    store.get(7, format!("k{o}").as_bytes()).unwrap().is_some(),
                    "checkpoint {next} is visible but the row of offset {o} is not"
                );
            }
            checked += 1;
        }
    }
    writer.join().unwrap();
    assert_eq!(store.checkpoint(7).unwrap(), Some(200 * 50));
}

const CRASH_DIR_ENV: &str = "HOOKLINE_STATE_STORE_CRASH_DIR";
const CRASH_BATCH: i64 = 300;
/// The child prints "child: running" once this many batches are applied, and goes on.
const RUNNING_AFTER: i64 = 100;

/// Runs as a child process of `a_killed_process_loses_no_half_batch`: applies batches until it
/// is killed.
#[test]
#[ignore = "child process of a_killed_process_loses_no_half_batch"]
fn crash_child() {
    let Some(dir) = std::env::var_os(CRASH_DIR_ENV) else {
        return;
    };
    let store = StateStore::open(Path::new(&dir)).unwrap();
    let value = "x".repeat(300);
    for b in 0.. {
        let recs: Vec<_> = (0..CRASH_BATCH)
            .map(|i| {
                let o = b * CRASH_BATCH + i;
                rec(o, &format!("k{o}"), Some(&value))
            })
            .collect();
        store.apply_table_batch(0, &recs).unwrap();
        if b + 1 == RUNNING_AFTER {
            println!("child: running");
        }
    }
}

/// Runs `crash_child` in a child process over a fresh folder and SIGKILLs it right after it
/// says it has applied [`RUNNING_AFTER`] batches (it goes on applying more): mid-flight.
fn kill_a_writing_child() -> TempDir {
    let dir = TempDir::new("crash");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CRASH_DIR_ENV, dir.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.contains("child: running") {
                let _ = tx.send(());
                break;
            }
        }
    });
    let running = rx.recv_timeout(Duration::from_secs(60));
    let ended_early = child.try_wait().unwrap();
    child.kill().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "the child outlived SIGKILL by 10 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(running.is_ok(), "the child said it was running within 60 s");
    assert!(ended_early.is_none(), "the child stopped on its own");
    dir
}

#[test]
fn a_killed_process_loses_no_half_batch() {
    let dir = kill_a_writing_child();
    let store = StateStore::open(dir.path()).unwrap();
    let next = store
        .checkpoint(0)
        .unwrap()
        .expect("the child applied some batches");
    eprintln!("killed after {} batches", next / CRASH_BATCH);

    assert_eq!(
        next % CRASH_BATCH,
        0,
        "the checkpoint is at a batch boundary"
    );
    for o in 0..next {
        assert!(
            store.get(0, format!("k{o}").as_bytes()).unwrap().is_some(),
            "row {o} is missing below checkpoint {next}"
        );
    }
    for o in next..next + 2 * CRASH_BATCH {
        assert_eq!(
            store.get(0, format!("k{o}").as_bytes()).unwrap(),
            None,
            "row {o} is present above checkpoint {next}: half a batch survived"
        );
    }
}

/// The crate promises (`//!` Durability) that every write reaches the operating system before
/// the method returns, so it survives the process being killed.
#[test]
#[ignore = "reason: product defect in crates/state-store: the last batch applied before SIGKILL is lost (checkpoint 29,700 = 99 batches after the child applied 100 and said so); fjall's write batch is committed without durability, so its tail stays in the journal's 8 KiB BufWriter, contrary to the crate's 'Durability' docs"]
fn batches_applied_before_a_kill_survive_it() {
    let dir = kill_a_writing_child();
    let store = StateStore::open(dir.path()).unwrap();
    let next = store.checkpoint(0).unwrap().unwrap_or(0);
    assert!(
        next >= RUNNING_AFTER * CRASH_BATCH,
        "the {RUNNING_AFTER} batches applied before the child said so are kept (checkpoint {next} = {} batches)",
        next / CRASH_BATCH
    );
}

#[test]
fn drop_partition_removes_only_that_partition() {
    let dir = TempDir::new("drop");
    let store = StateStore::open(dir.path()).unwrap();
    for p in [0, 1, 2] {
        let recs: Vec<_> = (0..2_500)
            .map(|o| rec(o, &format!("12:{o}"), Some(&format!("p{p}"))))
            .collect();
        store.apply_table_batch(p, &recs).unwrap();
    }
    store.put(1, b"own", Some(b"row")).unwrap();

    assert_eq!(store.partitions().unwrap(), vec![0, 1, 2]);
    store.drop_partition(1).unwrap();
    assert_eq!(store.partitions().unwrap(), vec![0, 2]);
    assert_eq!(store.checkpoint(1).unwrap(), None);
    assert_eq!(store.get(1, b"own").unwrap(), None);
    for o in 0..2_500 {
        assert_eq!(store.get(1, format!("12:{o}").as_bytes()).unwrap(), None);
    }
    for p in [0, 2] {
        assert_eq!(store.checkpoint(p).unwrap(), Some(2_500));
        for o in 0..2_500 {
            assert_eq!(
                store.get(p, format!("12:{o}").as_bytes()).unwrap(),
                Some(format!("p{p}").into_bytes())
            );
        }
    }
    store.drop_partition(9).unwrap(); // never seen: nothing to do

    drop(store);
    let store = StateStore::open(dir.path()).unwrap();
    assert_eq!(
        store.get(1, b"12:7").unwrap(),
        None,
        "the drop is persistent"
    );
    assert_eq!(store.get(0, b"12:7").unwrap().as_deref(), Some(&b"p0"[..]));

    // A partition that is assigned again starts empty and restores normally.
    assert_eq!(store.checkpoint(1).unwrap(), None);
    store
        .apply_table_record(1, 0, b"12:7", Some(b"again"))
        .unwrap();
    assert_eq!(
        store.get(1, b"12:7").unwrap().as_deref(),
        Some(&b"again"[..])
    );
    assert_eq!(store.get(1, b"12:8").unwrap(), None);
}

#[test]
fn len_approx_counts_rows() {
    let dir = TempDir::new("len");
    let store = StateStore::open(dir.path()).unwrap();
    assert_eq!(store.len_approx(), 0);
    let recs: Vec<_> = (0..1_000)
        .map(|o| rec(o, &format!("12:{o}"), Some("v")))
        .collect();
    store.apply_table_batch(0, &recs).unwrap();
    store.apply_table_batch(1, &recs).unwrap();
    let n = store.len_approx();
    assert!((2_000..=2_010).contains(&n), "len_approx {n}");
}

#[test]
fn readers_run_concurrently_with_a_writer() {
    const KEYS: usize = 64;
    const BATCHES: i64 = 300;
    let dir = TempDir::new("concurrent");
    let store = StateStore::open(dir.path()).unwrap();
    let done = Arc::new(AtomicBool::new(false));

    // Batch g of partition p writes generation g to every key, at offsets g*KEYS.., so its
    // checkpoint is (g+1)*KEYS.
    let writer = {
        let store = store.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            for g in 0..BATCHES {
                for p in 0..2 {
                    let recs: Vec<_> = (0..KEYS as i64)
                        .map(|i| {
                            rec(
                                g * KEYS as i64 + i,
                                &format!("12:{i}"),
                                Some(&g.to_string()),
                            )
                        })
                        .collect();
                    store.apply_table_batch(p, &recs).unwrap();
                }
            }
            done.store(true, Ordering::Release);
        })
    };
    let readers: Vec<_> = (0..3)
        .map(|r| {
            let store = store.clone();
            let done = done.clone();
            std::thread::spawn(move || {
                let mut last: HashMap<(i32, usize), i64> = HashMap::new();
                let mut reads = 0u64;
                let mut i = r;
                while !done.load(Ordering::Acquire) {
                    let p = (i % 2) as i32;
                    let key = i % KEYS;
                    i = i.wrapping_mul(31).wrapping_add(7) % 1_000_003;
                    let floor = store.checkpoint(p).unwrap().map(|c| c / KEYS as i64 - 1);
                    let seen = store.get(p, format!("12:{key}").as_bytes()).unwrap();
                    let seen = seen.map(|v| String::from_utf8(v).unwrap().parse::<i64>().unwrap());
                    if let Some(floor) = floor {
                        let g = seen.expect("a row below the checkpoint is missing");
                        assert!(
                            g >= floor,
                            "generation {g} read after checkpoint of {floor}"
                        );
                    }
                    if let Some(g) = seen {
                        let prev = last.insert((p, key), g).unwrap_or(-1);
                        assert!(g >= prev, "key {key} went back from {prev} to {g}");
                    }
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    writer.join().unwrap();
    for r in readers {
        assert!(r.join().unwrap() > 0, "a reader never ran");
    }
    for p in 0..2 {
        assert_eq!(store.checkpoint(p).unwrap(), Some(BATCHES * KEYS as i64));
        for key in 0..KEYS {
            assert_eq!(
                store.get(p, format!("12:{key}").as_bytes()).unwrap(),
                Some((BATCHES - 1).to_string().into_bytes())
            );
        }
    }
}

#[test]
fn errors_name_the_path_and_keep_their_source() {
    let dir = TempDir::new("errors");
    let store = StateStore::open(dir.path()).unwrap();
    let err = StateStore::open(dir.path()).expect_err("a directory is opened once at a time");
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&dir.path().display().to_string()),
        "{err}"
    );
    assert!(
        err.source().is_some(),
        "the fjall error is kept as the source"
    );
    drop(store);
    StateStore::open(dir.path()).expect("reopens once the first store is closed");

    let file = TempDir::new("errors-file");
    std::fs::write(file.path(), b"not a directory").unwrap();
    let err = StateStore::open(file.path()).expect_err("a file is no store directory");
    assert!(matches!(err, StoreError::CreateDir { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&file.path().display().to_string()),
        "{err}"
    );
    assert!(err.source().is_some());
}

#[test]
fn catch_up_times_are_kept_beside_checkpoints() {
    let dir = TempDir::new("caught-up");
    {
        let store = StateStore::open(dir.path()).unwrap();
        store
            .apply_table_batch(0, &[rec(0, "12:1", Some("a")), rec(1, "12:2", Some("b"))])
            .unwrap();
        let cp = store.checkpoint_with_age(0).unwrap().unwrap();
        assert_eq!(
            (cp.next_offset, cp.caught_up_ms),
            (2, None),
            "reading records is not catching up: a checkpoint alone has an unknown age"
        );
        assert_eq!(store.checkpoint_with_age(1).unwrap(), None);

        store.mark_caught_up(0, 2, 1_000).unwrap();
        assert_eq!(
            store.checkpoint_with_age(0).unwrap().unwrap().caught_up_ms,
            Some(1_000)
        );
        store.apply_table_record(0, 2, b"12:3", Some(b"c")).unwrap();
        assert_eq!(
            store.checkpoint_with_age(0).unwrap().unwrap(),
            hookline_state_store::Checkpoint {
                next_offset: 3,
                caught_up_ms: Some(1_000)
            },
            "applying a record moves the checkpoint and keeps the catch-up time"
        );
        store.mark_caught_up(0, 2, 2_000).unwrap();
        assert_eq!(
            store.checkpoint(0).unwrap(),
            Some(3),
            "a lower watermark never moves the checkpoint back"
        );
        // A partition whose records were all compacted away, or that is empty: catching up
        // moves the checkpoint to the end, so the next start does not read it again.
        store.mark_caught_up(5, 40, 3_000).unwrap();
        assert_eq!(store.checkpoint(5).unwrap(), Some(40));
        store.flush().unwrap();
    }
    let store = StateStore::open(dir.path()).unwrap();
    assert_eq!(
        store.checkpoint_with_age(0).unwrap().unwrap(),
        hookline_state_store::Checkpoint {
            next_offset: 3,
            caught_up_ms: Some(2_000)
        },
        "the catch-up time survives a reopen"
    );
    store.drop_partition(0).unwrap();
    assert_eq!(store.checkpoint_with_age(0).unwrap(), None);
    store.apply_table_record(0, 0, b"12:1", Some(b"a")).unwrap();
    assert_eq!(
        store.checkpoint_with_age(0).unwrap().unwrap().caught_up_ms,
        None,
        "a drop removes the catch-up time with the checkpoint"
    );
    assert_eq!(
        store.checkpoint_with_age(5).unwrap().unwrap().caught_up_ms,
        Some(3_000),
        "other partitions keep theirs"
    );
}
