//! Model tests: random operation sequences against both engines and a `BTreeMap`.
//!
//! proptest generates and shrinks the sequences; failures it finds are kept in
//! `core/proptest-regressions/model.txt` and replayed first on every run. The seeded
//! runs use the same generator as the wasm tests (`storage::testing::random_ops`).
#![cfg(not(target_arch = "wasm32"))]

use std::sync::Arc;

use proptest::prelude::*;
use ringkv_core::rand::SplitMix64;
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
    lsm_with(
        store,
        LsmOptions {
            background_maintenance: background,
            ..LsmOptions::tiny()
        },
    )
}

fn lsm_with(
    store: Arc<dyn BlockStore>,
    options: LsmOptions,
) -> impl FnMut() -> Result<Box<dyn Engine>> {
    move || Ok(Box::new(LsmEngine::open(store.clone(), options.clone())?) as Box<dyn Engine>)
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

/// Fill, then delete keys in waves (all of them, then refill half and delete most
/// again) with stepped maintenance, reads and reopens in between: tables dense with
/// tombstones are compacted by density (merged down, moved down, rewritten in place at
/// the bottom) while the model checks every read.
fn delete_heavy_ops(seed: u64) -> Vec<ModelOp> {
    const KEYS: u32 = 400;
    let mut rng = SplitMix64::new(seed);
    // Incompressible, so the data spans several levels of tiny tables.
    let value = |k: u32, wave: u32| {
        let mut v = vec![0u8; 1 + (k as usize * 37) % 600];
        SplitMix64::new(u64::from(k) << 8 | u64::from(wave)).fill(&mut v);
        v
    };
    let mut ops: Vec<ModelOp> = (0..KEYS)
        .map(|k| ModelOp::Put(model_key(k), value(k, 0)))
        .collect();
    ops.push(ModelOp::Compact);
    for wave in 0..4u32 {
        for k in 0..KEYS {
            // Wave 0 deletes everything; later waves refill a few keys and delete most.
            if wave == 0 || rng.chance(70) {
                ops.push(ModelOp::Delete(model_key(k)));
            } else if rng.chance(30) {
                ops.push(ModelOp::Put(model_key(k), value(k, wave)));
            }
            match rng.below(40) {
                0 => ops.push(ModelOp::Maintain(4 << 10)),
                1 => ops.push(ModelOp::Get(model_key(rng.below(u64::from(KEYS)) as u32))),
                2 => ops.push(ModelOp::Scan {
                    start: model_key(k),
                    limit: 20,
                }),
                _ => {}
            }
        }
        ops.push(ModelOp::Flush);
        ops.extend((0..50).map(|_| ModelOp::Maintain(16 << 10)));
        ops.push(if wave == 1 {
            ModelOp::Reopen
        } else {
            ModelOp::Flush
        });
        if wave == 0 {
            ops.extend(
                (0..KEYS)
                    .step_by(2)
                    .map(|k| ModelOp::Put(model_key(k), value(k, 9))),
            );
            ops.push(ModelOp::Compact);
        }
    }
    ops
}

/// Few levels and a low tombstone minimum, so the model's small tables become due by
/// density at every level, not only in L0.
fn dense_options(background: bool) -> LsmOptions {
    LsmOptions {
        levels_max: 4,
        tombstone_compaction_tombstones_min: 4,
        background_maintenance: background,
        ..LsmOptions::tiny()
    }
}

#[test]
fn delete_heavy_sequences_match_model() {
    for seed in 1..=4u64 {
        let ops = delete_heavy_ops(seed);
        let dir = tempfile::tempdir().expect("tempdir");
        let files = Arc::new(FileStore::open(dir.path()).expect("file store"));
        for (name, open) in [
            (
                "lsm inline",
                &mut lsm_with(Arc::new(MemoryStore::new()), dense_options(false)) as Open<'_>,
            ),
            (
                "lsm background",
                &mut lsm_with(Arc::new(MemoryStore::new()), dense_options(true)),
            ),
            ("lsm on files", &mut lsm_with(files, dense_options(true))),
            (
                "lsm default minimum",
                &mut lsm_on(Arc::new(MemoryStore::new()), true),
            ),
        ] {
            if let Err(m) = run_model(&ops, open) {
                panic!("{name}, delete_heavy_ops({seed}): {m}");
            }
        }
    }
}
