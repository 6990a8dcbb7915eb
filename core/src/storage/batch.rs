use super::error::{Result, StorageError};
use super::{BATCH_SIZE_BYTES_MAX, KEY_SIZE_BYTES_MAX, VALUE_SIZE_BYTES_MAX};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchOp {
    Put { key: Vec<u8>, value: Vec<u8> },
    Delete { key: Vec<u8> },
}

impl BatchOp {
    pub fn key(&self) -> &[u8] {
        match self {
            BatchOp::Put { key, .. } | BatchOp::Delete { key } => key,
        }
    }

    /// `None` for a delete.
    pub fn value(&self) -> Option<&[u8]> {
        match self {
            BatchOp::Put { value, .. } => Some(value),
            BatchOp::Delete { .. } => None,
        }
    }
}

/// Operations applied atomically, in order (a later op on the same key wins).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteBatch {
    ops: Vec<BatchOp>,
    size_bytes: usize,
}

impl WriteBatch {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn put(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> &mut Self {
        let (key, value) = (key.into(), value.into());
        self.size_bytes += key.len() + value.len();
        self.ops.push(BatchOp::Put { key, value });
        self
    }

    pub fn delete(&mut self, key: impl Into<Vec<u8>>) -> &mut Self {
        let key = key.into();
        self.size_bytes += key.len();
        self.ops.push(BatchOp::Delete { key });
        self
    }

    pub fn ops(&self) -> &[BatchOp] {
        &self.ops
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Bytes of keys and values.
    pub fn size_bytes(&self) -> usize {
        self.size_bytes
    }

    /// Checks the size limits; engines call this before touching anything.
    pub fn validate(&self) -> Result<()> {
        for op in &self.ops {
            check_size("key", op.key().len(), KEY_SIZE_BYTES_MAX)?;
            if let Some(value) = op.value() {
                check_size("value", value.len(), VALUE_SIZE_BYTES_MAX)?;
            }
        }
        check_size("batch", self.size_bytes, BATCH_SIZE_BYTES_MAX)
    }
}

/// `TooLarge` when `size_bytes` exceeds `limit_bytes`.
pub(crate) fn check_size(what: &'static str, size_bytes: usize, limit_bytes: usize) -> Result<()> {
    if size_bytes > limit_bytes {
        return Err(StorageError::TooLarge {
            what,
            size_bytes: size_bytes as u64,
            limit_bytes: limit_bytes as u64,
        });
    }
    Ok(())
}
