use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use super::{BlockFile, BlockStore};
use crate::storage::error::{Result, StorageError};

/// A store held in memory. Every operation is durable at once (there is nothing to lose
/// but the process), so it serves wasm replicas that need no persistence and tests.
/// Files are shared: reopening a name sees the bytes written through any earlier handle,
/// which lets an engine be closed and reopened on the same store.
#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    files: Arc<Mutex<HashMap<String, Arc<MemoryFile>>>>,
}

#[derive(Debug)]
pub struct MemoryFile {
    name: String,
    data: RwLock<Vec<u8>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Total bytes held, for space accounting.
    pub fn size_bytes(&self) -> u64 {
        self.lock()
            .values()
            .map(|f| f.data.read().map(|d| d.len() as u64).unwrap_or(0))
            .sum()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<MemoryFile>>> {
        // A poisoned lock only means another thread panicked mid-operation on a map whose
        // every mutation is a single insert/remove, so the map itself is consistent.
        self.files.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl BlockStore for MemoryStore {
    fn create(&self, name: &str) -> Result<Arc<dyn BlockFile>> {
        let file = Arc::new(MemoryFile {
            name: name.to_string(),
            data: RwLock::new(Vec::new()),
        });
        self.lock().insert(name.to_string(), file.clone());
        Ok(file)
    }

    fn open(&self, name: &str) -> Result<Arc<dyn BlockFile>> {
        match self.lock().get(name) {
            Some(f) => Ok(f.clone()),
            None => Err(StorageError::NotFound {
                file: name.to_string(),
            }),
        }
    }

    fn list(&self) -> Result<Vec<String>> {
        Ok(self.lock().keys().cloned().collect())
    }

    fn remove(&self, name: &str) -> Result<()> {
        self.lock().remove(name);
        Ok(())
    }

    fn rename(&self, from: &str, to: &str) -> Result<()> {
        let mut files = self.lock();
        let Some(file) = files.remove(from) else {
            return Err(StorageError::NotFound {
                file: from.to_string(),
            });
        };
        // The handle keeps its old name for error messages; the bytes move as one.
        let data = std::mem::take(&mut *file.data.write().unwrap_or_else(|p| p.into_inner()));
        files.insert(
            to.to_string(),
            Arc::new(MemoryFile {
                name: to.to_string(),
                data: RwLock::new(data),
            }),
        );
        Ok(())
    }
}

impl BlockFile for MemoryFile {
    fn name(&self) -> &str {
        &self.name
    }

    fn len(&self) -> Result<u64> {
        Ok(self.data.read().unwrap_or_else(|p| p.into_inner()).len() as u64)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let data = self.data.read().unwrap_or_else(|p| p.into_inner());
        let end = offset.checked_add(buf.len() as u64);
        match end {
            Some(end) if end <= data.len() as u64 => {
                buf.copy_from_slice(&data[offset as usize..end as usize]);
                Ok(())
            }
            _ => Err(StorageError::io(
                &self.name,
                std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!(
                        "read of {} bytes at {offset} past end {}",
                        buf.len(),
                        data.len()
                    ),
                ),
            )),
        }
    }

    fn append(&self, bytes: &[u8]) -> Result<()> {
        self.data
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(bytes);
        Ok(())
    }

    fn truncate(&self, len_bytes: u64) -> Result<()> {
        let mut data = self.data.write().unwrap_or_else(|p| p.into_inner());
        if len_bytes < data.len() as u64 {
            data.truncate(len_bytes as usize);
        }
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        Ok(())
    }
}
