//! Appending records: batches are encoded into a buffer under the engine's write lock,
//! handed to the file in one `append`, and synced by the engine outside the lock so
//! concurrent durable writers share one sync (group commit).

use std::sync::Arc;

use super::record::encode_record;
use crate::storage::{BlockFile, Lsn, Result, StorageError, WriteBatch};

/// Buffers above this are dropped after `write_out` rather than kept for reuse, so one
/// huge batch does not pin its memory for the writer's life.
const RETAINED_BUFFER_BYTES_MAX: usize = 1024 * 1024;

#[derive(Debug)]
pub struct LogWriter {
    file: Arc<dyn BlockFile>,
    buf: Vec<u8>,
    written_bytes: u64,
    /// LSN of the last record appended; replay rejects a log whose LSNs do not rise.
    last_lsn: Option<Lsn>,
    /// Set when `file.append` failed: how much of that write reached the file is
    /// unknown, so anything appended after it could follow a partial record. The writer
    /// refuses further work; the engine reopens and replays instead.
    failure: Option<String>,
}

impl LogWriter {
    /// Writes go after whatever the file already holds (after replay the engine must
    /// truncate a torn tail first, or records would follow garbage).
    pub fn new(file: Arc<dyn BlockFile>) -> Self {
        Self {
            file,
            buf: Vec::new(),
            written_bytes: 0,
            last_lsn: None,
            failure: None,
        }
    }

    pub fn file(&self) -> &Arc<dyn BlockFile> {
        &self.file
    }

    /// Encodes one record into the buffer; returns its size in bytes. `lsn` must be above
    /// every LSN appended before through this writer. Checks the batch's limits; on
    /// error nothing is buffered.
    pub fn append(&mut self, lsn: Lsn, batch: &WriteBatch) -> Result<u64> {
        self.check_not_failed()?;
        if let Some(prev) = self.last_lsn {
            if lsn <= prev {
                return Err(StorageError::Failed {
                    cause: format!("commit log append of lsn {lsn} after lsn {prev}"),
                });
            }
        }
        batch.validate()?;
        let size_bytes = encode_record(lsn, batch, &mut self.buf)?;
        self.last_lsn = Some(lsn);
        Ok(size_bytes)
    }

    /// Hands the buffered records to the file in one `append` (none when the buffer is
    /// empty). Does not sync. After an error the writer is failed for good.
    pub fn write_out(&mut self) -> Result<()> {
        self.check_not_failed()?;
        if self.buf.is_empty() {
            return Ok(());
        }
        let result = self.file.append(&self.buf);
        let len_bytes = self.buf.len() as u64;
        if self.buf.capacity() > RETAINED_BUFFER_BYTES_MAX {
            self.buf = Vec::new();
        } else {
            self.buf.clear();
        }
        match result {
            Ok(()) => {
                self.written_bytes += len_bytes;
                Ok(())
            }
            Err(e) => {
                self.failure = Some(e.to_string());
                Err(e)
            }
        }
    }

    pub fn buffered_bytes(&self) -> usize {
        self.buf.len()
    }

    /// Total bytes handed to the file by this writer.
    pub fn written_bytes(&self) -> u64 {
        self.written_bytes
    }

    fn check_not_failed(&self) -> Result<()> {
        match &self.failure {
            Some(cause) => Err(StorageError::Failed {
                cause: format!("earlier commit log write failed: {cause}"),
            }),
            None => Ok(()),
        }
    }
}
