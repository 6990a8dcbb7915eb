//! The RESP2 listener, so Redis clients (redis-cli, redis-benchmark, client libraries)
//! work: `parse` (bounded command parser), `reply` (encoding), `commands` (what each
//! command does; `scan` and `update` for SCAN/KEYS and the conditional writes), `conn` (one pipelined connection).
//!
//! The parser is ours rather than a crate's so every size is checked before anything is
//! allocated or buffered: a declared array or bulk length over the limits is refused at
//! its header, never preallocated.

pub mod commands;
pub mod conn;
pub mod parse;
pub mod reply;
pub mod scan;
pub mod update;
