//! Opens arbitrary bytes as an SSTable, then looks keys up and iterates everything:
//! damaged or hostile tables must give errors, never a panic, hang or runaway
//! allocation.
#![no_main]

use std::ops::Bound;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use ringkv_core::storage::blockstore::MemoryStore;
use ringkv_core::storage::lsm::cache::BlockCache;
use ringkv_core::storage::lsm::sstable::TableReader;
use ringkv_core::storage::BlockStore;

/// Keys looked up per input, so one run stays fast however many entries decode.
const PROBES_MAX: usize = 64;

fuzz_target!(|data: &[u8]| {
    let store = MemoryStore::new();
    let Ok(file) = store.create("0000000000000001.sst") else {
        return;
    };
    if file.append(data).is_err() {
        return;
    }
    let cache = Arc::new(BlockCache::new(1 << 20));
    let Ok(reader) = TableReader::open(file, 1, cache) else {
        return;
    };
    let reader = Arc::new(reader);

    // Keys that are probably absent, and a prefix of the input (it may hit a real block).
    let _ = reader.get(b"");
    let _ = reader.get(&data[..data.len().min(16)]);

    let mut probes = Vec::new();
    for item in reader.iter(Bound::Unbounded) {
        match item {
            Ok((key, _value)) => {
                if probes.len() < PROBES_MAX {
                    probes.push(key);
                }
            }
            // An iterator may keep reporting the same damage; one error ends the walk.
            Err(_) => break,
        }
    }
    for key in &probes {
        let _ = reader.get(key);
    }
    // Seeks into the middle of the table.
    if let Some(key) = probes.get(probes.len() / 2) {
        for item in reader.iter(Bound::Included(key.clone())).take(PROBES_MAX) {
            if item.is_err() {
                break;
            }
        }
        for item in reader.iter(Bound::Excluded(key.clone())).take(PROBES_MAX) {
            if item.is_err() {
                break;
            }
        }
    }
});
