//! Model tests: random operation sequences against both engines and a `BTreeMap`.
//!
//! proptest generates and shrinks the sequences; failures it finds are kept in
//! `core/proptest-regressions/model.txt` and replayed first on every run. The seeded
//! runs use the same generator as the wasm tests (`storage::testing::random_ops`).
#![cfg(not(target_arch = "wasm32"))]

use std::sync::Arc;

use proptest::prelude::*;
use ringkv_core::storage::blockstore::{BlockStore, FileStore, MemoryStore};
use ringkv_core::storage::lsm::{LsmEngine, LsmOptions};
use ringkv_core::storage::redb_engine::RedbEngine;
use ringkv_core::storage::testing::{model_key, random_ops, run_model, ModelOp};
use ringkv_core::storage::{Engine, Result};

fn key() -> impl Strategy<Value = Vec<u8>> {
    (0u32..48).prop_map(model_key)
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(Vec::new()),
        proptest::collection::vec(any::<u8>(), 0..64),
        // Larger than the tiny options' blocks and memtable: spans blocks, forces flushes.
        (256usize..9000).prop_map(|n| vec![0x5a; n]),
    ]
}

fn op() -> impl Strategy<Value = ModelOp> {
    prop_oneof![
        10 => (key(), value()).prop_map(|(k, v)| ModelOp::Put(k, v)),
        3 => key().prop_map(ModelOp::Delete),
        2 => proptest::collection::vec((key(), proptest::option::of(value())), 1..8)
            .prop_map(ModelOp::Batch),
        5 => key().prop_map(ModelOp::Get),
        2 => (key(), 0usize..40).prop_map(|(start, limit)| ModelOp::Scan { start, limit }),
        1 => key().prop_map(|k| ModelOp::ScanPrefix(k.into_iter().take(2).collect())),
        1 => Just(ModelOp::Flush),
        1 => Just(ModelOp::Compact),
        1 => (1u64..50_000).prop_map(ModelOp::Maintain),
        1 => Just(ModelOp::Reopen),
    ]
}

fn ops() -> impl Strategy<Value = Vec<ModelOp>> {
    proptest::collection::vec(op(), 1..250)
}

type Open<'a> = &'a mut dyn FnMut() -> Result<Box<dyn Engine>>;

fn lsm_on(store: Arc<dyn BlockStore>, background: bool) -> impl FnMut() -> Result<Box<dyn Engine>> {
    move || {
        let options = LsmOptions {
            background_maintenance: background,
            ..LsmOptions::tiny()
        };
        Ok(Box::new(LsmEngine::open(store.clone(), options)?) as Box<dyn Engine>)
    }
}

fn redb_on(store: Arc<dyn BlockStore>) -> impl FnMut() -> Result<Box<dyn Engine>> {
    move || Ok(Box::new(RedbEngine::open_store(store.clone(), "redb.db")?) as Box<dyn Engine>)
}

fn check(ops: &[ModelOp], open: Open<'_>) -> std::result::Result<(), TestCaseError> {
    run_model(ops, open).map_err(|m| TestCaseError::fail(m.to_string()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn lsm_inline_maintenance_matches_model(ops in ops()) {
        check(&ops, &mut lsm_on(Arc::new(MemoryStore::new()), false))?;
    }

    #[test]
    fn lsm_background_maintenance_matches_model(ops in ops()) {
        check(&ops, &mut lsm_on(Arc::new(MemoryStore::new()), true))?;
    }

    #[test]
    fn lsm_on_files_matches_model(ops in ops()) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(FileStore::open(dir.path()).expect("file store"));
        check(&ops, &mut lsm_on(store, false))?;
    }

    #[test]
    fn redb_on_block_store_matches_model(ops in ops()) {
        check(&ops, &mut redb_on(Arc::new(MemoryStore::new())))?;
    }

    #[test]
    fn redb_on_file_matches_model(ops in ops()) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("redb.db");
        check(&ops, &mut || Ok(Box::new(RedbEngine::open_path(&path)?) as Box<dyn Engine>))?;
    }
}

/// Longer seeded sequences, identical to the ones the wasm tests run.
#[test]
fn seeded_long_sequences_match_model() {
    for seed in 1..=24u64 {
        let ops = random_ops(seed, 1500, 64);
        for (name, open) in [
            (
                "lsm inline",
                &mut lsm_on(Arc::new(MemoryStore::new()), false) as Open<'_>,
            ),
            (
                "lsm background",
                &mut lsm_on(Arc::new(MemoryStore::new()), true),
            ),
            ("redb", &mut redb_on(Arc::new(MemoryStore::new()))),
        ] {
            if let Err(m) = run_model(&ops, open) {
                panic!("{name}, random_ops({seed}, 1500, 64): {m}");
            }
        }
    }
}
