//! The commit log (write-ahead log): every batch is appended here, as one checksummed
//! record, before the engine applies it to the memtable. On open, [`replay`] rebuilds the
//! memtable from the logs the manifest has not yet retired.
//!
//! Byte format and the torn-tail rule: `docs/format/log-manifest.md`. In short, a record
//! is `[payload_len u32][lsn u64][payload_crc u32][header_crc u32][payload]`; only damage
//! that a crash can cause (the last write cut short at EOF, or an all-zero tail) ends replay
//! quietly, everything else is `StorageError::Corruption`.

mod batch_codec;
mod reader;
mod record;
mod source;
mod writer;

// proptest is a native-only dev-dependency.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;

pub use reader::{decode_record, replay, RecordRead, ReplayEnd};
pub use record::{PAYLOAD_SIZE_BYTES_MAX, RECORD_HEADER_SIZE_BYTES};
pub use writer::LogWriter;
