//! The HTTP listener: `GET /metrics` (Prometheus text), `/health` (503 naming the
//! storage error once storage failed), `/health/live` and `/health/ready` (JSON, for
//! orchestrator probes: `health.rs`), `/status` (JSON).
//! Deliberately tiny HTTP/1.1: one request per connection, head at most 8 KiB, read
//! within the handshake timeout, then `Connection: close`. Not for request bodies.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::conn::Conn;
use super::tls;

use super::context::Context;
use super::{health, status_json};

const HEAD_BYTES_MAX: usize = 8 << 10;

/// How long the probes wait for the node thread's status: within the probe's own
/// timeout (deploy/kubernetes sets 5 s), and a node thread that cannot produce its
/// status in this long is wedged, not busy.
const LIVE_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

pub const REJECT: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

pub async fn serve(stream: TcpStream, ctx: Arc<Context>) {
    let Some(mut stream) =
        tls::accept(ctx.tls.as_ref(), stream, ctx.limits.handshake_timeout).await
    else {
        return;
    };
    let head = tokio::time::timeout(ctx.limits.handshake_timeout, read_head(&mut stream)).await;
    let response = match head {
        Ok(Some(head)) => respond(&head, &ctx).await,
        Ok(None) => plain(400, "Bad Request", "text/plain", "bad request\n".into()),
        Err(_) => return,
    };
    let _ = stream.write_all(&response).await;
    let _ = stream.shutdown().await;
}

async fn read_head(stream: &mut Conn) -> Option<Vec<u8>> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        head.extend_from_slice(&chunk[..n]);
        if head.windows(4).any(|w| w == b"\r\n\r\n") {
            return Some(head);
        }
        if head.len() > HEAD_BYTES_MAX {
            return None;
        }
    }
}

async fn respond(head: &[u8], ctx: &Context) -> Vec<u8> {
    let first = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let mut parts = first.split(|&b| b == b' ');
    let method = parts.next().unwrap_or_default();
    let path = parts.next().unwrap_or_default();
    if method != b"GET" && method != b"HEAD" {
        return plain(405, "Method Not Allowed", "text/plain", "GET only\n".into());
    }
    let path = path.split(|&b| b == b'?').next().unwrap_or_default();
    match path {
        b"/health" => {
            let answers = ctx.node.status().await.is_ok();
            match ctx.shards.storage_failure() {
                Some(error) => plain(
                    503,
                    "Service Unavailable",
                    "text/plain",
                    format!(
                        "storage failed: {error}\nthis node answers nothing until restarted \
                         (fail-stop); a restart recovers from what is durable\n"
                    ),
                ),
                None if answers && !ctx.shutdown.is_triggered() => {
                    plain(200, "OK", "text/plain", "ok\n".into())
                }
                None => plain(
                    503,
                    "Service Unavailable",
                    "text/plain",
                    "shutting down\n".into(),
                ),
            }
        }
        b"/health/live" => match tokio::time::timeout(LIVE_WAIT, ctx.node.status()).await {
            Ok(Ok(status)) => json(
                200,
                "OK",
                serde_json::json!({ "status": "live", "node": status.id.to_string() }),
            ),
            Ok(Err(_)) => json(
                503,
                "Service Unavailable",
                serde_json::json!({ "status": "not live", "reason": "the node has stopped" }),
            ),
            Err(_) => json(
                503,
                "Service Unavailable",
                serde_json::json!({
                    "status": "not live",
                    "reason": format!(
                        "the node thread did not answer within {} s",
                        LIVE_WAIT.as_secs()
                    ),
                }),
            ),
        },
        b"/health/ready" => match tokio::time::timeout(LIVE_WAIT, ctx.node.status()).await {
            Ok(Ok(status)) => {
                let checks = health::readiness(
                    &status,
                    ctx.shards.storage_failure().as_deref(),
                    ctx.shutdown.is_triggered(),
                );
                let body = health::render_readiness(&status, &checks);
                if body["ready"] == true {
                    json(200, "OK", body)
                } else {
                    json(503, "Service Unavailable", body)
                }
            }
            _ => json(
                503,
                "Service Unavailable",
                serde_json::json!({
                    "status": "not ready",
                    "ready": false,
                    "failing": ["serving"],
                    "checks": { "serving": { "ok": false, "detail": "the node thread does not answer" } },
                }),
            ),
        },
        b"/status" => match ctx.node.status().await {
            Ok(status) => {
                let json = status_json::render(
                    &status,
                    &ctx.book,
                    ctx.shards.storage_failure().as_deref(),
                );
                plain(200, "OK", "application/json", format!("{json:#}\n"))
            }
            Err(_) => plain(
                503,
                "Service Unavailable",
                "text/plain",
                "shutting down\n".into(),
            ),
        },
        b"/metrics" => match ctx.node.status().await {
            Ok(status) => {
                let engine = ctx.node.engine().stats();
                plain(
                    200,
                    "OK",
                    "text/plain; version=0.0.4",
                    ctx.metrics
                        .render(&status, &engine, ctx.shards.storage_failure().is_some()),
                )
            }
            Err(_) => plain(
                503,
                "Service Unavailable",
                "text/plain",
                "shutting down\n".into(),
            ),
        },
        _ => plain(
            404,
            "Not Found",
            "text/plain",
            "try /metrics, /health, /health/live, /health/ready or /status\n".into(),
        ),
    }
}

fn json(code: u16, reason: &str, body: serde_json::Value) -> Vec<u8> {
    plain(code, reason, "application/json", format!("{body}\n"))
}

fn plain(code: u16, reason: &str, content_type: &str, body: String) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}
