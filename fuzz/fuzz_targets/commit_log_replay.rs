//! Replays arbitrary bytes as a commit log. Beyond "no panic, no hang, no huge
//! allocation", a successful replay must be sound: LSNs rise, batches pass their limits,
//! `torn_tail` means bytes were left, and the valid prefix re-encodes byte for byte (the
//! record encoding is canonical).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringkv_core::storage::blockstore::MemoryStore;
use ringkv_core::storage::lsm::commit_log::{decode_record, replay, LogWriter};
use ringkv_core::storage::{BlockStore, Lsn};

fuzz_target!(|data: &[u8]| {
    let store = MemoryStore::new();
    let Ok(file) = store.create("0000000000000001.log") else {
        return;
    };
    if file.append(data).is_err() {
        return;
    }
    let mut records: Vec<(Lsn, ringkv_core::storage::WriteBatch)> = Vec::new();
    let result = replay(file.as_ref(), |lsn, batch| {
        if let Some((prev, _)) = records.last() {
            assert!(lsn > *prev, "replay passed lsn {lsn} after {prev}");
        }
        assert!(
            batch.validate().is_ok(),
            "replay passed a batch over the limits"
        );
        records.push((lsn, batch));
        Ok(())
    });
    if let Ok(end) = result {
        let valid_len = end.valid_len_bytes as usize;
        assert!(valid_len <= data.len());
        assert_eq!(end.torn_tail, valid_len < data.len());
        assert_eq!(end.records, records.len() as u64);
        assert_eq!(end.last_lsn, records.last().map(|(lsn, _)| *lsn));

        let Ok(out) = store.create("0000000000000002.log") else {
            return;
        };
        let mut writer = LogWriter::new(out.clone());
        for (lsn, batch) in &records {
            assert!(writer.append(*lsn, batch).is_ok());
        }
        assert!(writer.write_out().is_ok());
        let reencoded = out.read_all().ok();
        assert_eq!(reencoded.as_deref(), Some(&data[..valid_len]));
    }
    // The single-record decoder over the same bytes must not panic either.
    let _ = decode_record(data);
});
