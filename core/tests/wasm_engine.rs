//! Model tests of both engines compiled to wasm32 and run in Node (wasm-bindgen-test):
//! the same seeded op lists as the native tests, over an in-memory block store.
//!
//! Run: `cargo test -p ringkv-core --target wasm32-unknown-unknown --test wasm_engine`
//! (`scripts/test` does; `.cargo/config.toml` sets the runner).
#![cfg(target_arch = "wasm32")]

use std::sync::Arc;

use ringkv_core::storage::blockstore::MemoryStore;
use ringkv_core::storage::lsm::{LsmEngine, LsmOptions};
use ringkv_core::storage::redb_engine::RedbEngine;
use ringkv_core::storage::testing::{random_ops, run_model};
use ringkv_core::storage::{BlockStore, Engine};
use wasm_bindgen_test::wasm_bindgen_test;

/// Seeds to run; a failing seed reproduces natively with the same `random_ops` call.
const SEEDS: [u64; 4] = [1, 2, 3, 0x5EED_CAFE];
const OPS_PER_SEED: usize = 400;
const KEY_SPACE: u32 = 64;

fn check(
    engine_name: &str,
    open: &mut dyn FnMut(Arc<dyn BlockStore>) -> ringkv_core::storage::Result<Box<dyn Engine>>,
) {
    for seed in SEEDS {
        let store: Arc<dyn BlockStore> = Arc::new(MemoryStore::new());
        let ops = random_ops(seed, OPS_PER_SEED, KEY_SPACE);
        let result = run_model(&ops, &mut || open(store.clone()));
        if let Err(mismatch) = result {
            panic!("{engine_name}, random_ops({seed}, {OPS_PER_SEED}, {KEY_SPACE}): {mismatch}");
        }
    }
}

#[wasm_bindgen_test]
fn lsm_engine_matches_model_on_memory_store() {
    check("LsmEngine", &mut |store| {
        Ok(Box::new(LsmEngine::open(store, LsmOptions::tiny())?) as Box<dyn Engine>)
    });
}

#[wasm_bindgen_test]
fn redb_engine_matches_model_on_memory_store() {
    check("RedbEngine", &mut |store| {
        Ok(Box::new(RedbEngine::open_store(store, "redb.db")?) as Box<dyn Engine>)
    });
}
