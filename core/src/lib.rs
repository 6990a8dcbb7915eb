//! ringkv-core: the portable, sans-IO heart of ringkv.
//!
//! Nothing in this crate spawns threads, reads a clock or opens a socket: hosts pass
//! time and IO in. The storage layer talks to a [`storage::BlockStore`] that the host
//! supplies (files natively, memory or browser stores in wasm).
#![deny(clippy::unwrap_used)]

// The test-only mutations (node/mutations.rs) must never reach a browser build.
#[cfg(all(feature = "mutations", target_arch = "wasm32"))]
compile_error!("the `mutations` feature is for the simulator's tests only, never for wasm32");

#[cfg(test)]
mod alloc_count;
#[cfg(test)]
#[global_allocator]
static ALLOCATOR: alloc_count::Counting = alloc_count::Counting;

pub mod antientropy;
pub mod glob;
pub mod hash;
pub mod node;
pub mod protocol;
pub mod rand;
pub mod ring;
pub mod storage;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod versioning;
