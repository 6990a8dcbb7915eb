//! Space reclaim after mass deletes: the host only runs `maintain` the way it always
//! does (bounded steps until nothing is due), and the LSM must bring disk use back near
//! that of a store holding only what is still live. Nothing here calls `compact`.
//!
//! Without tombstone-density compaction the tombstones of a mass delete sit in upper
//! levels below their size targets, shadowing the dead values underneath forever.
#![cfg(not(target_arch = "wasm32"))]

use std::sync::Arc;

use ringkv_core::rand::SplitMix64;
use ringkv_core::storage::blockstore::{BlockStore, FaultStore};
use ringkv_core::storage::lsm::{LsmEngine, LsmOptions};
use ringkv_core::storage::{Engine, WriteBatch, WriteOptions};

const KEYS: u64 = 20_000;
const VALUE_BYTES: usize = 100;
/// A host's step, as the native maintenance thread and the wasm replica use.
const STEP_BUDGET_BYTES: u64 = 256 << 10;
/// `maintain` calls allowed to settle; reaching it means maintenance never converges.
const STEPS_MAX: usize = 100_000;
/// Keys per write batch, as a replica's group of register updates.
const BATCH_KEYS: u64 = 100;

/// Small tables and levels so 20k keys span four levels, with background maintenance so
/// only `maintain` (the host's loop) does work.
fn options() -> LsmOptions {
    LsmOptions {
        memtable_size_bytes_max: 32 << 10,
        table_size_bytes_target: 32 << 10,
        level_base_size_bytes: 64 << 10,
        level_size_multiplier: 4,
        levels_max: 5,
        background_maintenance: true,
        ..LsmOptions::tiny()
    }
}

/// Register-record keys (`d/<key>`), written in a scattered order so compactions
/// overlap instead of moving whole tables.
fn key(i: u64) -> Vec<u8> {
    format!("d/user{:08}", key_number(i)).into_bytes()
}

/// Write `i` goes to key number `key_number(i)`: a permutation of `0..KEYS`.
fn key_number(i: u64) -> u64 {
    (i * 7919) % KEYS
}

/// Incompressible, so table sizes are what the bytes are (tables are lz4-compressed).
fn value(i: u64) -> Vec<u8> {
    let mut v = vec![0u8; VALUE_BYTES];
    SplitMix64::new(i).fill(&mut v);
    v
}

/// Applies puts (`Some`) or deletes (`None`) of `keys` in batches.
fn write_all(engine: &LsmEngine, keys: impl Iterator<Item = u64>, put: bool) {
    let keys: Vec<u64> = keys.collect();
    for chunk in keys.chunks(BATCH_KEYS as usize) {
        let mut batch = WriteBatch::new();
        for &i in chunk {
            if put {
                batch.put(key(i), value(i));
            } else {
                batch.delete(key(i));
            }
        }
        engine.write(&batch, WriteOptions::BUFFERED).expect("write");
    }
}

/// Flushes, then runs `maintain` in host-sized steps until it reports nothing due.
/// Returns the number of steps.
fn settle(engine: &LsmEngine) -> usize {
    engine.flush().expect("flush");
    for step in 1..=STEPS_MAX {
        if !engine.maintain(STEP_BUDGET_BYTES).expect("maintain") {
            return step;
        }
    }
    panic!(
        "maintain still had work after {STEPS_MAX} steps: {:?}",
        engine.stats()
    );
}

/// Bytes of every file in the store (tables, logs, manifest, orphans): the disk's view.
fn store_bytes(store: &dyn BlockStore) -> u64 {
    store
        .list()
        .expect("list")
        .iter()
        .map(|name| store.open(name).and_then(|f| f.len()).expect("file length"))
        .sum()
}

struct Figures {
    space_used_bytes: u64,
    store_bytes: u64,
}

fn figures(engine: &LsmEngine, store: &dyn BlockStore) -> Figures {
    Figures {
        space_used_bytes: engine.stats().space_used_bytes,
        store_bytes: store_bytes(store),
    }
}

/// A store holding exactly the keys `live`, written once and settled: what reclaim
/// should approach.
fn reference(live: impl Iterator<Item = u64>) -> Figures {
    let store = FaultStore::new();
    let engine = LsmEngine::open(Arc::new(store.clone()), options()).expect("open");
    write_all(&engine, live, true);
    settle(&engine);
    figures(&engine, &store)
}

