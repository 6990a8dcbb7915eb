//! Leveled compaction: which tables to merge ([`leveled`]) and the resumable merge
//! itself ([`job`]).
pub mod job;
pub mod leveled;

pub use job::CompactionJob;
pub use leveled::{pick, Plan};
