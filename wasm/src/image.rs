//! `ImageStore`: a `BlockStore` held in memory whose changes since the last
//! `take_changes` the host commits to an asynchronous backend (IndexedDB, a JS store)
//! in one atomic transaction per event-loop turn.
//!
//! Why this is a legal crash image (ARCHITECTURE.md, "Durability hand-off"): the engine
//! is synchronous, so between two host turns no engine call is half done; each commit
//! carries everything that changed since the previous one and backends apply a commit
//! atomically and in order, so the durable state is always the store as it was at the
//! end of some turn. `sync` is therefore a no-op here; its guarantee is supplied by the
//! host, which holds back a turn's replies until that turn's commit completed.
//!
//! Files are cut into `CHUNK_BYTES` chunks for the backend. Files are append-only apart
//! from `truncate`, so what changed in a file is always a suffix: each file tracks the
//! lowest offset not yet committed, and a commit rewrites the chunks from there to the
//! end, plus the file's size (backends drop chunks past it).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use ringkv_core::storage::{BlockFile, BlockStore, Result, StorageError};

/// Chunk size of files in the backend. Large enough that an SSTable is a few records,
/// small enough that a commit after one small put rewrites little of the log.
pub const CHUNK_BYTES: u64 = 4 * 1024;

/// What changed since the previous commit. Backends apply `removed` first, then `files`
/// (a file removed and created again in one turn is wiped, then written).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    pub removed: Vec<String>,
    pub files: Vec<FileChange>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    pub name: String,
    /// The file's length after this commit; bytes and chunks past it are dropped.
    pub size: u64,
    /// `(offset, bytes)`: chunk-aligned offsets; every chunk is `CHUNK_BYTES` long
    /// except the file's last.
    pub chunks: Vec<(u64, Vec<u8>)>,
    /// The file was truncated since the last commit: the backend may hold chunks past
    /// `size` to drop. When false the file only grew, and the backend can skip that.
    pub shrunk: bool,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.removed.is_empty() && self.files.is_empty()
    }

    pub fn bytes(&self) -> u64 {
        self.files
            .iter()
            .flat_map(|f| f.chunks.iter())
            .map(|(_, b)| b.len() as u64)
            .sum()
    }
}

#[derive(Debug, Clone)]
pub struct ImageStore {
    state: Arc<Mutex<State>>,
    /// Bytes held by every file, shared with the files for the size bound.
    total: Arc<Mutex<u64>>,
    /// Bound on the bytes held (the whole store lives in memory).
    size_bytes_max: u64,
}

#[derive(Debug, Default)]
struct State {
    files: BTreeMap<String, Arc<ImageFile>>,
    removed: BTreeSet<String>,
}

#[derive(Debug)]
pub struct ImageFile {
    name: String,
    inner: RwLock<FileData>,
    total: Arc<Mutex<u64>>,
    size_bytes_max: u64,
}

#[derive(Debug)]
struct FileData {
    bytes: Vec<u8>,
    /// Lowest offset whose bytes the backend does not have; `None`: nothing to write.
    dirty_from: Option<u64>,
    /// Truncated since the last commit (the size shrank, even if no bytes need writing).
    size_dirty: bool,
}

impl ImageStore {
    /// A store holding `files` as already durable (what the backend loaded).
    pub fn from_files(files: Vec<(String, Vec<u8>)>, size_bytes_max: u64) -> Result<Self> {
        // A JS store may list a name twice; the last entry wins, as in a Map.
        let files: BTreeMap<String, Vec<u8>> = files.into_iter().collect();
        let held: u64 = files.values().map(|b| b.len() as u64).sum();
        if held > size_bytes_max {
            return Err(too_big("store", held, size_bytes_max));
        }
        let store = ImageStore {
            state: Arc::default(),
            total: Arc::new(Mutex::new(held)),
            size_bytes_max,
        };
        {
            let mut state = lock(&store.state);
            for (name, bytes) in files {
                let file = store.file(name.clone(), bytes, false);
                state.files.insert(name, file);
            }
        }
        Ok(store)
    }

    fn file(&self, name: String, bytes: Vec<u8>, dirty: bool) -> Arc<ImageFile> {
        Arc::new(ImageFile {
            name,
            inner: RwLock::new(FileData {
                bytes,
                dirty_from: dirty.then_some(0),
                // A new file's old chunks are wiped through `removed`; only the size
                // record needs writing, which every FileChange carries.
                size_dirty: false,
            }),
            total: self.total.clone(),
            size_bytes_max: self.size_bytes_max,
        })
    }

    /// Everything changed since the previous call; resets the change tracking. The
    /// caller must commit the result, or treat the store as failed.
    pub fn take_changes(&self) -> Changes {
        let mut state = lock(&self.state);
        let removed: Vec<String> = std::mem::take(&mut state.removed).into_iter().collect();
        let mut files = Vec::new();
        for (name, file) in &state.files {
            let mut data = write(&file.inner);
            if data.dirty_from.is_none() && !data.size_dirty {
                continue;
            }
            let size = data.bytes.len() as u64;
            let mut chunks = Vec::new();
            if let Some(from) = data.dirty_from {
                let mut offset = from - from % CHUNK_BYTES;
                while offset < size {
                    let end = (offset + CHUNK_BYTES).min(size);
                    chunks.push((offset, data.bytes[offset as usize..end as usize].to_vec()));
                    offset = end;
                }
            }
            let shrunk = data.size_dirty;
            data.dirty_from = None;
            data.size_dirty = false;
            files.push(FileChange {
                name: name.clone(),
                size,
                chunks,
                shrunk,
            });
        }
        Changes { removed, files }
    }