/// Writes every key, settles, deletes the keys `deleted` selects, settles again, and
/// checks reads before and after a crash-image reopen. Returns (full, after) figures.
fn write_delete_settle(deleted: fn(u64) -> bool) -> (Figures, Figures) {
    let store = FaultStore::new();
    let engine = LsmEngine::open(Arc::new(store.clone()), options()).expect("open");
    write_all(&engine, 0..KEYS, true);
    settle(&engine);
    let full = figures(&engine, &store);
    eprintln!("written: levels {:?}", engine.stats().levels);
    assert!(
        engine
            .stats()
            .levels
            .iter()
            .skip(1)
            .filter(|&&n| n > 0)
            .count()
            >= 2,
        "the data should span several levels: {:?}",
        engine.stats()
    );

    write_all(&engine, (0..KEYS).filter(|&i| deleted(i)), false);
    let compactions_before = engine.stats().compactions;
    let steps = settle(&engine);
    let after = figures(&engine, &store);
    eprintln!(
        "after deletes: levels {:?}, {steps} maintain steps, {} compactions",
        engine.stats().levels,
        engine.stats().compactions - compactions_before
    );
    check_contents(&engine, deleted);

    // Everything settled is durable: a power loss now recovers the same contents and
    // the same tables.
    let image = store.crash_image(0);
    drop(engine);
    let reopened = LsmEngine::open(Arc::new(image.clone()), options()).expect("reopen");
    check_contents(&reopened, deleted);
    assert!(
        !reopened.maintain(STEP_BUDGET_BYTES).expect("maintain"),
        "a settled store has nothing due after reopen: {:?}",
        reopened.stats()
    );
    let recovered = figures(&reopened, &image);
    assert!(
        recovered.space_used_bytes <= after.space_used_bytes,
        "reopen found more: {} > {}",
        recovered.space_used_bytes,
        after.space_used_bytes
    );
    (full, after)
}

fn check_contents(engine: &LsmEngine, deleted: fn(u64) -> bool) {
    for i in 0..KEYS {
        let got = engine.get(&key(i)).expect("get");
        if deleted(i) {
            assert_eq!(got, None, "deleted key {i} reads back");
        } else {
            assert_eq!(got, Some(value(i)), "live key {i}");
        }
    }
    let live = (0..KEYS).filter(|&i| !deleted(i)).count();
    let scanned = engine
        .scan(
            std::ops::Bound::Unbounded,
            std::ops::Bound::Unbounded,
            usize::MAX,
        )
        .expect("scan");
    assert_eq!(scanned.len(), live);
}

fn print(what: &str, f: &Figures) {
    eprintln!(
        "{what}: space_used {} bytes, store {} bytes",
        f.space_used_bytes, f.store_bytes
    );
}

#[test]
fn deleting_every_key_returns_space_without_an_operator() {
    let empty = reference(std::iter::empty());
    let (full, after) = write_delete_settle(|_| true);
    print("empty store", &empty);
    print("all written", &full);
    print("all deleted", &after);
    // An empty store has no tables; allow a few tables' worth of leftovers (a tail
    // of tombstones too few to be worth a compaction).
    let slack_bytes = 4 * options().table_size_bytes_target;
    assert!(
        after.space_used_bytes <= 2 * empty.space_used_bytes + slack_bytes,
        "space after deleting everything: {} bytes (was {}, empty {})",
        after.space_used_bytes,
        full.space_used_bytes,
        empty.space_used_bytes
    );
    assert!(after.store_bytes <= 2 * empty.store_bytes + slack_bytes);
}

#[test]
fn deleting_half_the_keys_returns_about_half_the_space() {
    // Every other key: tombstones and live values interleave in every table.
    let deleted = |i: u64| key_number(i).is_multiple_of(2);
    let live_only = reference((0..KEYS).filter(|&i| !deleted(i)));
    let (full, after) = write_delete_settle(deleted);
    print("live half only", &live_only);
    print("all written", &full);
    print("half deleted", &after);
    // Within 1.5× of a store that only ever held the live half.
    assert!(
        2 * after.space_used_bytes <= 3 * live_only.space_used_bytes,
        "space after deleting half: {} bytes (was {}, live half alone {})",
        after.space_used_bytes,
        full.space_used_bytes,
        live_only.space_used_bytes
    );
}
