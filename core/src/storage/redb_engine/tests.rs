#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use super::store_backend::SnapshotPolicy;
use super::RedbEngine;
use crate::storage::blockstore::{Fault, FaultStore, MemoryStore};
use crate::storage::{BlockStore, Engine, StorageError, WriteBatch, WriteOptions};

const NAME: &str = "redb";

fn mem_engine(store: &MemoryStore) -> RedbEngine {
    RedbEngine::open_store(Arc::new(store.clone()), NAME).unwrap()
}

fn put(engine: &RedbEngine, key: &[u8], value: &[u8], sync: bool) -> u64 {
    let mut batch = WriteBatch::new();
    batch.put(key, value);
    engine.write(&batch, WriteOptions { sync }).unwrap()
}

fn all(engine: &RedbEngine) -> Vec<(Vec<u8>, Vec<u8>)> {
    engine
        .scan(Bound::Unbounded, Bound::Unbounded, usize::MAX)
        .unwrap()
}

fn check_basics(engine: &RedbEngine) {
    assert_eq!(engine.get(b"a").unwrap(), None);
    let l1 = put(engine, b"a", b"1", true);
    let l2 = put(engine, b"c", b"3", false);
    assert!(l2 > l1);
    let mut batch = WriteBatch::new();
    batch.put(b"b".to_vec(), b"2".to_vec());
    batch.put(b"d".to_vec(), b"4".to_vec());
    batch.delete(b"c".to_vec());
    batch.put(b"e".to_vec(), b"x".to_vec());
    batch.put(b"e".to_vec(), b"5".to_vec()); // later op on the same key wins
    let l3 = engine.write(&batch, WriteOptions::DURABLE).unwrap();
    assert_eq!(l3, l2 + 1);
    assert_eq!(engine.get(b"a").unwrap(), Some(b"1".to_vec()));
    assert_eq!(engine.get(b"c").unwrap(), None);
    assert_eq!(engine.get(b"e").unwrap(), Some(b"5".to_vec()));

    let keys = |v: Vec<(Vec<u8>, Vec<u8>)>| v.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
    assert_eq!(
        keys(all(engine)),
        vec![b"a".to_vec(), b"b".to_vec(), b"d".to_vec(), b"e".to_vec()]
    );
    let bounded = engine
        .scan(Bound::Excluded(b"a"), Bound::Included(b"d"), 10)
        .unwrap();
    assert_eq!(keys(bounded), vec![b"b".to_vec(), b"d".to_vec()]);
    let limited = engine
        .scan(Bound::Included(b"b"), Bound::Unbounded, 2)
        .unwrap();
    assert_eq!(keys(limited), vec![b"b".to_vec(), b"d".to_vec()]);
    // Inverted and empty ranges are empty, not a panic.
    assert!(engine
        .scan(Bound::Included(b"d"), Bound::Included(b"a"), 10)
        .unwrap()
        .is_empty());
    assert!(engine
        .scan(Bound::Included(b"b"), Bound::Excluded(b"b"), 10)
        .unwrap()
        .is_empty());
    assert!(engine.scan_prefix(b"z", 10).unwrap().is_empty());
    assert_eq!(engine.scan_prefix(b"d", 10).unwrap().len(), 1);

    let stats = engine.stats();
    assert_eq!(stats.entries_approx, 4);
    assert!(stats.user_bytes_written > 0);
    assert!(stats.store_bytes_written > 0);
    assert!(stats.space_used_bytes > 0);
    engine.flush().unwrap();
    engine.compact().unwrap();
    assert!(!engine.maintain(1 << 20).unwrap());
    assert_eq!(engine.last_lsn().unwrap(), l3);

    let big = vec![7u8; crate::storage::KEY_SIZE_BYTES_MAX + 1];
    let mut batch = WriteBatch::new();
    batch.put(big, b"v".to_vec());
    assert!(matches!(
        engine.write(&batch, WriteOptions::DURABLE),
        Err(StorageError::TooLarge { .. })
    ));
}

#[test]
fn basics_on_memory_store() {
    check_basics(&mem_engine(&MemoryStore::new()));
}

#[test]
fn basics_on_path() {
    let dir = tempfile::tempdir().unwrap();
    check_basics(&RedbEngine::open_path(&dir.path().join("db.redb")).unwrap());
}

