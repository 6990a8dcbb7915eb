use std::ops::Bound;
use std::sync::Arc;

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;

use super::*;
use crate::storage::blockstore::{Fault, FaultStore};
use crate::storage::error::StorageError;
use crate::storage::lsm::sstable::TableIter;

/// Keys under long shared prefixes exercise prefix compression and restart seeks.
fn key() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..10),
        (0..3usize, vec(0..4u8, 0..6)).prop_map(|(depth, suffix)| {
            let mut key = vec![b'p'; 40 * (depth + 1)];
            key.extend(suffix);
            key
        }),
    ]
}

fn value() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        6 => vec(any::<u8>(), 0..40).prop_map(Some),
        2 => Just(None),
        1 => Just(Some(Vec::new())),
        1 => vec(any::<u8>(), 600..1500).prop_map(Some),
        1 => (2000..9000usize, any::<u8>()).prop_map(|(n, b)| Some(vec![b; n])),
    ]
}

fn options() -> impl Strategy<Value = TableOptions> {
    (
        prop_oneof![Just(64usize), Just(256), Just(4096)],
        any::<bool>(),
        prop_oneof![Just(0u32), Just(10)],
    )
        .prop_map(
            |(block_size_bytes, compress, bloom_bits_per_key)| TableOptions {
                block_size_bytes,
                bloom_bits_per_key,
                compress,
            },
        )
}

fn collect(iter: TableIter) -> Entries {
    iter.map(|item| item.expect("iterate")).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn round_trip(entries in btree_map(key(), value(), 0..250), probes in vec(key(), 20), options in options()) {
        let (file, meta) = write_table(&entries, &options);
        prop_assert_eq!(meta.entry_count, entries.len() as u64);
        prop_assert_eq!(meta.tombstone_count, entries.values().filter(|v| v.is_none()).count() as u64);
        prop_assert_eq!(meta.size_bytes, file.len().expect("len"));
        let table = open(file).expect("open");
        for (key, value) in &entries {
            prop_assert!(table.may_contain(key));
            prop_assert_eq!(table.get(key).expect("get"), expected_lookup(value));
        }
        for probe in &probes {
            if !entries.contains_key(probe) {
                prop_assert_eq!(table.get(probe).expect("get"), Lookup::Absent);
            }
        }
        prop_assert_eq!(&collect(table.iter(Bound::Unbounded)), &entries);
        for probe in probes.iter().chain(entries.keys().take(5)) {
            for start in [Bound::Included(probe.clone()), Bound::Excluded(probe.clone())] {
                let expected: Entries = entries
                    .range::<Vec<u8>, _>((start.as_ref(), Bound::Unbounded))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                prop_assert_eq!(collect(table.iter(start)), expected);
            }
        }
    }
}

#[test]
fn meta_describes_the_table() {
    let entries: Entries = [
        (b"a".to_vec(), Some(b"1".to_vec())),
        (b"m".to_vec(), None),
        (b"z".to_vec(), Some(Vec::new())),
    ]
    .into();
    let (file, meta) = write_table(&entries, &TableOptions::default());
    assert_eq!(
        meta,
        TableMeta {
            table_id: TABLE_ID,
            level: 0,
            size_bytes: file.len().expect("len"),
            entry_count: 3,
            tombstone_count: 1,
            smallest_key: b"a".to_vec(),
            largest_key: b"z".to_vec(),
        }
    );
}

#[test]
fn empty_writer_makes_a_valid_empty_table() {
    let (file, meta) = write_table(&Entries::new(), &TableOptions::default());
    assert_eq!(
        (
            meta.entry_count,
            meta.smallest_key.len(),
            meta.largest_key.len()
        ),
        (0, 0, 0)
    );
    let table = open(file).expect("open");
    assert_eq!(table.get(b"").expect("get"), Lookup::Absent);
    assert_eq!(table.iter(Bound::Unbounded).count(), 0);
    assert_eq!(table.iter(Bound::Included(Vec::new())).count(), 0);
}

