//! Log-structured merge engine: commit log → memtable → SSTables, leveled compaction.
pub mod commit_log;
pub mod manifest;
pub mod meta;
