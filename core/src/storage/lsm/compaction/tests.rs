//! Choosing compactions by tombstone density: the plan for each position of a dense
//! table (L0, above overlapping data, above empty ground, the last level), and that
//! maintenance after delete-heavy workloads stops with no dense table left.
use std::collections::HashMap;
use std::sync::Arc;

use super::tombstones::is_dense;
use super::{pick, Plan};
use crate::rand::SplitMix64;
use crate::storage::blockstore::{BlockStore, MemoryStore};
use crate::storage::lsm::cache::BlockCache;
use crate::storage::lsm::sstable::{TableOptions, TableReader, TableWriter};
use crate::storage::lsm::version::{TableHandle, Version};
use crate::storage::lsm::{LsmEngine, LsmOptions};
use crate::storage::{Engine, WriteBatch, WriteOptions};

const LEVELS: u32 = 4;

fn options() -> LsmOptions {
    LsmOptions {
        levels_max: LEVELS,
        ..LsmOptions::tiny()
    }
}

fn key(i: u32) -> Vec<u8> {
    format!("k{i:05}").into_bytes()
}

/// A table at `level` holding keys `from..to`: tombstones for every key when
/// `deleted`, else values.
fn table(id: u64, level: u32, from: u32, to: u32, deleted: bool) -> Arc<TableHandle> {
    let store = MemoryStore::new();
    let file = store.create("t.sst").expect("create");
    let mut writer = TableWriter::new(file.clone(), id, &TableOptions::default());
    for i in from..to {
        let value = (!deleted).then(|| vec![7u8; 20]);
        writer.add(&key(i), value.as_deref()).expect("add");
    }
    let mut meta = writer.finish().expect("finish");
    meta.level = level;
    let cache = Arc::new(BlockCache::new(1 << 20));
    let reader = TableReader::open(file, id, cache).expect("open");
    Arc::new(TableHandle {
        meta,
        reader: Arc::new(reader),
    })
}

fn plan_for(tables: Vec<Arc<TableHandle>>) -> Option<Plan> {
    let version = Version::new(LEVELS, tables);
    pick(&version, &options(), &mut vec![Vec::new(); LEVELS as usize])
}

fn ids(tables: &[Arc<TableHandle>]) -> Vec<u64> {
    tables.iter().map(|t| t.meta.table_id).collect()
}

#[test]
fn a_dense_table_at_the_last_level_is_rewritten_in_place() {
    let plan = plan_for(vec![table(1, LEVELS - 1, 0, 100, true)]).expect("due");
    assert_eq!((plan.input_level, plan.output_level), (3, 3));
    assert!(plan.drop_tombstones && plan.lower.is_empty());
    assert!(
        !plan.is_trivial_move(),
        "a move would keep the tombstones: a loop"
    );
}

#[test]
fn a_dense_table_above_empty_ground_is_rewritten_in_place() {
    // Deeper data elsewhere in the key space does not matter.
    let plan = plan_for(vec![
        table(1, 1, 0, 100, true),
        table(2, 3, 500, 600, false),
    ])
    .expect("due");
    assert_eq!((plan.input_level, plan.output_level), (1, 1));
    assert!(plan.drop_tombstones);
}

#[test]
fn a_dense_table_over_deeper_data_moves_down() {
    // Nothing in L2: a trivial move to L2, tombstones kept (L3 holds the values).
    let plan = plan_for(vec![table(1, 1, 0, 100, true), table(2, 3, 50, 150, false)]).expect("due");
    assert_eq!((plan.input_level, plan.output_level), (1, 2));
    assert!(plan.is_trivial_move() && !plan.drop_tombstones);

    // Overlap in L2 and nothing deeper: merged into L2, dropping the tombstones.
    let plan = plan_for(vec![
        table(1, 1, 0, 100, true),
        table(2, 2, 50, 150, false),
        table(3, 3, 400, 500, false),
    ])
    .expect("due");
    assert_eq!((plan.input_level, plan.output_level), (1, 2));
    assert_eq!(ids(&plan.lower), vec![2]);
    assert!(plan.drop_tombstones);
}

#[test]
fn a_dense_l0_table_takes_all_of_l0_down() {
    let plan = plan_for(vec![
        table(1, 0, 0, 100, false),
        table(2, 0, 0, 100, true),
        table(3, 1, 0, 50, false),
    ])
    .expect("due");
    assert_eq!((plan.input_level, plan.output_level), (0, 1));
    assert_eq!(ids(&plan.upper), vec![2, 1], "newest first");
    assert_eq!(ids(&plan.lower), vec![3]);
}

#[test]
fn sparse_or_few_tombstones_are_not_due() {
    let few = options().tombstone_compaction_tombstones_min as u32 - 1;
    assert!(plan_for(vec![table(1, 1, 0, few, true)]).is_none());
    // Values only, however many.
    assert!(plan_for(vec![table(1, 3, 0, 1000, false)]).is_none());
    // Under the ratio: 40 tombstones among 100 entries.
    let version = Version::new(LEVELS, vec![table(1, 1, 0, 40, true)]);
    let mut meta = version.levels[1][0].meta.clone();
    meta.entry_count = 100;
    assert!(!is_dense(&meta, &options()));
}

/// Writes, deletes most keys in bursts with stepped maintenance in between, then lets
/// maintenance run dry. It must stop within a bound and leave no dense table behind.
#[test]
fn maintenance_after_mass_deletes_stops_with_no_dense_table() {
    const KEYS: u32 = 1500;
    const STEPS_MAX: usize = 50_000;
    for seed in 1..=6u64 {
        let mut rng = SplitMix64::new(seed);
        let options = LsmOptions {
            background_maintenance: true,
            ..options()
        };
        let engine = LsmEngine::open(Arc::new(MemoryStore::new()), options.clone()).expect("open");
        let mut model: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
        for round in 0..4u32 {
            for _ in 0..KEYS {
                let i = rng.below(u64::from(KEYS)) as u32;
                let mut batch = WriteBatch::new();
                // Round 0 fills; later rounds are 80% deletes.
                if round == 0 || rng.chance(20) {
                    let value = vec![(i % 251) as u8; rng.range(1, 200) as usize];
                    batch.put(key(i), value.clone());
                    model.insert(key(i), value);
                } else {
                    batch.delete(key(i));
                    model.remove(&key(i));
                }
                engine.write(&batch, WriteOptions::BUFFERED).expect("write");
                if rng.chance(2) {
                    engine.maintain(rng.range(1, 64 << 10)).expect("maintain");
                }
            }
        }
        engine.flush().expect("flush");
        let steps = (1..=STEPS_MAX)
            .find(|_| !engine.maintain(4 << 10).expect("maintain"))
            .unwrap_or_else(|| panic!("seed {seed}: maintenance never settled"));
        let version = engine.read_state().version.clone();
        for t in version.all() {
            assert!(
                !is_dense(&t.meta, &options),
                "seed {seed}: dense table left after {steps} steps: {:?}",
                t.meta
            );
        }
        for i in 0..KEYS {
            assert_eq!(
                engine.get(&key(i)).expect("get"),
                model.get(&key(i)).cloned()
            );
        }
    }
}
