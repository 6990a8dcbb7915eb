//! Manifest tests: round trips, crash safety of `write_manifest`, damaged input.

use proptest::prelude::*;

use super::*;
use crate::storage::blockstore::{Fault, FaultStore, MemoryStore};

fn table(table_id: u64, level: u32, smallest: &[u8], largest: &[u8]) -> TableMeta {
    TableMeta {
        table_id,
        level,
        size_bytes: 4096 * table_id,
        entry_count: 100 + table_id,
        tombstone_count: table_id % 3,
        smallest_key: smallest.to_vec(),
        largest_key: largest.to_vec(),
    }
}

fn sample(generation: u64) -> Manifest {
    Manifest {
        format_version: MANIFEST_FORMAT_VERSION,
        next_file_id: 20 + generation,
        log_number: 10 + generation,
        last_flushed_lsn: 1000 * generation,
        tables: vec![
            table(3, 0, b"m", b"z"),
            table(2, 0, b"a", b"q"),
            table(5 + generation, 1, b"", b"\xff\xff"),
            table(4, 2, b"same", b"same"),
        ],
    }
}

fn manifest_strategy() -> impl Strategy<Value = Manifest> {
    let key = prop::collection::vec(any::<u8>(), 0..24);
    let table = (
        any::<u32>(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        key.clone(),
        key,
    );
    (
        any::<u64>(),
        any::<u64>(),
        prop::collection::vec(table, 0..12),
    )
        .prop_map(|(log_number, last_flushed_lsn, tables)| {
            let tables: Vec<TableMeta> = tables
                .into_iter()
                .enumerate()
                .map(|(i, (level, size, entries, tombs, a, b))| TableMeta {
                    table_id: 2 * i as u64 + 1,
                    level,
                    size_bytes: size,
                    entry_count: entries,
                    tombstone_count: tombs,
                    smallest_key: a.clone().min(b.clone()),
                    largest_key: a.max(b),
                })
                .collect();
            let next_file_id = (2 * tables.len() as u64 + 1).max(log_number);
            Manifest {
                format_version: MANIFEST_FORMAT_VERSION,
                next_file_id,
                log_number: log_number.min(next_file_id),
                last_flushed_lsn,
                tables,
            }
        })
}

fn expect_corruption(result: Result<Manifest>) {
    match result {
        Err(e) if e.is_corruption() => {}
        other => panic!("expected corruption, got {other:?}"),
    }
}

#[test]
fn round_trip_through_a_store() {
    let store = MemoryStore::new();
    assert_eq!(read_manifest(&store).expect("read"), None);
    let written = write_manifest(&store, &sample(1)).expect("write");
    assert_eq!(written, sample(1).encode().len() as u64);
    assert_eq!(read_manifest(&store).expect("read"), Some(sample(1)));
    write_manifest(&store, &sample(2)).expect("write");
    assert_eq!(read_manifest(&store).expect("read"), Some(sample(2)));
    assert_eq!(read_manifest(&store).expect("read"), Some(sample(2)));
    assert_eq!(
        Manifest::decode("m", &Manifest::default().encode()).expect("decode"),
        Manifest::default()
    );
}

#[test]
fn stray_temp_file_is_ignored() {
    let store = MemoryStore::new();
    let tmp = store.create(MANIFEST_TEMP_FILE).expect("create");
    tmp.append(b"half a manifest").expect("append");
    assert_eq!(read_manifest(&store).expect("read"), None);
    write_manifest(&store, &sample(1)).expect("write");
    let tmp = store.create(MANIFEST_TEMP_FILE).expect("create");
    tmp.append(&sample(2).encode()[..10]).expect("append");
    assert_eq!(read_manifest(&store).expect("read"), Some(sample(1)));
}

#[test]
fn format_version_is_written_as_current() {
    let mut manifest = sample(1);
    manifest.format_version = 99;
    let decoded = Manifest::decode("m", &manifest.encode()).expect("decode");
    assert_eq!(decoded.format_version, MANIFEST_FORMAT_VERSION);
}

#[test]
fn crash_at_each_write_step_leaves_old_or_new() {
    for old in [None, Some(sample(1))] {
        // write_manifest's operations: create tmp, append, sync, rename; then none.
        for crash_step in 0..5u64 {
            for seed in 0..8 {
                let store = FaultStore::new();
                if let Some(old) = &old {
                    write_manifest(&store, old).expect("write old");
                }
                store.plan(store.stats().ops + crash_step, Fault::Crash);
                let result = write_manifest(&store, &sample(2));
                assert_eq!(result.is_ok(), crash_step == 4);
                let image = store.crash_image(seed);
                let found = read_manifest(&image).expect("a crash image always reads");
                let new = Some(sample(2));
                assert!(
                    found == old || found == new,
                    "step {crash_step} seed {seed}: {found:?}"
                );
                if crash_step < 3 {
                    assert_eq!(found, old, "not renamed yet");
                } else {
                    // Rename is the commit point, durable on return.
                    assert_eq!(found == new, crash_step == 4);
                }
                // The image is usable: the next write succeeds over any stray tmp.
                write_manifest(&image, &sample(3)).expect("write after crash");
                assert_eq!(read_manifest(&image).expect("read"), Some(sample(3)));
            }
        }
    }
}

#[test]
fn failed_write_leaves_old_manifest() {
    for step in 0..4u64 {
        for fault in [Fault::Eio, Fault::NoSpace] {
            let store = FaultStore::new();
            write_manifest(&store, &sample(1)).expect("write");
            store.plan(store.stats().ops + step, fault);
            assert!(write_manifest(&store, &sample(2)).is_err());
            assert_eq!(
                read_manifest(&store.crash_image(0)).expect("read"),
                Some(sample(1))
            );
        }
    }
}

#[test]
fn inconsistent_manifests_are_refused() {
    let mut duplicate = sample(1);
    duplicate.tables.push(table(2, 3, b"a", b"b"));
    let mut id_too_high = sample(1);
    id_too_high.tables.push(table(21, 3, b"a", b"b"));
    let mut log_too_high = sample(1);
    log_too_high.log_number = 22;
    let mut keys_reversed = sample(1);
    keys_reversed.tables.push(table(9, 3, b"b", b"a"));
    for bad in [duplicate, id_too_high, log_too_high, keys_reversed] {
        let store = MemoryStore::new();
        expect_corruption(write_manifest(&store, &bad).map(|_| bad.clone()));
        assert_eq!(store.list().expect("list"), Vec::<String>::new());
        expect_corruption(Manifest::decode("m", &bad.encode()));
    }
}

#[test]
fn newer_version_is_unsupported() {
    let mut bytes = sample(1).encode();
    bytes[8..12].copy_from_slice(&2u32.to_le_bytes());
    let crc_at = bytes.len() - 4;
    let crc = crc32fast::hash(&bytes[..crc_at]);
    bytes[crc_at..].copy_from_slice(&crc.to_le_bytes());
    match Manifest::decode("MANIFEST", &bytes) {
        Err(StorageError::UnsupportedVersion {
            found: 2,
            supported: 1,
            ..
        }) => {}
        other => panic!("expected UnsupportedVersion, got {other:?}"),
    }
}

#[test]
fn every_truncation_and_bit_flip_is_corruption() {
    let bytes = sample(1).encode();
    for len in 0..bytes.len() {
        expect_corruption(Manifest::decode("m", &bytes[..len]));
    }
    for pos in 0..bytes.len() {
        for bit in 0..8 {
            let mut damaged = bytes.clone();
            damaged[pos] ^= 1 << bit;
            expect_corruption(Manifest::decode("m", &damaged));
        }
    }
    let mut longer = bytes.clone();
    longer.push(0);
    expect_corruption(Manifest::decode("m", &longer));
}

#[test]
fn huge_table_count_with_valid_crc_is_corruption() {
    let mut bytes = Manifest::default().encode();
    let count_at = 20 + 24;
    bytes[count_at..count_at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
    let crc_at = bytes.len() - 4;
    let crc = crc32fast::hash(&bytes[..crc_at]);
    bytes[crc_at..].copy_from_slice(&crc.to_le_bytes());
    match Manifest::decode("m", &bytes) {
        Err(StorageError::Corruption { offset, .. }) => assert_eq!(offset, count_at as u64),
        other => panic!("expected corruption, got {other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn random_manifests_round_trip(manifest in manifest_strategy()) {
        let bytes = manifest.encode();
        prop_assert_eq!(Manifest::decode("m", &bytes).expect("decode"), manifest);
    }

    #[test]
    fn bit_flipped_manifests_are_corruption(
        manifest in manifest_strategy(),
        at in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let mut bytes = manifest.encode();
        let i = at.index(bytes.len());
        bytes[i] ^= 1 << bit;
        let result = Manifest::decode("m", &bytes);
        prop_assert!(matches!(result, Err(ref e) if e.is_corruption()), "{:?}", result);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let result = Manifest::decode("m", &bytes);
        prop_assert!(matches!(result, Err(ref e) if e.is_corruption()), "{:?}", result);
    }

    #[test]
    fn arbitrary_bodies_with_valid_framing_never_panic(
        body in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        // Passes magic, length and CRC so the body parser sees hostile input.
        let mut bytes = b"RKVMANIF".to_vec();
        bytes.extend_from_slice(&MANIFEST_FORMAT_VERSION.to_le_bytes());
        bytes.extend_from_slice(&(body.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&body);
        let crc = crc32fast::hash(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        if let Ok(manifest) = Manifest::decode("m", &bytes) {
            prop_assert_eq!(manifest.encode(), bytes);
        }
    }
}
