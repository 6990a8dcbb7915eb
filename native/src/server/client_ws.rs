//! One client WebSocket session (`/client`, protocol in `wire`): `Hello` with the token
//! first (within the handshake timeout), then requests answered out of order as they
//! complete. At most `max_in_flight_per_connection` requests are in flight; beyond
//! that the session stops reading (TCP backpressure). Idle sessions are closed; on
//! shutdown the session stops reading and closes after answering what is in flight.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;
use ringkv_core::node::backup;
use tokio_tungstenite::WebSocketStream;

use super::conn::Conn;
use super::context::Context;
use super::exec;
use super::status_json;
use super::ws::{self, Incoming};
use crate::wire::{self, ClientFrame, ServerFrame};

type Pending = Pin<Box<dyn Future<Output = ServerFrame> + Send>>;

pub async fn serve(ws: WebSocketStream<Conn>, ctx: Arc<Context>) {
    let (mut sink, mut stream) = ws.split();
    let hello = tokio::time::timeout(ctx.limits.handshake_timeout, ws::next_binary(&mut stream));
    let refusal = match hello.await {
        Ok(Incoming::Binary(bytes)) => match wire::decode::<ClientFrame>(&bytes) {
            Ok(ClientFrame::Hello { token }) => {
                if ctx.token_ok(token.as_deref().map(str::as_bytes)) {
                    None
                } else {
                    ctx.metrics.inc(&ctx.metrics.client_auth_failures);
                    Some("invalid token")
                }
            }
            Ok(_) => Some("the first message must be Hello"),
            Err(_) => Some("malformed Hello"),
        },
        Ok(Incoming::TooBig) => Some("message too big"),
        Ok(Incoming::Junk) => Some("binary messages only"),
        Ok(Incoming::Closed) => return,
        Err(_) => Some("handshake timed out"),
    };
    if let Some(reason) = refusal {
        ctx.metrics.inc(&ctx.metrics.handshake_failures);
        if let Ok(bytes) = wire::encode(&ServerFrame::Refused {
            reason: reason.into(),
        }) {
            let _ = ws::send_binary(&mut sink, bytes).await;
        }
        ws::close(&mut sink, ws::POLICY, reason).await;
        return;
    }
    let welcome = ServerFrame::Welcome {
        node: ctx.node.id().0,
    };
    let Ok(bytes) = wire::encode(&welcome) else {
        return;
    };
    if !ws::send_binary(&mut sink, bytes).await {
        return;
    }

    let mut in_flight: FuturesUnordered<Pending> = FuturesUnordered::new();
    let mut shutdown = ctx.shutdown.clone();
    let mut closing = false;
    let max = ctx.limits.max_in_flight_per_connection;
    let mut idle = ctx
        .limits
        .idle_timeout
        .map(|d| Box::pin(tokio::time::sleep(d)));
    loop {
        if closing && in_flight.is_empty() {
            ws::close(&mut sink, ws::AGAIN, "shutting down").await;
            return;
        }
        tokio::select! {
            Some(frame) = in_flight.next(), if !in_flight.is_empty() => {
                match wire::encode(&frame) {
                    Ok(bytes) => {
                        if !ws::send_binary(&mut sink, bytes).await {
                            return;
                        }
                    }
                    Err(error) => tracing::warn!(%error, "unencodable reply dropped"),
                }
            }
            incoming = ws::next_binary(&mut stream), if !closing && in_flight.len() < max => {
                if let (Some(idle), Some(d)) = (idle.as_mut(), ctx.limits.idle_timeout) {
                    idle.as_mut().reset(tokio::time::Instant::now() + d);
                }
                let reason = match incoming {
                    Incoming::Binary(bytes) => match wire::decode::<ClientFrame>(&bytes) {
                        Ok(frame) => match dispatch(frame, &ctx) {
                            Some(pending) => { in_flight.push(pending); continue; }
                            None => "unexpected Hello",
                        },
                        Err(_) => "malformed message",
                    },
                    Incoming::TooBig => {
                        ctx.metrics.inc(&ctx.metrics.bad_frames);
                        ws::close(&mut sink, ws::TOO_BIG, "message too big").await;
                        return;
                    }
                    Incoming::Junk => "binary messages only",
                    Incoming::Closed => return,
                };
                ctx.metrics.inc(&ctx.metrics.bad_frames);
                if let Ok(bytes) = wire::encode(&ServerFrame::Refused { reason: reason.into() }) {
                    let _ = ws::send_binary(&mut sink, bytes).await;
                }
                ws::close(&mut sink, ws::POLICY, reason).await;
                return;
            }
            _ = async { if let Some(idle) = idle.as_mut() { idle.await } }, if idle.is_some() && in_flight.is_empty() => {
                ws::close(&mut sink, ws::NORMAL, "idle").await;
                return;
            }
            _ = shutdown.wait(), if !closing => closing = true,
        }
    }
}

fn dispatch(frame: ClientFrame, ctx: &Arc<Context>) -> Option<Pending> {
    let ctx = ctx.clone();
    Some(match frame {
        ClientFrame::Hello { .. } => return None,
        ClientFrame::Request { id, request } => Box::pin(async move {
            let reply = exec::execute(ctx.route(&request), &ctx.metrics, request).await;
            ServerFrame::Reply { id, reply }
        }),
        ClientFrame::Status { id } => Box::pin(async move {
            let json = match ctx.node.status().await {
                Ok(status) => {
                    status_json::render(&status, &ctx.book, ctx.node.storage_failure()).to_string()
                }
                Err(error) => serde_json::json!({ "error": error.to_string() }).to_string(),
            };
            ServerFrame::Status { id, json }
        }),
        ClientFrame::LocalKeys { id, after, limit } => Box::pin(async move {
            let engine = ctx.node.engine().clone();
            let scan = tokio::task::spawn_blocking(move || {
                exec::local_keys(engine.as_ref(), after.as_deref(), limit as usize)
            })
            .await;
            match scan {
                Ok(Ok((keys, done))) => ServerFrame::Keys { id, keys, done },
                Ok(Err(error)) => ServerFrame::Refused {
                    reason: format!("scan failed: {error}"),
                },
                Err(_) => ServerFrame::Refused {
                    reason: "scan failed".into(),
                },
            }
        }),
        ClientFrame::Layout { id } => Box::pin(async move {
            match ctx.node.status().await {
                Ok(status) => ServerFrame::Layout {
                    id,
                    layout: status.layout,
                },
                Err(error) => ServerFrame::Failed {
                    id,
                    reason: error.to_string(),
                },
            }
        }),
        ClientFrame::Backup { id, cursor, limit } => Box::pin(async move {
            // After a failed sync the engine may hold writes that never became durable
            // (and were never acknowledged); a backup must not take them from here.
            if let Some(error) = ctx.node.storage_failure() {
                return ServerFrame::Failed {
                    id,
                    reason: format!("storage failed on this node ({error}); it serves no backup"),
                };
            }
            let engine = ctx.node.engine().clone();
            let scan = tokio::task::spawn_blocking(move || {
                backup::backup_page(engine.as_ref(), cursor.as_ref(), limit as usize)
            })
            .await;
            match scan {
                Ok(Ok(page)) => ServerFrame::BackupPage {
                    id,
                    entries: page.entries,
                    next: page.next,
                },
                Ok(Err(error)) => ServerFrame::Failed {
                    id,
                    reason: format!("backup scan failed: {error}"),
                },
                Err(_) => ServerFrame::Failed {
                    id,
                    reason: "backup scan failed".into(),
                },
            }
        }),
    })
}
