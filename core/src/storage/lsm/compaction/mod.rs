//! Leveled compaction: which tables to merge ([`leveled`], by size; [`tombstones`], by
//! tombstone density) and the resumable merge itself ([`job`]).
pub mod job;
pub mod leveled;
#[cfg(test)]
mod tests;
pub mod tombstones;

pub use job::CompactionJob;
pub use leveled::{pick, Plan};
