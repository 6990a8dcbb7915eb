//! Whole-table tests: round trips through writer and reader, and damaged input.

mod corruption;
mod roundtrip;

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Lookup, TableOptions, TableReader, TableWriter};
use crate::storage::blockstore::{BlockFile, BlockStore, MemoryStore};
use crate::storage::error::Result;
use crate::storage::lsm::cache::BlockCache;
use crate::storage::lsm::meta::TableMeta;

type Entries = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

const TABLE_ID: u64 = 42;

fn write_table(entries: &Entries, options: &TableOptions) -> (Arc<dyn BlockFile>, TableMeta) {
    let file = MemoryStore::new().create("t.sst").expect("create");
    let mut writer = TableWriter::new(Arc::clone(&file), TABLE_ID, options);
    for (key, value) in entries {
        writer.add(key, value.as_deref()).expect("add");
    }
    let meta = writer.finish().expect("finish");
    (file, meta)
}

fn open(file: Arc<dyn BlockFile>) -> Result<Arc<TableReader>> {
    TableReader::open(file, TABLE_ID, Arc::new(BlockCache::new(1 << 20))).map(Arc::new)
}

/// A file holding exactly `bytes`.
fn file_with(bytes: &[u8]) -> Arc<dyn BlockFile> {
    let file = MemoryStore::new().create("t.sst").expect("create");
    file.append(bytes).expect("append");
    file
}

fn expected_lookup(value: &Option<Vec<u8>>) -> Lookup {
    match value {
        Some(v) => Lookup::Value(v.clone()),
        None => Lookup::Deleted,
    }
}
