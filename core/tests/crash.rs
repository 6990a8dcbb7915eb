//! Crash consistency of the LSM engine on the fault-injecting store.
//!
//! A seeded workload of batches, flushes and compactions runs once fault-free to count
//! the store operations it issues. Then, for every operation index, it runs again with a
//! fault planned there (a crash, EIO or ENOSPC), takes the disk image a power loss would
//! leave (unsynced bytes dropped, or a random prefix of them kept, which tears the last
//! write), reopens, and checks: the recovered state equals the state after some prefix
//! of the attempted batches, and that prefix includes every acknowledged durable batch.
#![cfg(not(target_arch = "wasm32"))]

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use ringkv_core::rand::SplitMix64;
use ringkv_core::storage::blockstore::{BlockStore, Fault, FaultStore};
use ringkv_core::storage::lsm::{LsmEngine, LsmOptions};
use ringkv_core::storage::{Engine, StorageError, WriteBatch, WriteOptions};

#[derive(Debug, Clone)]
enum Step {
    Write(WriteBatch, bool),
    Flush,
    Maintain,
}

fn workload(seed: u64, steps: usize) -> Vec<Step> {
    let mut rng = SplitMix64::new(seed);
    (0..steps)
        .map(|i| match rng.below(20) {
            0 => Step::Flush,
            1 => Step::Maintain,
            _ => {
                let mut batch = WriteBatch::new();
                for _ in 0..1 + rng.below(4) {
                    let key = format!("k{:03}", rng.below(40)).into_bytes();
                    if rng.below(5) == 0 {
                        batch.delete(key);
                    } else {
                        let len = rng.below(300) as usize;
                        batch.put(key, vec![(i % 251) as u8; len]);
                    }
                }
                Step::Write(batch, rng.below(3) != 0)
            }
        })
        .collect()
}

/// `stepped`: maintenance runs only in the host's bounded `maintain` steps.
fn options(stepped: bool) -> LsmOptions {
    LsmOptions {
        background_maintenance: stepped,
        ..LsmOptions::tiny()
    }
}

/// `states[m]` is the content after the first `m` batches.
fn model_states(steps: &[Step]) -> Vec<BTreeMap<Vec<u8>, Vec<u8>>> {
    let mut state = BTreeMap::new();
    let mut states = vec![state.clone()];
    for step in steps {
        if let Step::Write(batch, _) = step {
            for op in batch.ops() {
                match op.value() {
                    Some(v) => state.insert(op.key().to_vec(), v.to_vec()),
                    None => state.remove(op.key()),
                };
            }
            states.push(state.clone());
        }
    }
    states
}

struct Outcome {
    /// Batches whose write was started.
    attempted: usize,
    /// Batches known durable: acknowledged with sync, or followed by a successful flush.
    durable: usize,
}

fn run(store: &FaultStore, steps: &[Step], stepped: bool) -> Outcome {
    let mut outcome = Outcome {
        attempted: 0,
        durable: 0,
    };
    let engine = match LsmEngine::open(Arc::new(store.clone()), options(stepped)) {
        Ok(e) => e,
        Err(_) => return outcome,
    };
    for step in steps {
        let result = match step {
            Step::Write(batch, sync) => {
                outcome.attempted += 1;
                let r = engine.write(batch, WriteOptions { sync: *sync });
                if r.is_ok() && *sync {
                    outcome.durable = outcome.attempted;
                }
                r.map(|_| ())
            }
            Step::Flush => {
                let r = engine.flush();
                if r.is_ok() {
                    outcome.durable = outcome.attempted;
                }
                r
            }
            Step::Maintain => engine.maintain(1 << 10).map(|_| ()),
        };
        if let Err(e) = result {
            // Fail-stop: after any store error the engine refuses all further work.
            let again = engine.get(b"k000");
            assert!(
                matches!(again, Err(StorageError::Failed { .. })),
                "engine kept serving after {e}: {again:?}"
            );
            break;
        }
    }
    // A clean close may sync more, which stays within `durable..=attempted`.
    drop(engine);
    outcome
}

fn read_all(engine: &LsmEngine) -> BTreeMap<Vec<u8>, Vec<u8>> {
    engine
        .scan(Bound::Unbounded, Bound::Unbounded, usize::MAX)
        .expect("scan after recovery")
        .into_iter()
        .collect()
}

fn check(seed: u64, fault: Fault, stepped: bool) -> (u64, u64) {
    let steps = workload(seed, 80);
    let states = model_states(&steps);

    let clean = FaultStore::new();
    let full = run(&clean, &steps, stepped);
    assert_eq!(full.attempted, states.len() - 1);
    let total_ops = clean.stats().ops;

    let mut images = 0u64;
    for op_index in 0..total_ops {
        let store = FaultStore::new();
        store.plan(op_index, fault);
        let outcome = run(&store, &steps, stepped);
        for image_seed in [0u64, op_index.wrapping_mul(31) + 1] {
            let image = store.crash_image(image_seed);
            let engine =
                LsmEngine::open(Arc::new(image.clone()), options(stepped)).unwrap_or_else(|e| {
                    panic!(
                    "seed {seed} {fault:?} at op {op_index} image {image_seed}: reopen failed: {e}"
                )
                });
            let got = read_all(&engine);
            let matched = (outcome.durable..=outcome.attempted).find(|&m| states[m] == got);
            assert!(
                matched.is_some(),
                "seed {seed} {fault:?} at op {op_index} image {image_seed}: recovered state \
                 ({} keys) is not the state after any prefix of {}..={} batches",
                got.len(),
                outcome.durable,
                outcome.attempted
            );
            // The recovered engine keeps working and recovers again.
            let mut batch = WriteBatch::new();
            batch.put(b"after-crash".to_vec(), b"yes".to_vec());
            engine
                .write(&batch, WriteOptions::DURABLE)
                .expect("write after recovery");
            drop(engine);
            let again = LsmEngine::open(Arc::new(image), options(stepped)).expect("second reopen");
            assert_eq!(
                again.get(b"after-crash").expect("get"),
                Some(b"yes".to_vec())
            );
            images += 1;
        }
    }
    (total_ops, images)
}

