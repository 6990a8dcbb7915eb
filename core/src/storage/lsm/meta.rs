//! Names and descriptions shared by the LSM's files.

/// What the manifest records about one SSTable. Tables are immutable, so this never
/// changes after the table is written, except `level` when a table moves down whole.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TableMeta {
    pub table_id: u64,
    pub level: u32,
    pub size_bytes: u64,
    pub entry_count: u64,
    pub tombstone_count: u64,
    pub smallest_key: Vec<u8>,
    pub largest_key: Vec<u8>,
}

impl TableMeta {
    /// Whether the table's key range meets `[smallest, largest]`.
    pub fn overlaps(&self, smallest: &[u8], largest: &[u8]) -> bool {
        self.smallest_key.as_slice() <= largest && smallest <= self.largest_key.as_slice()
    }
}

pub fn table_file_name(table_id: u64) -> String {
    format!("{table_id:016}.sst")
}

pub fn log_file_name(log_id: u64) -> String {
    format!("{log_id:016}.log")
}

pub const MANIFEST_FILE: &str = "MANIFEST";
pub const MANIFEST_TEMP_FILE: &str = "MANIFEST.tmp";

/// Parses `0000000000000042.sst` / `.log` back to `(42, "sst")`.
pub fn parse_file_name(name: &str) -> Option<(u64, &str)> {
    let (id, ext) = name.split_once('.')?;
    if id.len() != 16 {
        return None;
    }
    Some((id.parse().ok()?, ext))
}
