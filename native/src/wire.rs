//! The client protocol over WebSocket (path `/client`): the frames live in ringkv-core
//! (`protocol::wire`) so the wasm package speaks the same bytes; re-exported here for
//! the server and the CLI.

pub use ringkv_core::protocol::wire::{
    decode, encode, ClientFrame, ServerFrame, WireError, CLIENT_PROTOCOL_VERSION,
};
