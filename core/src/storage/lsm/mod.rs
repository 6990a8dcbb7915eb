//! Log-structured merge engine: commit log → memtable → SSTables, leveled compaction.
pub mod meta;
