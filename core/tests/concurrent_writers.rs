//! Engines under concurrent writers: every batch gets its own LSN and lands once.
//! (Threads live here, in an integration test: `core/src` stays free of them.)
#![cfg(not(target_arch = "wasm32"))]

use std::sync::Arc;

use ringkv_core::storage::blockstore::MemoryStore;
use ringkv_core::storage::lsm::{LsmEngine, LsmOptions};
use ringkv_core::storage::redb_engine::RedbEngine;
use ringkv_core::storage::{Engine, WriteBatch, WriteOptions};

/// Four threads write 25 batches each, every other one durable; returns all LSNs.
fn write_concurrently(engine: Arc<dyn Engine>) -> Vec<u64> {
    let handles: Vec<_> = (0u8..4)
        .map(|t| {
            let engine = engine.clone();
            std::thread::spawn(move || {
                (0u8..25)
                    .map(|i| {
                        let mut batch = WriteBatch::new();
                        batch.put(vec![t, i], b"v".to_vec());
                        let options = WriteOptions { sync: i % 2 == 0 };
                        engine.write(&batch, options).expect("write")
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut lsns: Vec<u64> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("writer thread"))
        .collect();
    lsns.sort_unstable();
    lsns
}

#[test]
fn redb_concurrent_writers_get_distinct_lsns() {
    let engine =
        Arc::new(RedbEngine::open_store(Arc::new(MemoryStore::new()), "redb.db").expect("open"));
    assert_eq!(
        write_concurrently(engine.clone()),
        (1..=100).collect::<Vec<u64>>()
    );
    assert_eq!(engine.stats().entries_approx, 100);
}

#[test]
fn lsm_concurrent_writers_get_distinct_lsns() {
    let engine = Arc::new(
        LsmEngine::open(Arc::new(MemoryStore::new()), LsmOptions::default()).expect("open"),
    );
    assert_eq!(
        write_concurrently(engine.clone()),
        (1..=100).collect::<Vec<u64>>()
    );
    assert_eq!(engine.stats().entries_approx, 100);
}