#[test]
fn values_at_the_size_limit_round_trip() {
    use crate::storage::{KEY_SIZE_BYTES_MAX, VALUE_SIZE_BYTES_MAX};
    let incompressible: Vec<u8> = (0..VALUE_SIZE_BYTES_MAX as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let entries: Entries = [
        (
            vec![b'a'; KEY_SIZE_BYTES_MAX],
            Some(vec![0u8; VALUE_SIZE_BYTES_MAX]),
        ),
        (b"b".to_vec(), Some(incompressible)),
        (b"c".to_vec(), Some(b"small".to_vec())),
    ]
    .into();
    for compress in [true, false] {
        let (file, _) = write_table(
            &entries,
            &TableOptions {
                compress,
                ..TableOptions::default()
            },
        );
        let table = open(file).expect("open");
        for (key, value) in &entries {
            assert_eq!(table.get(key).expect("get"), expected_lookup(value));
        }
        assert_eq!(collect(table.iter(Bound::Unbounded)), entries);
    }
}

#[test]
fn add_rejects_disorder_and_oversize_but_stays_usable() {
    let file = MemoryStore::new().create("t.sst").expect("create");
    let mut writer = TableWriter::new(Arc::clone(&file), TABLE_ID, &TableOptions::default());
    writer.add(b"b", Some(b"1")).expect("add");
    for key in [&b"a"[..], b"b"] {
        let err = writer.add(key, None).expect_err("out of order");
        assert!(
            matches!(&err, StorageError::Io { source, .. } if source.kind() == std::io::ErrorKind::InvalidInput),
            "{err}"
        );
    }
    let huge_key = vec![0u8; crate::storage::KEY_SIZE_BYTES_MAX + 1];
    assert!(matches!(
        writer.add(&huge_key, None),
        Err(StorageError::TooLarge { what: "key", .. })
    ));
    let before = writer.size_estimate_bytes();
    writer.add(b"c", Some(&[7u8; 5000])).expect("add");
    assert!(writer.size_estimate_bytes() > before);
    assert_eq!(writer.entry_count(), 2);
    let meta = writer.finish().expect("finish");
    assert_eq!(meta.entry_count, 2);
    assert_eq!(
        open(file).expect("open").get(b"c").expect("get"),
        Lookup::Value(vec![7u8; 5000])
    );
}

#[test]
fn writer_refuses_work_after_a_failed_append() {
    let store = FaultStore::new();
    let file = store.create("t.sst").expect("create");
    store.plan(store.stats().ops, Fault::Eio);
    let mut writer = TableWriter::new(
        file,
        TABLE_ID,
        &TableOptions {
            block_size_bytes: 64,
            ..TableOptions::default()
        },
    );
    let err = writer
        .add(b"a", Some(&[1u8; 100]))
        .expect_err("append fails");
    assert!(matches!(err, StorageError::Io { .. }), "{err}");
    assert!(matches!(
        writer.add(b"b", None),
        Err(StorageError::Failed { .. })
    ));
    assert!(matches!(writer.finish(), Err(StorageError::Failed { .. })));
}

#[test]
fn opening_under_another_id_is_corruption() {
    let (file, _) = write_table(&[(b"k".to_vec(), None)].into(), &TableOptions::default());
    let err =
        TableReader::open(file, TABLE_ID + 1, Arc::new(BlockCache::new(0))).expect_err("wrong id");
    assert!(err.is_corruption(), "{err}");
}

#[test]
fn reads_go_through_the_cache() {
    let entries: Entries = (0..1000u32)
        .map(|i| (format!("{i:06}").into_bytes(), Some(vec![1u8; 50])))
        .collect();
    let (file, _) = write_table(&entries, &TableOptions::default());
    let cache = Arc::new(BlockCache::new(1 << 20));
    let table =
        Arc::new(TableReader::open(Arc::clone(&file), TABLE_ID, Arc::clone(&cache)).expect("open"));
    table.get(b"000500").expect("get");
    let misses = cache.misses();
    table.get(b"000500").expect("get");
    assert_eq!((cache.hits(), cache.misses()), (1, misses));
    assert!(cache.size_bytes() > 0);
    cache.evict_table(TABLE_ID);
    assert_eq!(cache.size_bytes(), 0);
    // With no cache at all, reads still work.
    let table = TableReader::open(file, TABLE_ID, Arc::new(BlockCache::new(0))).expect("open");
    assert_eq!(
        table.get(b"000999").expect("get"),
        Lookup::Value(vec![1u8; 50])
    );
}

#[test]
fn readers_and_iterators_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<TableReader>();
    send::<TableIter>();
    send::<TableWriter>();
}
