//! Structured JS values <-> bytes: a tagged binary format written in Rust over `JsValue`
//! (byte layout in `format.rs`). Values are encoded once by the host, so the core stores
//! opaque bytes and a native node or another language can decode them from the spec.

#[cfg(target_arch = "wasm32")]
mod decode;
#[cfg(target_arch = "wasm32")]
mod encode;
pub mod format;

#[cfg(target_arch = "wasm32")]
pub use decode::decode;
#[cfg(target_arch = "wasm32")]
pub use encode::encode;

/// Why a value could not be encoded or decoded. Never a panic: bad input is an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueError {
    /// The JS value has a type the format does not carry (function, symbol, class
    /// instance, typed array other than Uint8Array, cycle or nesting too deep).
    Unsupported(String),
    /// The encoding would exceed the replica's value size limit.
    TooLarge { size_bytes: u64, limit_bytes: u64 },
    /// Stored bytes that are not a valid encoding (damaged, or written by a newer
    /// format version).
    Corrupt(String),
}
