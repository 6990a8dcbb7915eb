use std::fmt;

/// Every failure the storage layer can report. Bad input and damaged files are errors,
/// never panics and never silent loss.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("I/O error on {file}: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("out of space writing {file}")]
    NoSpace { file: String },
    #[error("not found: {file}")]
    NotFound { file: String },
    #[error("corruption in {file} at offset {offset}: {reason}")]
    Corruption {
        file: String,
        offset: u64,
        reason: String,
    },
    #[error("{file} has format version {found}; this build reads version {supported}")]
    UnsupportedVersion {
        file: String,
        found: u32,
        supported: u32,
    },
    #[error("{what} is {size_bytes} bytes; the limit is {limit_bytes}")]
    TooLarge {
        what: &'static str,
        size_bytes: u64,
        limit_bytes: u64,
    },
    /// A previous write or sync failed; the in-memory state can no longer be trusted to
    /// match the store (fsync errors are not retryable), so the engine refuses all work
    /// until it is reopened and recovers from what is durable.
    #[error("engine stopped after an earlier failure ({cause}); reopen it to recover")]
    Failed { cause: String },
    #[error("engine is closed")]
    Closed,
    /// Options that cannot work, or that do not fit the database on the store.
    #[error("invalid engine options: {0}")]
    InvalidOptions(String),
    #[error("redb: {0}")]
    Redb(String),
}

impl StorageError {
    pub fn io(file: impl fmt::Display, source: std::io::Error) -> Self {
        if source.kind() == std::io::ErrorKind::StorageFull {
            return StorageError::NoSpace {
                file: file.to_string(),
            };
        }
        StorageError::Io {
            file: file.to_string(),
            source,
        }
    }

    pub fn corruption(file: impl fmt::Display, offset: u64, reason: impl fmt::Display) -> Self {
        StorageError::Corruption {
            file: file.to_string(),
            offset,
            reason: reason.to_string(),
        }
    }

    pub fn is_corruption(&self) -> bool {
        matches!(self, StorageError::Corruption { .. })
    }
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;