    pub fn has_changes(&self) -> bool {
        let state = lock(&self.state);
        !state.removed.is_empty()
            || state.files.values().any(|f| {
                let d = read(&f.inner);
                d.dirty_from.is_some() || d.size_dirty
            })
    }

    pub fn size_bytes(&self) -> u64 {
        *lock(&self.total)
    }
}

impl BlockStore for ImageStore {
    fn create(&self, name: &str) -> Result<Arc<dyn BlockFile>> {
        let file = self.file(name.to_string(), Vec::new(), true);
        let mut state = lock(&self.state);
        if let Some(old) = state.files.insert(name.to_string(), file.clone()) {
            *lock(&self.total) -= read(&old.inner).bytes.len() as u64;
        }
        // Wipe whatever the backend holds under this name before the new file lands.
        state.removed.insert(name.to_string());
        Ok(file)
    }

    fn open(&self, name: &str) -> Result<Arc<dyn BlockFile>> {
        match lock(&self.state).files.get(name) {
            Some(f) => Ok(f.clone()),
            None => Err(StorageError::NotFound {
                file: name.to_string(),
            }),
        }
    }

    fn list(&self) -> Result<Vec<String>> {
        Ok(lock(&self.state).files.keys().cloned().collect())
    }

    fn remove(&self, name: &str) -> Result<()> {
        let mut state = lock(&self.state);
        if let Some(old) = state.files.remove(name) {
            *lock(&self.total) -= read(&old.inner).bytes.len() as u64;
            state.removed.insert(name.to_string());
        }
        Ok(())
    }

    fn rename(&self, from: &str, to: &str) -> Result<()> {
        let mut state = lock(&self.state);
        let Some(old) = state.files.remove(from) else {
            return Err(StorageError::NotFound {
                file: from.to_string(),
            });
        };
        // Like MemoryStore: the bytes move to a new handle; the old handle is emptied.
        let bytes = std::mem::take(&mut write(&old.inner).bytes);
        if let Some(replaced) = state.files.remove(to) {
            *lock(&self.total) -= read(&replaced.inner).bytes.len() as u64;
        }
        state
            .files
            .insert(to.to_string(), self.file(to.to_string(), bytes, true));
        // Both names are wiped in the backend, then `to` is written whole: one commit,
        // so the rename is atomic there too.
        state.removed.insert(from.to_string());
        state.removed.insert(to.to_string());
        Ok(())
    }
}

impl BlockFile for ImageFile {
    fn name(&self) -> &str {
        &self.name
    }

    fn len(&self) -> Result<u64> {
        Ok(read(&self.inner).bytes.len() as u64)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let data = read(&self.inner);
        match offset.checked_add(buf.len() as u64) {
            Some(end) if end <= data.bytes.len() as u64 => {
                buf.copy_from_slice(&data.bytes[offset as usize..end as usize]);
                Ok(())
            }
            _ => Err(StorageError::io(
                &self.name,
                std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!(
                        "read of {} bytes at {offset} past end {}",
                        buf.len(),
                        data.bytes.len()
                    ),
                ),
            )),
        }
    }

    fn append(&self, bytes: &[u8]) -> Result<()> {
        let mut total = lock(&self.total);
        let after = *total + bytes.len() as u64;
        if after > self.size_bytes_max {
            return Err(too_big(&self.name, after, self.size_bytes_max));
        }
        let mut data = write(&self.inner);
        let len = data.bytes.len() as u64;
        data.dirty_from = Some(data.dirty_from.map_or(len, |d| d.min(len)));
        data.bytes.extend_from_slice(bytes);
        *total = after;
        Ok(())
    }

    fn truncate(&self, len_bytes: u64) -> Result<()> {
        let mut data = write(&self.inner);
        let len = data.bytes.len() as u64;
        if len_bytes < len {
            data.bytes.truncate(len_bytes as usize);
            *lock(&self.total) -= len - len_bytes;
            data.size_dirty = true;
            // Dirty bytes past the new end are gone; the chunk holding the new end is
            // rewritten only if it had dirty bytes before it.
            if let Some(d) = data.dirty_from {
                if d >= len_bytes {
                    data.dirty_from = None;
                }
            }
        }
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        // Durability comes from the host's commit at the end of the turn.
        Ok(())
    }
}

fn too_big(file: &str, bytes: u64, max: u64) -> StorageError {
    StorageError::io(
        file,
        std::io::Error::other(format!(
            "store would hold {bytes} bytes, over its {max}-byte bound (storageBytesMax)"
        )),
    )
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Single-threaded in wasm; a poisoned lock elsewhere means a panic mid-update of a
    // plain value, which is still consistent.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

/// Applies `changes` to a map of whole files the way every backend must; the loaders'
/// reference and the tests' model of a backend.
pub fn apply(files: &mut BTreeMap<String, Vec<u8>>, changes: &Changes) {
    for name in &changes.removed {
        files.remove(name);
    }
    for f in &changes.files {
        let bytes = files.entry(f.name.clone()).or_default();
        // Like the IndexedDB backend, cut only when told the file shrank: a wrong
        // `shrunk` flag leaves stale bytes here, which the model test sees.
        if f.shrunk || bytes.len() < f.size as usize {
            bytes.resize(f.size as usize, 0);
        }
        for (offset, chunk) in &f.chunks {
            let at = *offset as usize;
            if let Some(dst) = bytes.get_mut(at..at.saturating_add(chunk.len())) {
                dst.copy_from_slice(chunk);
            }
        }
    }
}

#[cfg(test)]
mod tests;
