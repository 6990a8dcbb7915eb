use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::{BlockFile, BlockStore};
use crate::rand::SplitMix64;
use crate::storage::error::{Result, StorageError};

/// What to do at a chosen operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The process dies before this operation: it and every later one fail, and the
    /// store's only future is [`FaultStore::crash_image`].
    Crash,
    /// This operation fails with EIO and changes nothing.
    Eio,
    /// This operation fails with ENOSPC and changes nothing.
    NoSpace,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultStoreStats {
    /// Mutating operations so far: create, remove, rename, append, truncate, sync.
    pub ops: u64,
    pub syncs: u64,
    pub appended_bytes: u64,
}

/// A test store that models a disk with a volatile page cache, after TigerBeetle's
/// simulated storage and RocksDB's FaultInjectionTestFS.
///
/// Appends and truncates are volatile until `sync`; `create`, `rename` and `remove` are
/// durable at once (as [`super::FileStore`] fsyncs the directory). A fault can be planned
/// at any mutating operation by its index; [`FaultStore::crash_image`] then rebuilds what
/// a disk would hold after power loss: each file's synced bytes plus an arbitrary prefix
/// of what was appended after the last sync (so the last write may be torn).
#[derive(Debug, Clone, Default)]
pub struct FaultStore {
    shared: Arc<Mutex<Shared>>,
}

#[derive(Debug, Default)]
struct Shared {
    files: HashMap<String, Arc<Mutex<FileData>>>,
    stats: FaultStoreStats,
    plan: Vec<(u64, Fault)>,
    /// The next `sync` of any file fails (`FaultStore::fail_next_sync`).
    fail_next_sync: bool,
    crashed: bool,
}

#[derive(Debug, Default, Clone)]
struct FileData {
    data: Vec<u8>,
    durable: Vec<u8>,
}

#[derive(Debug)]
struct FaultFile {
    name: String,
    data: Arc<Mutex<FileData>>,
    store: FaultStore,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl FaultStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Plans `fault` at mutating operation number `op_index` (0-based, counted across
    /// the store's whole life, see [`FaultStoreStats::ops`]).
    pub fn plan(&self, op_index: u64, fault: Fault) {
        lock(&self.shared).plan.push((op_index, fault));
    }

    /// The next `sync` of any file, whenever it comes, fails with EIO and makes nothing
    /// durable: the file's unsynced appends stay volatile (a crash image keeps any
    /// prefix of them). Models a failed fsync on a disk that keeps running, without
    /// the caller having to know which operation number that sync will be.
    pub fn fail_next_sync(&self) {
        lock(&self.shared).fail_next_sync = true;
    }

    pub fn stats(&self) -> FaultStoreStats {
        lock(&self.shared).stats
    }

    pub fn has_crashed(&self) -> bool {
        lock(&self.shared).crashed
    }

    /// The disk after power loss now. `seed` picks how much of each file's unsynced tail
    /// survived; `seed == 0` keeps exactly the synced bytes.
    pub fn crash_image(&self, seed: u64) -> FaultStore {
        let shared = lock(&self.shared);
        let mut rng = SplitMix64::new(seed);
        let mut names: Vec<&String> = shared.files.keys().collect();
        names.sort();
        let mut files = HashMap::new();
        for name in names {
            let file = lock(&shared.files[name]);
            let mut image = file.durable.clone();
            // Only a pure append since the last sync can leave a torn tail; after a
            // truncate the page cache's state is modelled as entirely lost.
            if seed != 0 && file.data.starts_with(&file.durable) {
                let tail = &file.data[file.durable.len()..];
                let kept = rng.below(tail.len() as u64 + 1) as usize;
                image.extend_from_slice(&tail[..kept]);
            }
            files.insert(
                name.clone(),
                Arc::new(Mutex::new(FileData {
                    data: image.clone(),
                    durable: image,
                })),
            );
        }
        FaultStore {
            shared: Arc::new(Mutex::new(Shared {
                files,
                ..Shared::default()
            })),
        }
    }

    /// Counts one mutating operation and applies any fault planned for it.
    fn begin_op(&self, name: &str) -> Result<()> {
        let mut shared = lock(&self.shared);
        if shared.crashed {
            return Err(crashed(name));
        }
        let index = shared.stats.ops;
        shared.stats.ops += 1;
        let fault = shared
            .plan
            .iter()
            .find(|(at, _)| *at == index)
            .map(|(_, f)| *f);
        match fault {
            None => Ok(()),
            Some(Fault::Crash) => {
                shared.crashed = true;
                Err(crashed(name))
            }
            Some(Fault::Eio) => Err(StorageError::io(
                name,
                std::io::Error::other("injected EIO"),
            )),
            Some(Fault::NoSpace) => Err(StorageError::io(
                name,
                std::io::Error::new(std::io::ErrorKind::StorageFull, "injected ENOSPC"),
            )),
        }
    }
}

fn crashed(name: &str) -> StorageError {
    StorageError::io(name, std::io::Error::other("simulated crash"))
}

impl BlockStore for FaultStore {
    fn create(&self, name: &str) -> Result<Arc<dyn BlockFile>> {
        self.begin_op(name)?;
        let data = Arc::new(Mutex::new(FileData::default()));
        lock(&self.shared)
            .files
            .insert(name.to_string(), data.clone());
        Ok(Arc::new(FaultFile {
            name: name.to_string(),
            data,
            store: self.clone(),
        }))
    }

