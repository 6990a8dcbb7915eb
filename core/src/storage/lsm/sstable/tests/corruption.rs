//! Damaged and hostile bytes: every outcome is a value or a typed error, never a panic,
//! and damage is never returned as data.

use std::ops::Bound;
use std::sync::Arc;

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;

use super::*;
use crate::storage::error::StorageError;
use crate::storage::lsm::sstable::block::{Block, BlockCursor, SeekMode};
use crate::storage::lsm::sstable::bloom::Bloom;
use crate::storage::lsm::sstable::footer::FOOTER_SIZE_BYTES;
use crate::storage::lsm::sstable::index::Index;
use crate::storage::lsm::sstable::properties::Properties;
use crate::storage::lsm::sstable::{frame, TableIter};

fn assert_expected_error(err: &StorageError) {
    assert!(
        matches!(
            err,
            StorageError::Corruption { .. }
                | StorageError::UnsupportedVersion { .. }
                | StorageError::Io { .. }
        ),
        "unexpected error kind: {err}"
    );
}

/// Opens, looks up every probe and iterates fully. Returns what was read, or the first
/// error (after checking its kind).
fn read_everything(file: Arc<dyn BlockFile>, probes: &[Vec<u8>]) -> Option<(Vec<Lookup>, Entries)> {
    let outcome = (|| {
        let table = open(file)?;
        let lookups = probes
            .iter()
            .map(|p| table.get(p))
            .collect::<Result<Vec<_>>>()?;
        let entries = table.iter(Bound::Unbounded).collect::<Result<Entries>>()?;
        Ok((lookups, entries))
    })();
    outcome.map_err(|e| assert_expected_error(&e)).ok()
}

fn sample_entries() -> Entries {
    (0..300u32)
        .map(|i| {
            let value = (i % 5 != 0)
                .then(|| format!("value-{i}-{}", "x".repeat((i % 40) as usize)).into_bytes());
            (format!("key/{i:05}").into_bytes(), value)
        })
        .collect()
}

fn sample_table(compress: bool) -> Vec<u8> {
    let options = TableOptions {
        block_size_bytes: 256,
        compress,
        ..TableOptions::default()
    };
    write_table(&sample_entries(), &options)
        .0
        .read_all()
        .expect("read")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..2048), probe in vec(any::<u8>(), 0..8)) {
        read_everything(file_with(&bytes), &[probe]);
    }

    /// Garbage behind a valid magic and version reaches the CRC and layout checks.
    #[test]
    fn arbitrary_footer_fields_never_panic(body in vec(any::<u8>(), 0..512), fields in vec(any::<u8>(), 48)) {
        let mut bytes = body;
        bytes.extend_from_slice(&fields);
        bytes.extend_from_slice(&1u32.to_le_bytes());
        let crc = crc32fast::hash(&bytes[bytes.len() - 52..]);
        bytes.extend_from_slice(&crc.to_le_bytes());
        bytes.extend_from_slice(b"RKVTABLE");
        read_everything(file_with(&bytes), &[b"key".to_vec()]);
    }

    /// Flips and truncation are detected: whatever reads without error equals the original.
    #[test]
    fn damaged_tables_fail_cleanly_or_read_correctly(
        compress in any::<bool>(),
        flips in vec((any::<prop::sample::Index>(), 1..=255u8), 0..4),
        truncate in prop::option::of(any::<prop::sample::Index>()),
    ) {
        let original = sample_table(compress);
        let mut bytes = original.clone();
        let mut positions: Vec<usize> = flips.iter().map(|(at, _)| at.index(bytes.len())).collect();
        positions.sort_unstable();
        positions.dedup();
        for (position, (_, mask)) in positions.iter().zip(&flips) {
            bytes[*position] ^= mask;
        }
        if let Some(at) = truncate {
            bytes.truncate(at.index(bytes.len()));
        }
        let entries = sample_entries();
        let probes: Vec<Vec<u8>> = entries.keys().step_by(7).cloned().collect();
        if let Some((lookups, read)) = read_everything(file_with(&bytes), &probes) {
            prop_assert_eq!(bytes.len(), original.len());
            prop_assert_eq!(read, entries.clone());
            let expected: Vec<Lookup> = probes.iter().map(|p| expected_lookup(&entries[p])).collect();
            prop_assert_eq!(lookups, expected);
        }
    }

    /// Decoders below the CRC see arbitrary bytes only if a checksum collides, but must
    /// still hold up: drive them directly.
    #[test]
    fn section_decoders_never_panic(bytes in vec(any::<u8>(), 0..600), target in vec(any::<u8>(), 0..6)) {
        if let Ok(block) = Block::decode(bytes.clone()) {
            let block = Arc::new(block);
            let mut cursor = BlockCursor::new(Arc::clone(&block));
            while let Ok(true) = cursor.advance() {}
            for mode in [SeekMode::AtOrAfter, SeekMode::After] {
                let mut cursor = BlockCursor::new(Arc::clone(&block));
                if let Ok(true) = cursor.seek(&target, mode) {
                    while let Ok(true) = cursor.advance() {}
                }
            }
        }
        let _ = Index::decode(&bytes, bytes.len() as u64);
        let _ = Properties::decode(&bytes);
        let _ = Bloom::decode(bytes.clone()).map(|b| b.may_contain(&target));
        let _ = frame::decode(bytes.clone());
        let mut lz4 = vec![1u8];
        lz4.extend_from_slice(&bytes);
        let _ = frame::decode(lz4);
    }

    /// Valid blocks with entries damaged after framing (as a CRC collision would leave
    /// them) yield errors or ordered keys, never panics.
    #[test]
    fn damaged_block_contents_never_panic(
        entries in btree_map(vec(0..3u8, 0..6), prop::option::of(vec(any::<u8>(), 0..5)), 1..60),
        flips in vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut encoder = crate::storage::lsm::sstable::block::BlockEncoder::default();
        for (key, value) in &entries {
            encoder.add(key, value.as_deref());
        }
        let mut contents = encoder.finish();
        for (at, byte) in flips {
            let position = at.index(contents.len());
            contents[position] = byte;
        }
        if let Ok(block) = Block::decode(contents) {
            let mut cursor = BlockCursor::new(Arc::new(block));
            let mut previous: Option<Vec<u8>> = None;
            while let Ok(true) = cursor.advance() {
                prop_assert!(previous.as_deref().is_none_or(|p| p < cursor.key()));
                previous = Some(cursor.key().to_vec());
            }
        }
    }
}

