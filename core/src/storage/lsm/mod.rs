//! Log-structured merge engine: commit log → memtable → SSTables, leveled compaction.
pub mod cache;
pub mod meta;
pub mod sstable;
