use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::{BlockFile, BlockStore};
use crate::storage::error::{Result, StorageError};

/// Files in one directory. `create`, `rename` and `remove` fsync the directory so the
/// entry itself survives power loss; `sync` is `fdatasync`.
#[derive(Debug, Clone)]
pub struct FileStore {
    dir: PathBuf,
}

#[derive(Debug)]
struct DiskFile {
    name: String,
    file: File,
    len_bytes: AtomicU64,
}

impl FileStore {
    /// Opens (creating if needed) the directory `dir`.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|e| StorageError::io(dir.display(), e))?;
        Ok(Self { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, name: &str) -> Result<PathBuf> {
        // Names come from the engines, but a path separator would escape the directory.
        if name.is_empty() || name.contains('/') || name.contains('\\') || name.starts_with('.') {
            return Err(StorageError::io(
                name,
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "invalid file name"),
            ));
        }
        Ok(self.dir.join(name))
    }

    fn sync_dir(&self) -> Result<()> {
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| StorageError::io(self.dir.display(), e))
    }

    fn handle(&self, name: &str, file: File) -> Result<Arc<dyn BlockFile>> {
        let len = file
            .metadata()
            .map_err(|e| StorageError::io(name, e))?
            .len();
        Ok(Arc::new(DiskFile {
            name: name.to_string(),
            file,
            len_bytes: AtomicU64::new(len),
        }))
    }
}

impl BlockStore for FileStore {
    fn create(&self, name: &str) -> Result<Arc<dyn BlockFile>> {
        let path = self.path(name)?;
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|e| StorageError::io(name, e))?;
        file.set_len(0).map_err(|e| StorageError::io(name, e))?;
        file.sync_all().map_err(|e| StorageError::io(name, e))?;
        self.sync_dir()?;
        self.handle(name, file)
    }

    fn open(&self, name: &str) -> Result<Arc<dyn BlockFile>> {
        let path = self.path(name)?;
        let file = OpenOptions::new().read(true).append(true).open(&path);
        match file {
            Ok(file) => self.handle(name, file),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(StorageError::NotFound {
                file: name.to_string(),
            }),
            Err(e) => Err(StorageError::io(name, e)),
        }
    }

    fn list(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        let entries =
            std::fs::read_dir(&self.dir).map_err(|e| StorageError::io(self.dir.display(), e))?;
        for entry in entries {
            let entry = entry.map_err(|e| StorageError::io(self.dir.display(), e))?;
            let is_file = entry.file_type().map(|t| t.is_file()).unwrap_or(false);
            if let (true, Some(name)) = (is_file, entry.file_name().to_str()) {
                names.push(name.to_string());
            }
        }
        Ok(names)
    }

    fn remove(&self, name: &str) -> Result<()> {
        match std::fs::remove_file(self.path(name)?) {
            Ok(()) => self.sync_dir(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StorageError::io(name, e)),
        }
    }

    fn rename(&self, from: &str, to: &str) -> Result<()> {
        std::fs::rename(self.path(from)?, self.path(to)?).map_err(|e| StorageError::io(from, e))?;
        self.sync_dir()
    }
}

impl BlockFile for DiskFile {
    fn name(&self) -> &str {
        &self.name
    }

    fn len(&self) -> Result<u64> {
        Ok(self.len_bytes.load(Ordering::Acquire))
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.file
            .read_exact_at(buf, offset)
            .map_err(|e| StorageError::io(&self.name, e))
    }

    fn append(&self, data: &[u8]) -> Result<()> {
        (&self.file)
            .write_all(data)
            .map_err(|e| StorageError::io(&self.name, e))?;
        self.len_bytes
            .fetch_add(data.len() as u64, Ordering::AcqRel);
        Ok(())
    }

    fn truncate(&self, len_bytes: u64) -> Result<()> {
        self.file
            .set_len(len_bytes)
            .map_err(|e| StorageError::io(&self.name, e))?;
        self.len_bytes.store(len_bytes, Ordering::Release);
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        self.file
            .sync_data()
            .map_err(|e| StorageError::io(&self.name, e))
    }
}
