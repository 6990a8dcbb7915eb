//! Commit log tests: round trips, the torn-tail/corruption boundary at every byte, crash
//! images from `FaultStore`, and arbitrary input.

use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::storage::blockstore::{Fault, FaultStore, MemoryStore};
use crate::storage::lsm::meta::log_file_name;
use crate::storage::{
    BlockFile, BlockStore, Lsn, Result, StorageError, WriteBatch, KEY_SIZE_BYTES_MAX,
    VALUE_SIZE_BYTES_MAX,
};

type Records = Vec<(Lsn, WriteBatch)>;

const LOG: &str = "0000000000000001.log";

fn memory_file(bytes: &[u8]) -> Arc<dyn BlockFile> {
    let store = MemoryStore::new();
    let file = store.create(LOG).expect("create");
    file.append(bytes).expect("append");
    file
}

/// The log bytes for `records` and each record's end offset.
fn encode_log(records: &[(Lsn, WriteBatch)]) -> (Vec<u8>, Vec<u64>) {
    let file = memory_file(&[]);
    let mut writer = LogWriter::new(file.clone());
    let mut ends = Vec::new();
    let mut end = 0;
    for (lsn, batch) in records {
        end += writer.append(*lsn, batch).expect("append");
        ends.push(end);
    }
    writer.write_out().expect("write_out");
    (file.read_all().expect("read"), ends)
}

fn replay_bytes(bytes: &[u8]) -> Result<(ReplayEnd, Records)> {
    replay_file(memory_file(bytes).as_ref())
}

fn replay_file(file: &dyn BlockFile) -> Result<(ReplayEnd, Records)> {
    let mut records = Vec::new();
    let end = replay(file, |lsn, batch| {
        records.push((lsn, batch));
        Ok(())
    })?;
    Ok((end, records))
}

fn assert_corruption_at(result: Result<(ReplayEnd, Records)>, offset: u64) {
    match result {
        Err(StorageError::Corruption {
            file, offset: at, ..
        }) => {
            assert_eq!(file, LOG);
            assert_eq!(at, offset);
        }
        other => panic!("expected corruption at {offset}, got {other:?}"),
    }
}

/// A few records of different shapes: puts, deletes, empty keys and values, an empty batch.
fn sample_records() -> Records {
    let mut records = Vec::new();
    let mut b = WriteBatch::new();
    b.put("alpha", "one").delete("beta");
    records.push((1, b));
    records.push((2, WriteBatch::new()));
    let mut b = WriteBatch::new();
    b.put("", "").put(vec![0u8; 200], vec![7u8; 300]);
    records.push((5, b));
    let mut b = WriteBatch::new();
    b.delete("");
    records.push((6, b));
    let mut b = WriteBatch::new();
    b.put("k", vec![0xffu8; 129])
        .delete(vec![0x80u8; 3])
        .put("z", "");
    records.push((1 << 40, b));
    records
}

fn batch_strategy() -> impl Strategy<Value = WriteBatch> {
    let key = prop::collection::vec(any::<u8>(), 0..48);
    let value = prop_oneof![
        Just(Vec::new()),
        prop::collection::vec(any::<u8>(), 0..300),
        prop::collection::vec(any::<u8>(), 0..5000),
    ];
    let op = prop_oneof![
        (key.clone(), value).prop_map(|(k, v)| (k, Some(v))),
        key.prop_map(|k| (k, None)),
    ];
    prop::collection::vec(op, 0..12).prop_map(|ops| {
        let mut batch = WriteBatch::new();
        for (key, value) in ops {
            match value {
                Some(value) => batch.put(key, value),
                None => batch.delete(key),
            };
        }
        batch
    })
}

/// Batches with strictly increasing LSNs (random gaps), each with whether to write out
/// after it.
fn log_strategy(max_records: usize) -> impl Strategy<Value = Vec<(Lsn, WriteBatch, bool)>> {
    prop::collection::vec(
        (1u64..1000, batch_strategy(), any::<bool>()),
        0..max_records,
    )
    .prop_map(|items| {
        let mut lsn = 0;
        items
            .into_iter()
            .map(|(gap, batch, flush)| {
                lsn += gap;
                (lsn, batch, flush)
            })
            .collect()
    })
}

#[test]
fn empty_file_replays_nothing() {
    let (end, records) = replay_bytes(&[]).expect("replay");
    assert_eq!(
        end,
        ReplayEnd {
            valid_len_bytes: 0,
            torn_tail: false,
            last_lsn: None,
            records: 0
        }
    );
    assert!(records.is_empty());
    assert_eq!(decode_record(&[]).expect("decode"), RecordRead::End);
}

