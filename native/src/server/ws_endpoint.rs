//! The WebSocket listener (`--listen`): upgrades `/peer`, `/client` and `/replica`, refuses other
//! paths with 404 before upgrading, and bounds the whole handshake (upgrade plus the
//! first authentication exchange) by the handshake timeout.
//!
//! One listener serves every shard of the process (`shards.rs`): `/peer?to=ID` and
//! `/client?to=ID` are served by shard `ID` (a peer's handshake then names that shard;
//! a client's status, key scans and backup pages are that shard's), anything else by
//! shard 0. An unknown `ID` goes to shard 0, whose handshake refuses a peer that meant
//! another node (`AuthError::WrongNode`) and whose `Welcome` tells a client which node
//! it reached.

use std::sync::Arc;

use ringkv_core::protocol::FORMAT_VERSION;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};

use super::client_ws;
use super::context::Context;
use super::tls;
use crate::peer::{inbound, version_refusal, NODE_HEADER, PROTOCOL_HEADER};
use crate::server::ws;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Peer,
    Client,
    Replica,
}

pub const REJECT: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

// The callback type is fixed by tungstenite; its error is an HTTP response.
#[allow(clippy::result_large_err)]
pub async fn handle(stream: TcpStream, shards: Arc<[Arc<Context>]>) {
    let mut ctx = shards[0].clone();
    let mut endpoint = None;
    let mut target: Option<u64> = None;
    // (their version, the node they claim to be) of a peer refused for its version.
    let mut refused_version: Option<(String, String)> = None;
    let callback = |request: &Request, mut response: Response| {
        target = request.uri().query().and_then(target_of);
        match request.uri().path() {
            "/peer" => {
                endpoint = Some(Endpoint::Peer);
                let ours = FORMAT_VERSION.to_string();
                let header = |name: &str| {
                    request.headers().get(name).map(|v| {
                        String::from_utf8_lossy(v.as_bytes())
                            .chars()
                            .take(32)
                            .collect::<String>()
                    })
                };
                match header(PROTOCOL_HEADER) {
                    Some(theirs) if theirs != ours => {
                        let node = header(NODE_HEADER).unwrap_or_else(|| "(unnamed)".into());
                        let mut refusal = ErrorResponse::new(Some(format!(
                            "this node speaks peer protocol version {ours}, not {theirs}"
                        )));
                        *refusal.status_mut() = StatusCode::UPGRADE_REQUIRED;
                        if let Ok(value) = HeaderValue::from_str(&ours) {
                            refusal.headers_mut().insert(PROTOCOL_HEADER, value);
                        }
                        refused_version = Some((theirs, node));
                        Err(refusal)
                    }
                    _ => {
                        if let Ok(value) = HeaderValue::from_str(&ours) {
                            response.headers_mut().insert(PROTOCOL_HEADER, value);
                        }
                        Ok(response)
                    }
                }
            }
            "/client" => {
                endpoint = Some(Endpoint::Client);
                Ok(response)
            }
            "/replica" => {
                endpoint = Some(Endpoint::Replica);
                Ok(response)
            }
            _ => {
                let mut refusal = ErrorResponse::new(Some("use /peer, /client or /replica".into()));
                *refusal.status_mut() = StatusCode::NOT_FOUND;
                Err(refusal)
            }
        }
    };
    let Some(stream) = tls::accept(ctx.tls.as_ref(), stream, ctx.limits.handshake_timeout).await
    else {
        ctx.metrics.inc(&ctx.metrics.handshake_failures);
        return;
    };
    let config = ws::config(ctx.limits.frame_size_bytes_max);
    let upgrade = tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config));
    let upgraded = tokio::time::timeout(ctx.limits.handshake_timeout, upgrade).await;
    if let Some((theirs, node)) = refused_version {
        ctx.metrics.inc(&ctx.metrics.peer_protocol_refused);
        tracing::warn!("{}", version_refusal(&node, &theirs));
    }
    let mut ws = match upgraded {
        Ok(Ok(ws)) => ws,
        _ => {
            ctx.metrics.inc(&ctx.metrics.handshake_failures);
            return;
        }
    };
    if endpoint != Some(Endpoint::Replica) {
        if let Some(shard) = target.and_then(|id| shards.iter().find(|s| s.node.id().0 == id)) {
            ctx = shard.clone();
        }
    }
    match endpoint {
        Some(Endpoint::Peer) => {
            let auth = inbound::handshake(&mut ws, ctx.peer_auth.as_ref(), &ctx.metrics);
            match tokio::time::timeout(ctx.limits.handshake_timeout, auth).await {
                Ok(Ok((peer, address))) => {
                    tracing::debug!(%peer, %address, "peer connected");
                    if !address.is_empty() {
                        ctx.book.announced(peer, address);
                    }
                    inbound::serve(
                        ws,
                        peer,
                        ctx.node.clone(),
                        ctx.routes.clone(),
                        ctx.metrics.clone(),
                        ctx.shutdown.clone(),
                    )
                    .await;
                }
                Ok(Err(reason)) => {
                    ctx.metrics.inc(&ctx.metrics.handshake_failures);
                    ws::close(&mut ws, ws::POLICY, reason).await;
                }
                Err(_) => {
                    ctx.metrics.inc(&ctx.metrics.handshake_failures);
                    ws::close(&mut ws, ws::POLICY, "handshake timed out").await;
                }
            }
        }
        Some(Endpoint::Client) => client_ws::serve(ws, ctx).await,
        Some(Endpoint::Replica) => super::replica_ws::serve(ws, ctx).await,
        None => {}
    }
}

/// The `to=ID` of a query string (`ID` a plain number, as `NodeId.0`).
fn target_of(query: &str) -> Option<u64> {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("to="))
        .and_then(|id| id.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::target_of;

    #[test]
    fn target_is_read_from_the_query() {
        assert_eq!(target_of("to=1000002"), Some(1_000_002));
        assert_eq!(target_of("x=1&to=7"), Some(7));
        assert_eq!(target_of("to=n7"), None);
        assert_eq!(target_of(""), None);
    }
}
