//! The WebSocket listener (`--listen`): upgrades `/peer`, `/client` and `/replica`, refuses other
//! paths with 404 before upgrading, and bounds the whole handshake (upgrade plus the
//! first authentication exchange) by the handshake timeout.

use std::sync::Arc;

use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;

use super::client_ws;
use super::context::Context;
use super::tls;
use crate::peer::inbound;
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
pub async fn handle(stream: TcpStream, ctx: Arc<Context>) {
    let mut endpoint = None;
    let callback = |request: &Request, response: Response| match request.uri().path() {
        "/peer" => {
            endpoint = Some(Endpoint::Peer);
            Ok(response)
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
    };
    let Some(stream) = tls::accept(ctx.tls.as_ref(), stream, ctx.limits.handshake_timeout).await
    else {
        ctx.metrics.inc(&ctx.metrics.handshake_failures);
        return;
    };
    let config = ws::config(ctx.limits.frame_size_bytes_max);
    let upgrade = tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config));
    let mut ws = match tokio::time::timeout(ctx.limits.handshake_timeout, upgrade).await {
        Ok(Ok(ws)) => ws,
        _ => {
            ctx.metrics.inc(&ctx.metrics.handshake_failures);
            return;
        }
    };
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
