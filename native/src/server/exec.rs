//! Running one client request through the node, timed and counted; and the local
//! replica scans behind DBSIZE and export (done off the node thread: the engine is
//! `Sync`, and a scan must not stall the node's timers).

use std::time::Instant;

use ringkv_core::node::{ClientError, ClientReply, ClientRequest};

use super::metrics::{Metrics, Op, Outcome};
use super::node_host::NodeHandle;
use crate::error::Error;

pub async fn execute(node: &NodeHandle, metrics: &Metrics, request: ClientRequest) -> ClientReply {
    let op = Op::of(&request);
    let start = Instant::now();
    let reply = match node.request(request).await {
        Ok(reply) => reply,
        // Taken but unanswered: a write may have happened; a read had no effect.
        Err(Error::NoAnswer) if op != Op::Get => ClientReply::Error(ClientError::Indeterminate {
            reason: "this node stopped before answering".into(),
        }),
        Err(_) => ClientReply::Error(ClientError::Unavailable {
            reason: "this node is shutting down".into(),
        }),
    };
    metrics.observe(op, Outcome::of(&reply), start.elapsed());
    reply
}

pub use ringkv_core::node::local_keys::{count_local_keys, local_keys, LOCAL_KEYS_PAGE_MAX};