#[test]
fn reopen_memory_store_keeps_data_and_lsn() {
    let store = MemoryStore::new();
    let lsn = {
        let engine = mem_engine(&store);
        put(&engine, b"durable", b"1", true);
        // A clean close makes non-durable commits durable too.
        put(&engine, b"buffered", b"2", false)
    };
    let engine = mem_engine(&store);
    assert_eq!(engine.get(b"durable").unwrap(), Some(b"1".to_vec()));
    assert_eq!(engine.get(b"buffered").unwrap(), Some(b"2".to_vec()));
    assert_eq!(engine.last_lsn().unwrap(), lsn);
    assert_eq!(put(&engine, b"next", b"3", true), lsn + 1);
    assert!(store.list().unwrap().iter().all(|n| !n.ends_with(".tmp")));
}

#[test]
fn reopen_path_keeps_data_and_lsn() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.redb");
    let lsn = {
        let engine = RedbEngine::open_path(&path).unwrap();
        put(&engine, b"k", b"v", true);
        put(&engine, b"k2", b"v2", false)
    };
    let engine = RedbEngine::open_path(&path).unwrap();
    assert_eq!(engine.get(b"k").unwrap(), Some(b"v".to_vec()));
    assert_eq!(engine.get(b"k2").unwrap(), Some(b"v2".to_vec()));
    assert_eq!(engine.last_lsn().unwrap(), lsn);
}

#[test]
fn path_rejects_a_file_that_is_not_redb() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk");
    std::fs::write(&path, vec![0xAB; 8192]).unwrap();
    let err = RedbEngine::open_path(&path).unwrap_err();
    assert!(err.is_corruption(), "{err}");
}

#[test]
fn snapshots_and_deltas_replay_to_the_same_state() {
    // A tiny snapshot threshold makes the log alternate between deltas and rewrites.
    let policy = SnapshotPolicy {
        min_bytes: 64 << 10,
        image_multiple: 0,
    };
    let store = MemoryStore::new();
    let mut model = BTreeMap::new();
    {
        let engine = RedbEngine::open_store_with(Arc::new(store.clone()), NAME, policy).unwrap();
        for i in 0u32..300 {
            let key = format!("key{:04}", i % 97).into_bytes();
            let value = vec![(i % 251) as u8; 50 + (i as usize * 37) % 2000];
            put(&engine, &key, &value, i % 3 == 0);
            model.insert(key, value);
        }
        assert!(engine.stats().compactions > 1);
        engine.flush().unwrap();
    }
    let engine = RedbEngine::open_store_with(Arc::new(store.clone()), NAME, policy).unwrap();
    assert_eq!(all(&engine), model.into_iter().collect::<Vec<_>>());
}

