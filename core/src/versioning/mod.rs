//! Version metadata for the two consistency modes.
//!
//! - `linearizable` (ABD quorum registers): a [`Tag`] per value, totally ordered.
//! - `eventual` (Dynamo-style, sloppy quorums, anti-entropy): [`Siblings`], a set of
//!   concurrent values with dotted version vector causality, so that concurrent writes
//!   are kept (never silently dropped by a clock comparison) and a write supersedes
//!   exactly what its writer had read.
//!
//! Design notes: `docs/ring.md` (section "Versioning").

pub mod dot;
pub mod dvv;
pub mod error;
pub mod tag;
pub mod vv;

#[cfg(test)]
mod tests;

pub use dot::Dot;
pub use dvv::Siblings;
pub use error::VersionError;
pub use tag::Tag;
pub use vv::VersionVector;
