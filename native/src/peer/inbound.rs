//! An accepted peer connection: challenge the dialer, check its MAC, then hand every
//! frame it sends to the node as `Input::Peer { from: <authenticated id> }`. A peer
//! that fails the handshake or sends a frame that does not decode is disconnected
//! (close 1008; 1009 for an oversized message); the node is never told.

use std::sync::Arc;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::StreamExt;
use ringkv_core::node::PeerMessage;
use ringkv_core::protocol::{self, ProtocolError};
use ringkv_core::ring::NodeId;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::auth::{self, PeerAuth};
use super::route::Routes;
use super::version_refusal;
use crate::server::conn::Conn;
use crate::server::metrics::Metrics;
use crate::server::node_host::{NodeHandle, PeerPayload};
use crate::server::shutdown::Shutdown;
use crate::server::ws::{self, Incoming};

type Ws = WebSocketStream<Conn>;

/// Runs the handshake; the caller bounds it with the handshake timeout.
pub async fn handshake(
    ws: &mut Ws,
    auth: Option<&PeerAuth>,
    metrics: &Metrics,
) -> Result<(NodeId, String), &'static str> {
    let Some(auth) = auth else {
        return Err("this node accepts no peers (no cluster secret)");
    };
    let (challenge, nonce) = auth.challenge().map_err(|_| "no randomness")?;
    if !ws::send_binary(ws, auth::encode(&challenge)).await {
        return Err("closed");
    }
    let hello = match ws::next_binary(ws).await {
        Incoming::Binary(bytes) => auth::decode(&bytes).map_err(|_| "malformed hello")?,
        _ => return Err("no hello"),
    };
    match auth.verify_hello(&hello, &nonce) {
        Ok((peer, address, welcome)) => {
            if !ws::send_binary(ws, auth::encode(&welcome)).await {
                return Err("closed");
            }
            Ok((peer, address))
        }
        Err(error) => {
            metrics.inc(&metrics.peer_auth_failures);
            tracing::warn!(%error, "peer failed authentication");
            Err("authentication failed")
        }
    }
}

/// Receives frames from an authenticated peer until it closes or misbehaves.
pub async fn serve(
    ws: Ws,
    from: NodeId,
    node: NodeHandle,
    routes: Routes,
    metrics: Arc<Metrics>,
    shutdown: Shutdown,
) {
    let (mut sink, mut stream): (SplitSink<Ws, Message>, SplitStream<Ws>) = ws.split();
    let mut shutdown = shutdown;
    loop {
        let incoming = tokio::select! {
            incoming = ws::next_binary(&mut stream) => incoming,
            _ = shutdown.wait() => {
                ws::close(&mut sink, ws::AGAIN, "shutting down").await;
                return;
            }
        };
        match incoming {
            Incoming::Binary(frame) => match protocol::decode_frame(&frame) {
                Ok(messages) => on_messages(&routes, &node, &metrics, from, messages),
                Err(ProtocolError::UnsupportedVersion { found, .. }) => {
                    // A build from before the upgrade header: its frames say its
                    // version (the batch bit cleared).
                    metrics.inc(&metrics.peer_protocol_refused);
                    let theirs = (found & 0x7fff).to_string();
                    tracing::warn!("{}", version_refusal(&from.to_string(), &theirs));
                    ws::close(&mut sink, ws::POLICY, "peer protocol version").await;
                    return;
                }
                Err(error) => {
                    metrics.inc(&metrics.bad_frames);
                    tracing::warn!(peer = %from, %error, "undecodable peer frame; disconnecting");
                    ws::close(&mut sink, ws::POLICY, "undecodable frame").await;
                    return;
                }
            },
            Incoming::TooBig => {
                metrics.inc(&metrics.bad_frames);
                ws::close(&mut sink, ws::TOO_BIG, "message too big").await;
                return;
            }
            Incoming::Junk => {
                metrics.inc(&metrics.bad_frames);
                ws::close(&mut sink, ws::POLICY, "binary frames only").await;
                return;
            }
            Incoming::Closed => return,
        }
    }
}

/// The messages of one frame from peer `from`: a relay envelope (honoured only as a
/// frame of its own: a batch holds the peer's own messages, so a replica cannot
/// smuggle one inside a batch its host forwards undecoded), or the peer's messages,
/// handed to the node thread together.
fn on_messages(
    routes: &Routes,
    node: &NodeHandle,
    metrics: &Metrics,
    from: NodeId,
    mut messages: Vec<PeerMessage>,
) {
    let relaxed = std::sync::atomic::Ordering::Relaxed;
    if let [PeerMessage::Relayed { .. }] = messages.as_slice() {
        if let Some(PeerMessage::Relayed {
            from: origin,
            to,
            frame,
        }) = messages.pop()
        {
            if !relayed(routes, node, from, origin, to, frame) {
                metrics.inc(&metrics.peer_receives_dropped);
            }
        }
        return;
    }
    let before = messages.len();
    messages.retain(|m| !matches!(m, PeerMessage::Relayed { .. }));
    let smuggled = (before - messages.len()) as u64;
    metrics.peer_receives_dropped.fetch_add(smuggled, relaxed);
    metrics
        .peer_messages_received
        .fetch_add(messages.len() as u64, relaxed);
    if !messages.is_empty() && !node.deliver_all(from, messages) {
        metrics.inc(&metrics.peer_receives_dropped);
    }
}

/// A relayed frame from peer `via`: `origin`'s frame for `to`, handed to the node
/// thread, which checks `via` vouches for `origin` in order with the messages before it.
fn relayed(
    routes: &Routes,
    node: &NodeHandle,
    via: NodeId,
    origin: NodeId,
    to: NodeId,
    frame: Vec<u8>,
) -> bool {
    let payload = if to == routes.me {
        match protocol::decode_frame(&frame) {
            Ok(messages)
                if !messages
                    .iter()
                    .any(|m| matches!(m, PeerMessage::Relayed { .. })) =>
            {
                PeerPayload::Messages(messages)
            }
            _ => return false,
        }
    } else if routes.relays.is_attached(to) {
        PeerPayload::Forward { to, frame }
    } else {
        return false;
    };
    node.deliver_relayed(via, origin, payload)
}