#[test]
fn round_trip_sample() {
    let records = sample_records();
    let (bytes, ends) = encode_log(&records);
    let (end, replayed) = replay_bytes(&bytes).expect("replay");
    assert_eq!(replayed, records);
    assert_eq!(end.valid_len_bytes, bytes.len() as u64);
    assert_eq!(end.last_lsn, Some(1 << 40));
    assert_eq!(end.records, records.len() as u64);
    assert!(!end.torn_tail);
    match decode_record(&bytes).expect("decode") {
        RecordRead::Record {
            lsn,
            batch,
            len_bytes,
        } => {
            assert_eq!(
                (lsn, &batch, len_bytes),
                (records[0].0, &records[0].1, ends[0])
            );
        }
        other => panic!("expected a record, got {other:?}"),
    }
}

#[test]
fn torn_tail_at_every_offset() {
    let records = sample_records();
    let (bytes, ends) = encode_log(&records);
    for cut in 0..=bytes.len() {
        let (end, replayed) = replay_bytes(&bytes[..cut]).expect("a cut log replays");
        let whole = ends.iter().filter(|&&e| e <= cut as u64).count();
        let boundary = if whole == 0 { 0 } else { ends[whole - 1] };
        assert_eq!(replayed, records[..whole], "cut at {cut}");
        assert_eq!(end.records, whole as u64);
        assert_eq!(end.valid_len_bytes, boundary, "cut at {cut}");
        assert_eq!(end.torn_tail, boundary != cut as u64, "cut at {cut}");
        assert_eq!(end.last_lsn, whole.checked_sub(1).map(|i| records[i].0));
    }
}

#[test]
fn any_flipped_byte_is_corruption_at_its_record() {
    let records = sample_records();
    let (bytes, ends) = encode_log(&records);
    for pos in 0..bytes.len() {
        let record = ends.iter().position(|&e| e > pos as u64).expect("inside");
        let record_start = if record == 0 { 0 } else { ends[record - 1] };
        for mask in [0x01u8, 0x80, 0xff, 0x5a] {
            let mut damaged = bytes.clone();
            damaged[pos] ^= mask;
            assert_corruption_at(replay_bytes(&damaged), record_start);
        }
    }
}

#[test]
fn zero_filled_tail_is_torn() {
    // The rule is safe only because no verified header is all zeros.
    assert!(super::record::RecordHeader::decode(&[0u8; RECORD_HEADER_SIZE_BYTES]).is_err());
    let records = sample_records();
    let (mut bytes, _) = encode_log(&records);
    let valid_len = bytes.len() as u64;
    for zeros in [1usize, 19, 20, 21, 4096, 300_000] {
        let mut padded = bytes.clone();
        padded.resize(bytes.len() + zeros, 0);
        let (end, replayed) = replay_bytes(&padded).expect("replay");
        assert!(end.torn_tail);
        assert_eq!(end.valid_len_bytes, valid_len);
        assert_eq!(replayed, records);
    }
    // Zeros followed by anything else are not a tail: that is damage.
    bytes.extend_from_slice(&[0u8; 40]);
    bytes.push(1);
    assert_corruption_at(replay_bytes(&bytes), valid_len);
}

#[test]
fn zeroed_record_inside_the_log_is_corruption() {
    let records = sample_records();
    let (mut bytes, ends) = encode_log(&records);
    for b in &mut bytes[ends[1] as usize..ends[2] as usize] {
        *b = 0;
    }
    assert_corruption_at(replay_bytes(&bytes), ends[1]);
}

#[test]
fn lsns_must_rise_within_a_file() {
    let file = memory_file(&[]);
    let mut batch = WriteBatch::new();
    batch.put("k", "v");
    let mut first = LogWriter::new(file.clone());
    let len = first.append(7, &batch).expect("append");
    first.write_out().expect("write_out");
    // A second writer does not know the file's LSNs, so it can write a repeat.
    let mut second = LogWriter::new(file.clone());
    second.append(7, &batch).expect("append");
    second.write_out().expect("write_out");
    assert_corruption_at(replay_file(file.as_ref()), len);
}

#[test]
fn writer_refuses_non_rising_lsn_and_oversize_batches() {
    let mut writer = LogWriter::new(memory_file(&[]));
    let mut batch = WriteBatch::new();
    batch.put("k", "v");
    writer.append(10, &batch).expect("append");
    let buffered = writer.buffered_bytes();
    assert!(matches!(
        writer.append(10, &batch),
        Err(StorageError::Failed { .. })
    ));
    assert!(matches!(
        writer.append(9, &batch),
        Err(StorageError::Failed { .. })
    ));
    let mut big = WriteBatch::new();
    big.put(vec![1u8; KEY_SIZE_BYTES_MAX + 1], "v");
    assert!(matches!(
        writer.append(11, &big),
        Err(StorageError::TooLarge { .. })
    ));
    assert_eq!(writer.buffered_bytes(), buffered);
    writer.append(11, &batch).expect("still usable");
}

