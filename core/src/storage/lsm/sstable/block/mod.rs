//! Data blocks: sorted entries with prefix-compressed keys and a restart array.
//!
//! Decoded layout (before framing, see `frame.rs`):
//! `entry* ‖ restart_offset: u32 LE * restart_count ‖ restart_count: u32 LE`, each entry
//! `shared: varint ‖ unshared: varint ‖ value_tag: varint ‖ key[shared..] ‖ value`, where
//! `value_tag` is 0 for a tombstone and `value.len() + 1` otherwise. Entries at restart
//! offsets store their whole key (`shared == 0`), so a lookup can binary-search the
//! restarts and then scan at most [`RESTART_INTERVAL`] entries.

mod cursor;
mod decoder;
mod encoder;

pub(crate) use cursor::{BlockCursor, SeekMode};
pub(crate) use decoder::Block;
pub(crate) use encoder::BlockEncoder;

/// Entries between restart points: a trade of lookup time against key bytes.
pub(crate) const RESTART_INTERVAL: usize = 16;