#[test]
fn flush_makes_buffered_writes_survive_a_crash() {
    let store = FaultStore::new();
    {
        let engine = RedbEngine::open_store(Arc::new(store.clone()), NAME).unwrap();
        put(&engine, b"a", b"1", false);
        put(&engine, b"b", b"2", false);
        engine.flush().unwrap();
        put(&engine, b"c", b"3", false);
        // Simulate power loss while the engine is still open.
        let engine = RedbEngine::open_store(Arc::new(store.crash_image(0)), NAME).unwrap();
        assert_eq!(engine.get(b"a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(engine.get(b"b").unwrap(), Some(b"2".to_vec()));
        assert_eq!(engine.get(b"c").unwrap(), None);
        // The stored LSN is the flushed batch's: the lost one's LSN is issued again.
        assert_eq!(engine.last_lsn().unwrap(), 2);
        assert_eq!(put(&engine, b"d", b"4", true), 3);
    }
}

#[test]
fn durable_write_persists_earlier_buffered_writes_and_their_lsns() {
    let store = FaultStore::new();
    let engine = RedbEngine::open_store(Arc::new(store.clone()), NAME).unwrap();
    for i in 0u8..10 {
        put(&engine, &[i], b"buffered", false);
    }
    assert_eq!(put(&engine, b"z", b"durable", true), 11);
    for i in 10u8..15 {
        put(&engine, &[i], b"lost", false);
    }
    let recovered = RedbEngine::open_store(Arc::new(store.crash_image(1)), NAME).unwrap();
    assert_eq!(recovered.last_lsn().unwrap(), 11);
    assert_eq!(all(&recovered).len(), 11);
    assert_eq!(recovered.get(&[10]).unwrap(), None);
}

#[test]
fn damaged_log_is_corruption_not_a_panic() {
    let store = MemoryStore::new();
    {
        let engine = mem_engine(&store);
        for i in 0u8..20 {
            put(&engine, &[i], &[i; 100], true);
        }
    }
    let file = store.open(NAME).unwrap();
    let mut bytes = file.read_all().unwrap();
    // Flip a byte inside the first record (the snapshot), which later records follow.
    bytes[100] ^= 0xFF;
    let damaged = MemoryStore::new();
    damaged.create(NAME).unwrap().append(&bytes).unwrap();
    let err = RedbEngine::open_store(Arc::new(damaged), NAME).unwrap_err();
    assert!(err.is_corruption(), "{err}");
}

/// The i-th issued batch of the crash workload: overwrites, deletes and values large
/// enough to make redb allocate new pages.
fn crash_batch(i: u64) -> WriteBatch {
    let mut batch = WriteBatch::new();
    batch.put(
        format!("k{:03}", i % 13).into_bytes(),
        vec![i as u8; 20 + (i as usize * 211) % 1500],
    );
    if i % 4 == 3 {
        batch.delete(format!("k{:03}", (i * 7) % 13).into_bytes());
    }
    batch
}

/// State after the first `n` batches.
fn model_after(n: u64) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut model = BTreeMap::new();
    for i in 0..n {
        for op in crash_batch(i).ops() {
            match op.value() {
                Some(v) => model.insert(op.key().to_vec(), v.to_vec()),
                None => model.remove(op.key()),
            };
        }
    }
    model.into_iter().collect()
}

/// Opens, writes `writes` batches (every third one buffered, the rest durable) and
/// closes, on `store`; returns the LSN of the last acknowledged durable batch and how
/// many batches were attempted.
fn crash_workload(store: &FaultStore, policy: SnapshotPolicy, writes: u64) -> (u64, u64) {
    let Ok(engine) = RedbEngine::open_store_with(Arc::new(store.clone()), NAME, policy) else {
        return (0, 0);
    };
    let mut acked = 0;
    let mut issued = 0;
    for i in 0..writes {
        issued += 1;
        let sync = i % 3 != 1;
        match engine.write(&crash_batch(i), WriteOptions { sync }) {
            Ok(lsn) => {
                assert_eq!(lsn, i + 1);
                if sync {
                    acked = lsn;
                }
            }
            Err(_) => break,
        }
    }
    // Drop makes the buffered tail durable too (if the store still works).
    drop(engine);
    (acked, issued)
}

fn crash_at_every_op(policy: SnapshotPolicy) {
    const WRITES: u64 = 30;
    let clean = FaultStore::new();
    assert_eq!(crash_workload(&clean, policy, WRITES), (WRITES, WRITES));
    let reopened = RedbEngine::open_store_with(Arc::new(clean.crash_image(0)), NAME, policy);
    assert_eq!(reopened.unwrap().last_lsn().unwrap(), WRITES);
    let total_ops = clean.stats().ops;
    let mut corrupt = 0;
    for crash_at in 0..=total_ops {
        let store = FaultStore::new();
        store.plan(crash_at, Fault::Crash);
        let (acked, issued) = crash_workload(&store, policy, WRITES);
        for seed in [0, 1, 2, 3] {
            let image = store.crash_image(seed);
            match RedbEngine::open_store_with(Arc::new(image), NAME, policy) {
                Ok(engine) => {
                    let recovered = engine.last_lsn().unwrap();
                    assert!(
                        recovered >= acked && recovered <= issued,
                        "crash at op {crash_at} seed {seed}: recovered lsn {recovered}, \
                         acked {acked}, issued {issued}"
                    );
                    assert_eq!(
                        all(&engine),
                        model_after(recovered),
                        "crash at op {crash_at} seed {seed}"
                    );
                    // The recovered engine keeps working.
                    assert_eq!(
                        engine
                            .write(&crash_batch(recovered), WriteOptions::DURABLE)
                            .unwrap(),
                        recovered + 1
                    );
                }
                Err(e) if e.is_corruption() => corrupt += 1,
                Err(e) => panic!("crash at op {crash_at} seed {seed}: {e}"),
            }
        }
    }
    // Every image is a state redb itself synced, so none should be damaged.
    assert_eq!(corrupt, 0, "{corrupt} crash images reported corruption");
}

#[test]
fn crash_at_every_store_op_keeps_acked_writes() {
    crash_at_every_op(super::SNAPSHOT_POLICY);
}

#[test]
fn crash_at_every_store_op_with_frequent_snapshots() {
    crash_at_every_op(SnapshotPolicy {
        min_bytes: 32 << 10,
        image_multiple: 0,
    });
}