#[test]
fn max_size_records_round_trip_and_tear() {
    let mut big = WriteBatch::new();
    big.put(
        vec![0xabu8; KEY_SIZE_BYTES_MAX],
        vec![0xcdu8; VALUE_SIZE_BYTES_MAX],
    );
    big.delete(vec![0x01u8; KEY_SIZE_BYTES_MAX]);
    let mut small = WriteBatch::new();
    small.put("after", "big");
    let records = vec![(1, small.clone()), (2, big), (3, small)];
    let (bytes, ends) = encode_log(&records);
    let (end, replayed) = replay_bytes(&bytes).expect("replay");
    assert_eq!(replayed, records);
    assert!(!end.torn_tail);
    // Cuts inside the big record, which spans many read chunks.
    for cut in [ends[0] + 20, ends[0] + 1_000_000, ends[1] - 1] {
        let (end, replayed) = replay_bytes(&bytes[..cut as usize]).expect("replay");
        assert!(end.torn_tail);
        assert_eq!(end.valid_len_bytes, ends[0]);
        assert_eq!(replayed.len(), 1);
    }
    let mut damaged = bytes.clone();
    damaged[(ends[0] + 5_000_000) as usize] ^= 1;
    assert_corruption_at(replay_bytes(&damaged), ends[0]);
}

#[test]
fn synced_records_survive_crash_and_unsynced_are_a_prefix() {
    let records = sample_records();
    let (mut torn_images, mut longer_images) = (0, 0);
    for seed in 0..64 {
        let store = FaultStore::new();
        let file = store.create(&log_file_name(1)).expect("create");
        let mut writer = LogWriter::new(file.clone());
        for (lsn, batch) in &records[..2] {
            writer.append(*lsn, batch).expect("append");
        }
        writer.write_out().expect("write_out");
        file.sync().expect("sync");
        // Unsynced: two separate appends.
        writer.append(records[2].0, &records[2].1).expect("append");
        writer.write_out().expect("write_out");
        for (lsn, batch) in &records[3..] {
            writer.append(*lsn, batch).expect("append");
        }
        writer.write_out().expect("write_out");
        assert_eq!(writer.written_bytes(), file.len().expect("len"));

        let image = store.crash_image(seed);
        let file = image.open(&log_file_name(1)).expect("open");
        let (end, replayed) = replay_file(file.as_ref()).expect("crash image replays");
        assert!(replayed.len() >= 2, "seed {seed}: synced records lost");
        assert_eq!(replayed, records[..replayed.len()]);
        assert_eq!(
            end.torn_tail,
            end.valid_len_bytes < file.len().expect("len")
        );
        if seed == 0 {
            assert_eq!(replayed.len(), 2);
            assert!(!end.torn_tail);
        }
        torn_images += usize::from(end.torn_tail);
        longer_images += usize::from(replayed.len() > 2);
        // What the engine does next: cut the tail, then the log is clean.
        file.truncate(end.valid_len_bytes).expect("truncate");
        let (again, replayed_again) = replay_file(file.as_ref()).expect("replay");
        assert!(!again.torn_tail);
        assert_eq!(replayed_again, replayed);
    }
    assert!(
        torn_images > 0 && longer_images > 0,
        "the seeds exercised both cases"
    );
}

#[test]
fn failed_append_fails_the_writer() {
    for fault in [Fault::Eio, Fault::NoSpace, Fault::Crash] {
        let store = FaultStore::new();
        let file = store.create(LOG).expect("create"); // op 0
        let mut writer = LogWriter::new(file.clone());
        let mut batch = WriteBatch::new();
        batch.put("k", "v");
        writer.append(1, &batch).expect("append");
        writer.write_out().expect("write_out"); // op 1
        file.sync().expect("sync"); // op 2
        store.plan(3, fault);
        writer.append(2, &batch).expect("append");
        assert!(writer.write_out().is_err());
        assert_eq!(writer.buffered_bytes(), 0);
        assert!(matches!(
            writer.append(3, &batch),
            Err(StorageError::Failed { .. })
        ));
        assert!(matches!(
            writer.write_out(),
            Err(StorageError::Failed { .. })
        ));
        let image = store.crash_image(7);
        let file = image.open(LOG).expect("open");
        let (end, replayed) = replay_file(file.as_ref()).expect("replay");
        assert_eq!(replayed, vec![(1, batch)]);
        assert!(!end.torn_tail);
    }
}

#[test]
fn apply_errors_stop_replay() {
    let (bytes, _) = encode_log(&sample_records());
    let file = memory_file(&bytes);
    let mut calls = 0;
    let result = replay(file.as_ref(), |_, _| {
        calls += 1;
        if calls == 2 {
            return Err(StorageError::Closed);
        }
        Ok(())
    });
    assert!(matches!(result, Err(StorageError::Closed)));
    assert_eq!(calls, 2);
}