#[test]
fn crash_at_every_store_operation() {
    for seed in 1..=3 {
        let (ops, images) = check(seed, Fault::Crash, false);
        assert!(
            ops > 100,
            "workload too small to exercise flush and compaction: {ops} ops"
        );
        assert!(images >= 2 * ops);
    }
}

#[test]
fn crash_at_every_store_operation_with_stepped_maintenance() {
    for seed in 7..=8 {
        check(seed, Fault::Crash, true);
    }
}

#[test]
fn eio_at_every_store_operation_is_fail_stop() {
    for seed in 4..=5 {
        check(seed, Fault::Eio, false);
    }
}

#[test]
fn enospc_at_every_store_operation_is_fail_stop() {
    check(6, Fault::NoSpace, false);
}

#[test]
fn workload_reaches_flush_and_compaction() {
    let store = FaultStore::new();
    let steps = workload(1, 80);
    let engine = LsmEngine::open(Arc::new(store.clone()), options(false)).expect("open");
    for step in &steps {
        match step {
            Step::Write(b, sync) => {
                engine
                    .write(b, WriteOptions { sync: *sync })
                    .expect("write");
            }
            Step::Flush => engine.flush().expect("flush"),
            Step::Maintain => {
                engine.maintain(1 << 10).expect("maintain");
            }
        }
    }
    let stats = engine.stats();
    assert!(stats.flushes >= 3, "{stats:?}");
    assert!(stats.compactions >= 1, "{stats:?}");
    let names = store.list().expect("list");
    assert!(names.iter().any(|n| n.ends_with(".sst")), "{names:?}");
}

#[test]
fn options_that_cannot_work_are_refused() {
    let store: Arc<dyn BlockStore> = Arc::new(FaultStore::new());
    let bad = [
        LsmOptions {
            immutable_memtables_max: 0,
            ..LsmOptions::tiny()
        },
        LsmOptions {
            levels_max: 1,
            ..LsmOptions::tiny()
        },
        LsmOptions {
            l0_stall_tables: 2,
            l0_compaction_trigger: 3,
            ..LsmOptions::tiny()
        },
    ];
    for options in bad {
        assert!(matches!(
            LsmEngine::open(store.clone(), options),
            Err(StorageError::InvalidOptions(_))
        ));
    }
}

#[test]
fn reopening_with_fewer_levels_than_the_data_uses_is_refused() {
    let store: Arc<dyn BlockStore> = Arc::new(FaultStore::new());
    {
        let engine = LsmEngine::open(store.clone(), options(false)).expect("open");
        for i in 0..2000u32 {
            let mut batch = WriteBatch::new();
            batch.put(format!("key{i:05}").into_bytes(), vec![i as u8; 200]);
            engine.write(&batch, WriteOptions::BUFFERED).expect("write");
        }
        engine.flush().expect("flush");
        engine.compact().expect("compact");
        let deepest = engine
            .stats()
            .levels
            .iter()
            .rposition(|&n| n > 0)
            .unwrap_or(0);
        assert!(deepest >= 2, "{:?}", engine.stats().levels);
    }
    let fewer = LsmOptions {
        levels_max: 2,
        ..options(false)
    };
    assert!(matches!(
        LsmEngine::open(store.clone(), fewer),
        Err(StorageError::InvalidOptions(_))
    ));
    LsmEngine::open(store, options(false)).expect("the original options still open it");
}

#[test]
fn a_failed_sync_stops_the_engine_and_keeps_nothing_it_covered() {
    let store = FaultStore::new();
    let engine = LsmEngine::open(Arc::new(store.clone()), options(false)).expect("open");
    let mut synced = WriteBatch::new();
    synced.put(b"synced".to_vec(), b"1".to_vec());
    engine.write(&synced, WriteOptions::DURABLE).expect("write");
    let mut buffered = WriteBatch::new();
    buffered.put(b"buffered".to_vec(), b"2".to_vec());
    engine
        .write(&buffered, WriteOptions::BUFFERED)
        .expect("buffered write");
    assert_eq!(engine.failure(), None);
    store.fail_next_sync();
    let error = engine
        .write(&WriteBatch::new(), WriteOptions::DURABLE)
        .expect_err("the sync fails");
    assert!(error.to_string().contains("injected EIO"), "{error}");
    assert!(engine.failure().is_some());
    // Sticky: later calls fail without touching the disk again (no retried fsync).
    let syncs = store.stats().syncs;
    assert!(matches!(
        engine.write(&WriteBatch::new(), WriteOptions::DURABLE),
        Err(StorageError::Failed { .. })
    ));
    assert!(matches!(
        engine.get(b"synced"),
        Err(StorageError::Failed { .. })
    ));
    assert_eq!(store.stats().syncs, syncs);
    drop(engine);
    // Power loss keeps what was synced; the batch the failed sync covered is gone.
    let image = store.crash_image(0);
    let engine = LsmEngine::open(Arc::new(image), options(false)).expect("reopen");
    assert_eq!(engine.get(b"synced").expect("get"), Some(b"1".to_vec()));
    assert_eq!(engine.get(b"buffered").expect("get"), None);
}
