//! One RESP connection. Commands are parsed as they arrive and run concurrently;
//! replies are written in command order (pipelining), batched into one write when
//! several are ready. At most `max_in_flight_per_connection` commands are in flight;
//! beyond that the connection stops reading (TCP backpressure). The read buffer never
//! exceeds one command's limit plus a line. A protocol error gets `-ERR Protocol error`
//! and the connection is closed after the replies before it.

use std::sync::Arc;

use futures_util::stream::FuturesOrdered;
use futures_util::{FutureExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::commands::{self, Action, Later, Session};
use super::parse::{self, ParseLimits, Parsed, LINE_BYTES_MAX};
use super::reply;
use crate::server::context::Context;
use crate::server::tls;

/// Most arguments in one command (MSET/MGET/DEL fan-out is bounded separately).
const ARGS_MAX: usize = 64 << 10;

pub const REJECT: &[u8] = b"-ERR max number of clients reached\r\n";

pub async fn serve(stream: TcpStream, ctx: Arc<Context>) {
    let Some(stream) = tls::accept(ctx.tls.as_ref(), stream, ctx.limits.handshake_timeout).await
    else {
        return;
    };
    let (mut reader, mut writer) = tokio::io::split(stream);
    let limits = ParseLimits {
        command_bytes_max: ctx.limits.frame_size_bytes_max,
        args_max: ARGS_MAX,
    };
    let buffer_max = limits.command_bytes_max + LINE_BYTES_MAX;
    let max = ctx.limits.max_in_flight_per_connection;
    let mut session = Session::default();
    let mut buf: Vec<u8> = Vec::with_capacity(16 << 10);
    let mut out: Vec<u8> = Vec::with_capacity(16 << 10);
    let mut pending: FuturesOrdered<Later> = FuturesOrdered::new();
    let mut closing = false;
    let mut shutdown = ctx.shutdown.clone();
    let idle = ctx.limits.idle_timeout;
    let mut idle_deadline = idle.map(|d| tokio::time::Instant::now() + d);

    loop {
        // Parse what is buffered, as far as the in-flight bound allows.
        let mut used = 0;
        while !closing && pending.len() < max {
            match parse::parse(&buf[used..], limits) {
                Ok(Parsed::Command(args, n)) => {
                    used += n;
                    if args.is_empty() {
                        continue;
                    }
                    let bytes = match commands::dispatch(args, &mut session, &ctx) {
                        Action::Now(bytes) => bytes,
                        Action::Later(future) => {
                            pending.push_back(future);
                            continue;
                        }
                        Action::Close(bytes) => {
                            closing = true;
                            bytes
                        }
                    };
                    if pending.is_empty() {
                        out.extend_from_slice(&bytes);
                    } else {
                        pending.push_back(Box::pin(async move { bytes }));
                    }
                }
                Ok(Parsed::Incomplete) => break,
                Err(error) => {
                    ctx.metrics.inc(&ctx.metrics.resp_protocol_errors);
                    let bytes = reply::error(&format!("ERR {error}"));
                    pending.push_back(Box::pin(async move { bytes }));
                    closing = true;
                }
            }
        }
        // Parsing stopped at the in-flight bound with commands possibly still buffered.
        let stalled = !closing && pending.len() >= max;
        buf.drain(..used);
        if !closing && buf.len() > buffer_max {
            ctx.metrics.inc(&ctx.metrics.resp_protocol_errors);
            let bytes = reply::error(&format!(
                "ERR Protocol error: command larger than {} bytes",
                limits.command_bytes_max
            ));
            pending.push_back(Box::pin(async move { bytes }));
            closing = true;
        }
        // Collect replies that are already done, then write them in one go.
        while let Some(Some(bytes)) = pending.next().now_or_never() {
            out.extend_from_slice(&bytes);
        }
        if !out.is_empty() {
            if writer.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
        if closing && pending.is_empty() {
            let _ = writer.shutdown().await;
            return;
        }
        if stalled && pending.len() < max {
            // Replies made room: parse what is buffered before waiting for the socket,
            // which may stay silent (the client waits for these replies).
            continue;
        }
        let reading = !closing && pending.len() < max;
        tokio::select! {
            Some(bytes) = pending.next(), if !pending.is_empty() => out.extend_from_slice(&bytes),
            read = reader.read_buf(&mut buf), if reading => match read {
                // The client closed its side: still answer what it sent.
                Ok(0) | Err(_) => closing = true,
                Ok(_) => idle_deadline = idle.map(|d| tokio::time::Instant::now() + d),
            },
            _ = sleep_until(idle_deadline), if reading && pending.is_empty() && idle_deadline.is_some() => {
                let _ = writer.shutdown().await;
                return;
            }
            _ = shutdown.wait(), if !closing => closing = true,
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
