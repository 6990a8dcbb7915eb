//! The block store: the only way the engines touch persistent bytes.
//!
//! A store is a flat namespace of append-only files. The contract every engine relies on:
//! - `append` bytes are volatile until `sync` returns `Ok` on that file;
//! - `create`, `rename` and `remove` are durable when they return (file stores fsync the
//!   directory), and `rename` atomically replaces its target;
//! - after a failed `sync` the file's durable content is unknown: callers must stop and
//!   recover from what a reopen finds (fsync errors are not retryable).
//!
//! Browser stores (IndexedDB) are asynchronous; they implement this trait as an in-memory
//! image whose host commits it in ordered, atomic transactions. See ARCHITECTURE.md,
//! "Durability hand-off".

mod fault;
#[cfg(not(target_arch = "wasm32"))]
mod file;
mod memory;

use std::sync::Arc;

pub use fault::{Fault, FaultStore, FaultStoreStats};
#[cfg(not(target_arch = "wasm32"))]
pub use file::FileStore;
pub use memory::MemoryStore;

use super::error::Result;

pub trait BlockStore: Send + Sync + std::fmt::Debug {
    /// Creates an empty file, replacing any file of that name. Durable on return.
    fn create(&self, name: &str) -> Result<Arc<dyn BlockFile>>;
    /// Opens an existing file; `StorageError::NotFound` when absent.
    fn open(&self, name: &str) -> Result<Arc<dyn BlockFile>>;
    /// Names of all files, in no particular order.
    fn list(&self) -> Result<Vec<String>>;
    /// Removes a file. Durable on return. Removing an absent file is not an error.
    fn remove(&self, name: &str) -> Result<()>;
    /// Atomically renames `from` to `to`, replacing `to`. Durable on return.
    fn rename(&self, from: &str, to: &str) -> Result<()>;
}

pub trait BlockFile: Send + Sync + std::fmt::Debug {
    fn name(&self) -> &str;
    /// Current length, including appended bytes not yet synced.
    fn len(&self) -> Result<u64>;
    fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }
    /// Fills `buf` from `offset`; reading past the end is an error.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()>;
    fn append(&self, data: &[u8]) -> Result<()>;
    /// Shrinks the file to `len_bytes` (used to cut a torn log tail). Volatile until `sync`.
    fn truncate(&self, len_bytes: u64) -> Result<()>;
    /// Makes every byte appended so far durable.
    fn sync(&self) -> Result<()>;

    /// Reads the whole file.
    fn read_all(&self) -> Result<Vec<u8>> {
        let len = self.len()?;
        let mut buf = vec![0u8; usize::try_from(len).unwrap_or(usize::MAX)];
        self.read_at(0, &mut buf)?;
        Ok(buf)
    }
}