/// Replays `bytes` and, when that succeeds, checks what the fuzz target checks: the valid
/// prefix re-encodes to the same bytes and `torn_tail` matches the leftover.
fn check_replay_is_sound(bytes: &[u8]) {
    if let Ok((end, records)) = replay_bytes(bytes) {
        assert!(end.valid_len_bytes <= bytes.len() as u64);
        assert_eq!(end.torn_tail, end.valid_len_bytes < bytes.len() as u64);
        let (reencoded, _) = encode_log(&records);
        assert_eq!(reencoded, bytes[..end.valid_len_bytes as usize]);
    }
    let _ = decode_record(bytes);
}

/// A record with valid header and payload CRCs around `payload`, so the batch decoder
/// sees hostile bytes.
fn framed(lsn: Lsn, payload: &[u8]) -> Vec<u8> {
    let header = super::record::RecordHeader {
        payload_len_bytes: payload.len() as u32,
        lsn,
        payload_crc: crc32fast::hash(payload),
    };
    let mut bytes = header.encode().to_vec();
    bytes.extend_from_slice(payload);
    bytes
}

#[test]
fn hostile_payloads_with_valid_checksums_are_corruption() {
    let cases: [&[u8]; 8] = [
        &[],                                // no op count
        &[0xff; 11],                        // varint too long
        &[0x80, 0x00],                      // non-minimal varint
        &[0xff, 0xff, 0xff, 0xff, 0x0f, 1], // 2^32 ops claimed, one byte left
        &[1, 3],                            // unknown op kind
        &[1, 1, 0x80, 0x80, 0x04],          // key length above the limit
        &[1, 2, 5, b'a'],                   // key runs past the payload
        &[1, 2, 0, 0],                      // trailing byte
    ];
    for payload in cases {
        let bytes = framed(1, payload);
        assert_corruption_at(replay_bytes(&bytes), 0);
        assert!(decode_record(&bytes).is_err_and(|e| e.is_corruption()));
    }
    // A valid header whose length is above the bound is corruption, not a torn tail.
    let header = super::record::RecordHeader {
        payload_len_bytes: (PAYLOAD_SIZE_BYTES_MAX + 1) as u32,
        lsn: 1,
        payload_crc: 0,
    };
    assert_corruption_at(replay_bytes(&header.encode()), 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn framed_arbitrary_payloads_never_panic(
        payload in prop::collection::vec(any::<u8>(), 0..256),
        lsn in any::<u64>(),
    ) {
        check_replay_is_sound(&framed(lsn, &payload));
    }

    #[test]
    fn random_batches_round_trip(log in log_strategy(40)) {
        let file = memory_file(&[]);
        let mut writer = LogWriter::new(file.clone());
        let mut total = 0;
        for (lsn, batch, flush) in &log {
            total += writer.append(*lsn, batch).expect("append");
            if *flush {
                writer.write_out().expect("write_out");
                prop_assert_eq!(writer.buffered_bytes(), 0);
            }
        }
        writer.write_out().expect("write_out");
        prop_assert_eq!(writer.written_bytes(), total);
        prop_assert_eq!(file.len().expect("len"), total);
        let (end, replayed) = replay_file(file.as_ref()).expect("replay");
        let expected: Records = log.into_iter().map(|(l, b, _)| (l, b)).collect();
        prop_assert_eq!(end.last_lsn, expected.last().map(|r| r.0));
        prop_assert_eq!(replayed, expected);
        prop_assert!(!end.torn_tail);
    }

    #[test]
    fn random_logs_cut_anywhere_replay_a_prefix(log in log_strategy(8), cut_frac in 0.0f64..=1.0) {
        let records: Records = log.into_iter().map(|(l, b, _)| (l, b)).collect();
        let (bytes, ends) = encode_log(&records);
        let cut = ((bytes.len() as f64) * cut_frac) as usize;
        let (end, replayed) = replay_bytes(&bytes[..cut]).expect("replay");
        let whole = ends.iter().filter(|&&e| e <= cut as u64).count();
        prop_assert_eq!(replayed, records[..whole].to_vec());
        prop_assert_eq!(end.torn_tail, end.valid_len_bytes != cut as u64);
    }

    #[test]
    fn replay_of_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        check_replay_is_sound(&bytes);
    }

    #[test]
    fn replay_of_damaged_logs_never_panics(
        log in log_strategy(6),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        suffix in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let records: Records = log.into_iter().map(|(l, b, _)| (l, b)).collect();
        let (mut bytes, _) = encode_log(&records);
        if !bytes.is_empty() {
            for (index, value) in edits {
                let i = index.index(bytes.len());
                bytes[i] = value;
            }
        }
        bytes.extend_from_slice(&suffix);
        check_replay_is_sound(&bytes);
    }
}