#[test]
fn flipped_data_block_byte_is_corruption_on_read() {
    for compress in [true, false] {
        let mut bytes = sample_table(compress);
        bytes[10] ^= 0x01;
        let table = open(file_with(&bytes)).expect("damage in a data block is found only on read");
        let err = table.get(b"key/00000").expect_err("first block is damaged");
        assert!(err.is_corruption(), "{err}");
        assert!(err.to_string().contains("checksum mismatch"), "{err}");
        let first = table.iter(Bound::Unbounded).next().expect("an item");
        assert!(first.is_err_and(|e| e.is_corruption()));
        let mut iter: TableIter = table.iter(Bound::Unbounded);
        assert!(iter.next().is_some_and(|item| item.is_err()));
        assert!(
            iter.next().is_none(),
            "an iterator stops after its first error"
        );
        // Blocks the damage did not touch still read.
        assert_eq!(
            table.get(b"key/00299").expect("get"),
            Lookup::Value(
                b"value-299-"
                    .iter()
                    .copied()
                    .chain(std::iter::repeat_n(b'x', 19))
                    .collect()
            )
        );
    }
}

#[test]
fn truncated_or_foreign_files_are_corruption() {
    let bytes = sample_table(true);
    for len in [
        0,
        1,
        FOOTER_SIZE_BYTES - 1,
        FOOTER_SIZE_BYTES,
        bytes.len() - 1,
    ] {
        let err = open(file_with(&bytes[..len])).expect_err("truncated");
        assert!(err.is_corruption(), "len {len}: {err}");
    }
    let err = open(file_with(&[0u8; 4096])).expect_err("not a table");
    assert!(err.is_corruption(), "{err}");
}

#[test]
fn newer_format_version_is_unsupported() {
    let mut bytes = sample_table(true);
    let version_at = bytes.len() - 16;
    bytes[version_at] = 2;
    let err = open(file_with(&bytes)).expect_err("newer version");
    assert!(
        matches!(
            err,
            StorageError::UnsupportedVersion {
                found: 2,
                supported: 1,
                ..
            }
        ),
        "{err}"
    );
}
