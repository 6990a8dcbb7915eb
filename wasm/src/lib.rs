//! ringkv compiled to WebAssembly: the `Replica` class of the npm package `ringkv`.
//!
//! A replica runs a real `ringkv_core::node::Node` over an `LsmEngine`. The host here
//! supplies what the sans-IO core needs from JavaScript: the clock (`Date.now()`),
//! timers (`setTimeout`, driven by `Node::poll_timeout`), durability (an in-memory image
//! store committed to IndexedDB or a JS store once per event-loop turn, with replies held
//! back until their turn's commit completed) and a transport for peers (a JS network,
//! or a WebSocket to a native node's relay).
//!
//! - `value`: the versioned binary encoding of structured JS values.
//! - `image`: the in-memory `BlockStore` whose changes are committed per turn.
//! - `backend`: where commits go (IndexedDB, a JS block-store object).
//! - `host`: the event loop around `Node` (turns, output hold, timers, maintenance).
//! - `replica`: the `#[wasm_bindgen]` API; `options`: its option objects; `request`:
//!   JS arguments to node requests (shared with `client`).
//! - `transport`: where peer frames go (none, a JS network, the relay); `ws`: one
//!   WebSocket; `client`: the `Client` class (client protocol), also used to join.
//! - `error`: error codes and their JS form.
//! - `updates`: results of conditional writes, counters and scan pages; `counter`: how
//!   a counter's decimal bytes reach JS (`scan({ match })` patterns use
//!   `ringkv_core::glob`, as RESP's `SCAN … MATCH` does).
#![deny(clippy::unwrap_used)]

pub mod counter;
pub mod error;
pub mod image;
pub mod value;

#[cfg(target_arch = "wasm32")]
pub mod backend;
#[cfg(target_arch = "wasm32")]
pub mod client;
#[cfg(target_arch = "wasm32")]
mod host;
#[cfg(target_arch = "wasm32")]
pub mod options;
#[cfg(target_arch = "wasm32")]
pub mod replica;
#[cfg(target_arch = "wasm32")]
pub mod request;
#[cfg(target_arch = "wasm32")]
mod timer;
#[cfg(target_arch = "wasm32")]
pub mod transport;
#[cfg(target_arch = "wasm32")]
mod updates;
#[cfg(target_arch = "wasm32")]
mod wait;
#[cfg(target_arch = "wasm32")]
mod ws;
