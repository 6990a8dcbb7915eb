//! Log-structured merge engine: commit log → memtable → SSTables, leveled compaction.
//! The byte formats are in docs/format.md; the write and read paths in ARCHITECTURE.md.
pub mod cache;
pub mod commit_log;
pub mod compaction;
mod engine;
mod iter;
pub mod manifest;
mod memtable;
mod merge;
pub mod meta;
mod options;
mod recovery;
pub mod sstable;
mod version;
mod write_queue;

pub use engine::LsmEngine;
pub use options::LsmOptions;
