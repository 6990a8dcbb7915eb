//! ringkv-tests: a deterministic cluster simulator and a linearizability checker.
//!
//! - [`checker`]: Porcupine-style per-key register checker (node-independent).
//! - [`sim`]: one seed drives a whole cluster (network, faults, clients) through a single
//!   event queue; histories go to the checker.
#![deny(clippy::unwrap_used)]

pub mod checker;
pub mod sim;
