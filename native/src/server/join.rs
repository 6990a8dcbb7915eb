//! Joining a cluster through seeds (`--seed`), over the client protocol: a node started
//! without a member list waits in the `Joining` role; this task asks each seed in turn
//! to add it (`AdminRequest::Join` with this node's spec) until one accepts or the node
//! has become a member. Membership changes are one at a time cluster-wide, so nodes
//! started together are refused (`Unavailable`) while another joins, and retry.

use std::time::Duration;

use ringkv_core::node::{ClientReply, ClientRequest, Role};
use ringkv_core::protocol::AdminRequest;
use ringkv_core::ring::{NodeId, NodeSpec};

use super::node_host::NodeHandle;
use super::seeds::Seeds;
use super::shutdown::Shutdown;
use crate::cmd::client::{Client, ConnectOptions};
use crate::peer::book::AddressBook;

const RETRY_MIN: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// Whether a seed answers as a member of a cluster. The first seed asks before
/// starting a new cluster, so that a first seed whose data directory was lost joins
/// the existing cluster instead of founding a second one.
pub async fn any_seed_is_member(
    seeds: &[String],
    options: &ConnectOptions,
    limit: Duration,
) -> bool {
    for seed in seeds {
        let probe = async {
            let mut client = Client::connect(seed, options).await.ok()?;
            client.status().await.ok()
        };
        if let Ok(Some(status)) = tokio::time::timeout(limit, probe).await {
            if status["role"] == "member" {
                tracing::info!(%seed, "a seed is already in a cluster: joining it");
                return true;
            }
        }
    }
    false
}

pub async fn join(
    node: NodeHandle,
    spec: NodeSpec,
    seeds: Seeds,
    options: ConnectOptions,
    book: AddressBook,
    mut shutdown: Shutdown,
    request_limit: Duration,
) {
    let mut backoff = RETRY_MIN;
    loop {
        match node.status().await {
            Ok(status) if status.membership.role != Role::Joining => {
                tracing::info!(epoch = status.membership.epoch, "joined the cluster");
                return;
            }
            Ok(_) => {}
            Err(_) => return,
        }
        // Resolved again each round: DNS seeds come and go with their pods.
        for seed in &seeds.current().await {
            let attempt = ask(seed, &spec, &options, &book);
            match tokio::time::timeout(request_limit, attempt).await {
                Ok(Ok(())) => {
                    tracing::info!(%seed, "join accepted; waiting for the layout");
                    backoff = RETRY_MIN;
                    break;
                }
                Ok(Err(reason)) => tracing::debug!(%seed, %reason, "join not accepted yet"),
                Err(_) => tracing::debug!(%seed, "join request timed out"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.wait() => return,
        }
        backoff = (backoff * 2).min(RETRY_MAX);
    }
}

/// Asks this node (a member) to change its own spec in the layout (`Join` with the new
/// zone or capacity, `Rehome` with the identity secret for a new address), retrying
/// while another change is in progress.
pub async fn announce(node: NodeHandle, request: AdminRequest, mut shutdown: Shutdown) {
    let mut backoff = RETRY_MIN;
    loop {
        let request = ClientRequest::Admin(request.clone());
        match node.request(request).await {
            Ok(ClientReply::Done) => {
                tracing::info!("the cluster has this node's new spec");
                return;
            }
            Ok(reply) => tracing::debug!(?reply, "spec change not accepted yet"),
            Err(_) => return,
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.wait() => return,
        }
        backoff = (backoff * 2).min(RETRY_MAX);
    }
}

async fn ask(
    seed: &str,
    spec: &NodeSpec,
    options: &ConnectOptions,
    book: &AddressBook,
) -> Result<(), String> {
    let mut client = Client::connect(seed, options)
        .await
        .map_err(|e| e.to_string())?;
    // Until the layout arrives, the seed is the one peer this node can address.
    book.hint(NodeId(client.node), seed.to_string());
    let reply = client
        .request(ClientRequest::Admin(AdminRequest::Join(spec.clone())))
        .await
        .map_err(|e| e.to_string())?;
    match reply {
        ClientReply::Done => Ok(()),
        ClientReply::Error(error) => Err(error.to_string()),
        other => Err(format!("unexpected {other:?}")),
    }
}
