//! The manifest: the one small file that says which tables make up the database, which
//! logs still need replay, and where id allocation resumes. It is rewritten whole and
//! swapped in by rename, so a reader sees either the old or the new version, never a mix.
//!
//! Byte format: `docs/format/log-manifest.md`.

mod codec;

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;

use std::collections::HashSet;

use super::meta::{TableMeta, MANIFEST_FILE, MANIFEST_TEMP_FILE};
use crate::storage::{BlockStore, Lsn, Result, StorageError, KEY_SIZE_BYTES_MAX};

pub use codec::MANIFEST_FORMAT_VERSION;

/// The LSM's durable state outside its logs.
///
/// Invariants (checked by [`write_manifest`] before writing and by [`Manifest::decode`]):
/// table ids are unique and below `next_file_id`, `log_number <= next_file_id`, each
/// table's `smallest_key <= largest_key`, keys at most `KEY_SIZE_BYTES_MAX` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Written as [`MANIFEST_FORMAT_VERSION`] whatever this holds; decode sets it to the
    /// version read.
    pub format_version: u32,
    /// Ids for new .log and .sst files come from this one counter.
    pub next_file_id: u64,
    /// Logs with id < `log_number` are fully in tables and may be deleted.
    pub log_number: u64,
    /// Every batch with lsn <= this is in tables.
    pub last_flushed_lsn: Lsn,
    /// Each with its level; order within a level as given.
    pub tables: Vec<TableMeta>,
}

impl Default for Manifest {
    fn default() -> Self {
        Self {
            format_version: MANIFEST_FORMAT_VERSION,
            next_file_id: 0,
            log_number: 0,
            last_flushed_lsn: 0,
            tables: Vec::new(),
        }
    }
}

impl Manifest {
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// `Corruption` (naming `file_name` and the offset of the bad field) or
    /// `UnsupportedVersion`; never panics, and allocates at most about `bytes.len()`.
    pub fn decode(file_name: &str, bytes: &[u8]) -> Result<Manifest> {
        let manifest = codec::decode(file_name, bytes)?;
        manifest
            .check_consistent()
            .map_err(|reason| StorageError::corruption(file_name, 0, reason))?;
        Ok(manifest)
    }

    /// The invariants listed on [`Manifest`]; the error is a reason.
    pub fn check_consistent(&self) -> Result<(), String> {
        if self.log_number > self.next_file_id {
            return Err(format!(
                "log_number {} is above next_file_id {}",
                self.log_number, self.next_file_id
            ));
        }
        let mut ids = HashSet::with_capacity(self.tables.len());
        for table in &self.tables {
            if table.table_id >= self.next_file_id {
                return Err(format!(
                    "table {} is not below next_file_id {}",
                    table.table_id, self.next_file_id
                ));
            }
            if !ids.insert(table.table_id) {
                return Err(format!("table {} is listed twice", table.table_id));
            }
            if table.smallest_key > table.largest_key {
                return Err(format!(
                    "table {} has smallest_key above largest_key",
                    table.table_id
                ));
            }
            let key_len_bytes = table.smallest_key.len().max(table.largest_key.len());
            if key_len_bytes > KEY_SIZE_BYTES_MAX {
                return Err(format!(
                    "table {} has a {key_len_bytes}-byte key bound, above {KEY_SIZE_BYTES_MAX}",
                    table.table_id
                ));
            }
        }
        Ok(())
    }
}

/// Durably replaces the manifest: writes `MANIFEST_TEMP_FILE`, syncs it, renames it over
/// `MANIFEST_FILE` (rename is durable on return per the `BlockStore` contract). A crash
/// at any point leaves the old manifest or the new one. Returns the bytes written.
///
/// An inconsistent manifest (see [`Manifest`]) is refused before the store is touched,
/// as `Corruption` of the in-memory state.
pub fn write_manifest(store: &dyn BlockStore, manifest: &Manifest) -> Result<u64> {
    manifest.check_consistent().map_err(|reason| {
        StorageError::corruption(
            MANIFEST_TEMP_FILE,
            0,
            format!("refusing to write an inconsistent manifest: {reason}"),
        )
    })?;
    let bytes = manifest.encode();
    let file = store.create(MANIFEST_TEMP_FILE)?;
    file.append(&bytes)?;
    file.sync()?;
    store.rename(MANIFEST_TEMP_FILE, MANIFEST_FILE)?;
    Ok(bytes.len() as u64)
}

/// The current manifest, or `None` when there is none (a new database). A stray
/// `MANIFEST_TEMP_FILE` (a crash mid-write) is ignored: the next `write_manifest`
/// replaces it. Nothing is written, so this is safe on a read-only store.
pub fn read_manifest(store: &dyn BlockStore) -> Result<Option<Manifest>> {
    let file = match store.open(MANIFEST_FILE) {
        Ok(file) => file,
        Err(StorageError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let bytes = file.read_all()?;
    Manifest::decode(MANIFEST_FILE, &bytes).map(Some)
}