    fn open(&self, name: &str) -> Result<Arc<dyn BlockFile>> {
        let shared = lock(&self.shared);
        if shared.crashed {
            return Err(crashed(name));
        }
        match shared.files.get(name) {
            Some(data) => Ok(Arc::new(FaultFile {
                name: name.to_string(),
                data: data.clone(),
                store: self.clone(),
            })),
            None => Err(StorageError::NotFound {
                file: name.to_string(),
            }),
        }
    }

    fn list(&self) -> Result<Vec<String>> {
        let shared = lock(&self.shared);
        if shared.crashed {
            return Err(crashed("<list>"));
        }
        Ok(shared.files.keys().cloned().collect())
    }

    fn remove(&self, name: &str) -> Result<()> {
        self.begin_op(name)?;
        lock(&self.shared).files.remove(name);
        Ok(())
    }

    fn rename(&self, from: &str, to: &str) -> Result<()> {
        self.begin_op(from)?;
        let mut shared = lock(&self.shared);
        let Some(data) = shared.files.remove(from) else {
            return Err(StorageError::NotFound {
                file: from.to_string(),
            });
        };
        shared.files.insert(to.to_string(), data);
        Ok(())
    }
}

impl BlockFile for FaultFile {
    fn name(&self) -> &str {
        &self.name
    }

    fn len(&self) -> Result<u64> {
        Ok(lock(&self.data).data.len() as u64)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        if self.store.has_crashed() {
            return Err(crashed(&self.name));
        }
        let file = lock(&self.data);
        let end = offset.checked_add(buf.len() as u64);
        match end {
            Some(end) if end <= file.data.len() as u64 => {
                buf.copy_from_slice(&file.data[offset as usize..end as usize]);
                Ok(())
            }
            _ => Err(StorageError::io(
                &self.name,
                std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "read past end"),
            )),
        }
    }

    fn append(&self, bytes: &[u8]) -> Result<()> {
        self.store.begin_op(&self.name)?;
        lock(&self.data).data.extend_from_slice(bytes);
        lock(&self.store.shared).stats.appended_bytes += bytes.len() as u64;
        Ok(())
    }

    fn truncate(&self, len_bytes: u64) -> Result<()> {
        self.store.begin_op(&self.name)?;
        let mut file = lock(&self.data);
        if len_bytes < file.data.len() as u64 {
            file.data.truncate(len_bytes as usize);
        }
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        self.store.begin_op(&self.name)?;
        if std::mem::take(&mut lock(&self.store.shared).fail_next_sync) {
            return Err(StorageError::io(
                &self.name,
                std::io::Error::other("injected EIO on sync"),
            ));
        }
        {
            let mut file = lock(&self.data);
            file.durable = file.data.clone();
        }
        // Lock order is store, then file (see `crash_image`): never hold a file here.
        lock(&self.store.shared).stats.syncs += 1;
        Ok(())
    }
}
