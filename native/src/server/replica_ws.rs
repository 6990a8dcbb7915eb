//! One attached replica (`/replica`, frames in `peer/relay.rs`): `Hello { token, id,
//! secret }` first, within the handshake timeout; then this node relays the replica's
//! peer frames (`Peer { to, frame }`) and queues frames for it (`Peer { from, frame }`),
//! until either side closes. The replica's id is bound to this connection: it may not
//! be this node or a native member; a member bound to an identity attaches (here or at
//! any host: re-homing) only with its identity secret; an unbound one only at the host
//! its layout address names. A replica that is not a member yet talks to this node only.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use ringkv_core::node::PeerMessage;
use ringkv_core::protocol;
use ringkv_core::ring::{IdentityDigest, NodeId};
use tokio_tungstenite::tungstenite::error::Error as WsError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::conn::Conn;
use super::context::Context;
use super::ws::{self, Incoming};
use crate::peer::relay::{relay_address, relay_host};
use crate::wire;
use ringkv_core::protocol::wire::{ReplicaDown, ReplicaUp};

pub async fn serve(ws: WebSocketStream<Conn>, ctx: Arc<Context>) {
    let (mut sink, mut stream) = ws.split();
    let hello = tokio::time::timeout(ctx.limits.handshake_timeout, ws::next_binary(&mut stream));
    let attached = match hello.await {
        Ok(Incoming::Binary(bytes)) => match wire::decode::<ReplicaUp>(&bytes) {
            Ok(ReplicaUp::Hello { token, id, secret }) => {
                admit(&ctx, token.as_deref(), id, &secret)
            }
            Ok(_) => Err("the first message must be Hello"),
            Err(_) => Err("malformed Hello"),
        },
        Ok(Incoming::TooBig) => Err("message too big"),
        Ok(Incoming::Junk) => Err("binary messages only"),
        Ok(Incoming::Closed) => return,
        Err(_) => Err("handshake timed out"),
    };
    let (id, mut outgoing) = match attached {
        Ok(attached) => attached,
        Err(reason) => {
            ctx.metrics.inc(&ctx.metrics.handshake_failures);
            if let Ok(bytes) = wire::encode(&ReplicaDown::Refused {
                reason: reason.into(),
            }) {
                let _ = ws::send_binary(&mut sink, bytes).await;
            }
            ws::close(&mut sink, ws::POLICY, reason).await;
            return;
        }
    };
    let me = ctx.routes.me;
    let welcome = ReplicaDown::Welcome {
        host: me,
        address: relay_address(me),
        id,
    };
    let sent = match wire::encode(&welcome) {
        Ok(bytes) => ws::send_binary(&mut sink, bytes).await,
        Err(_) => false,
    };
    if sent {
        tracing::info!(replica = %id, "replica attached");
        // Anything from the replica (data or the pong its WebSocket answers our pings
        // with) shows the connection is alive.
        let heard = Arc::new(Mutex::new(Instant::now()));
        let h = heard.clone();
        let mut stream = (&mut stream).inspect(move |_| {
            *h.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        });
        let reason = pump(&ctx, id, &mut sink, &mut stream, &mut outgoing, &heard).await;
        if let Some((code, reason)) = reason {
            ws::close(&mut sink, code, reason).await;
        }
    }
    ctx.routes.relays.detach(id);
    tracing::info!(replica = %id, "replica detached");
}

type Sink =
    futures_util::stream::SplitSink<WebSocketStream<Conn>, tokio_tungstenite::tungstenite::Message>;

/// The host pings an attached replica this often...
const PING_INTERVAL: Duration = Duration::from_secs(5);
/// ...and detaches it after this long without a frame or pong from it: a half-open
/// connection (a laptop gone to sleep, a network switch) must not keep the replica's id
/// attached, since the replica cannot attach anew until it is released.
const REPLICA_SILENCE_MAX: Duration = Duration::from_secs(15);

/// Checks the token and that `id` may attach here (`None`: picks a free one); attaches it.
fn admit(
    ctx: &Context,
    token: Option<&str>,
    id: Option<NodeId>,
    secret: &[u8],
) -> Result<(NodeId, tokio::sync::mpsc::Receiver<Vec<u8>>), &'static str> {
    if !ctx.token_ok(token.map(str::as_bytes)) {
        ctx.metrics.inc(&ctx.metrics.client_auth_failures);
        return Err("invalid token");
    }
    let id = match id {
        Some(id) => id,
        None => free_id(ctx).ok_or("no randomness to pick a node id")?,
    };
    if id == ctx.routes.me {
        return Err("that node id is this node's");
    }
    if let Some((address, identity)) = ctx.book.layout_member(id) {
        let here = relay_host(&address) == Some(ctx.routes.me);
        match (relay_host(&address), identity) {
            (None, _) => return Err("that node id belongs to a native node"),
            (Some(_), Some(identity)) => {
                if IdentityDigest::of(secret) != identity {
                    ctx.metrics.inc(&ctx.metrics.client_auth_failures);
                    return Err("wrong identity secret for that node id");
                }
            }
            (Some(_), None) if !here => return Err("that node id is attached to another host"),
            (Some(_), None) => {}
        }
    } else if ctx
        .book
        .address(id)
        .is_some_and(|a| relay_host(&a).is_none())
    {
        return Err("that node id belongs to a native node");
    }
    let outgoing = ctx
        .routes
        .relays
        .attach(id)
        .ok_or("that node id is already attached (or this host is full)")?;
    Ok((id, outgoing))
}

/// Node ids the host assigns replicas that ask for one: above every id a person would
/// type, below 2^53 (exact in JavaScript numbers).
const ASSIGNED_IDS: std::ops::Range<u64> = (1 << 32)..(1 << 53);

/// A random id no member, peer or attached replica has.
fn free_id(ctx: &Context) -> Option<NodeId> {
    for _ in 0..16 {
        let mut raw = [0u8; 8];
        getrandom::fill(&mut raw).ok()?;
        let span = ASSIGNED_IDS.end - ASSIGNED_IDS.start;
        let id = NodeId(ASSIGNED_IDS.start + u64::from_le_bytes(raw) % span);
        if ctx.book.address(id).is_none() && !ctx.routes.relays.is_attached(id) {
            return Some(id);
        }
    }
    None
}

/// Moves frames both ways until the replica or the server goes away. Returns the close
/// to send, if any.
async fn pump<St>(
    ctx: &Context,
    id: NodeId,
    sink: &mut Sink,
    stream: &mut St,
    outgoing: &mut tokio::sync::mpsc::Receiver<Vec<u8>>,
    heard: &Mutex<Instant>,
) -> Option<(CloseCode, &'static str)>
where
    St: futures_util::Stream<Item = Result<Message, WsError>> + Unpin,
{
    let mut shutdown = ctx.shutdown.clone();
    let mut ping = tokio::time::interval(PING_INTERVAL);
    loop {
        tokio::select! {
            _ = ping.tick() => {
                let quiet = heard.lock().unwrap_or_else(|e| e.into_inner()).elapsed();
                if quiet > REPLICA_SILENCE_MAX {
                    return Some((ws::AGAIN, "no traffic from the replica"));
                }
                if sink.send(Message::Ping(Vec::new().into())).await.is_err() {
                    return None;
                }
            },
            incoming = ws::next_binary(stream) => match incoming {
                Incoming::Binary(bytes) => {
                    if let Err(reason) = relay_up(ctx, id, &bytes) {
                        ctx.metrics.inc(&ctx.metrics.bad_frames);
                        return Some((ws::POLICY, reason));
                    }
                }
                Incoming::TooBig => return Some((ws::TOO_BIG, "message too big")),
                Incoming::Junk => return Some((ws::POLICY, "binary messages only")),
                Incoming::Closed => return None,
            },
            frame = outgoing.recv() => match frame {
                Some(bytes) => {
                    if !ws::send_binary(sink, bytes).await {
                        return None;
                    }
                }
                None => return None,
            },
            _ = shutdown.wait() => return Some((ws::AGAIN, "shutting down")),
        }
    }
}

/// One frame from the replica: to this node's core, or on to its target.
fn relay_up(ctx: &Context, id: NodeId, bytes: &[u8]) -> Result<(), &'static str> {
    let Ok(ReplicaUp::Peer { to, frame }) = wire::decode::<ReplicaUp>(bytes) else {
        return Err("malformed frame");
    };
    // Frames passing through are checked by their variant only: decoding one can be
    // costly (a layout history), and the receiver decodes it anyway.
    if protocol::is_relay_envelope(&frame) {
        return Err("a replica cannot send relay envelopes");
    }
    let delivered = if to == ctx.routes.me {
        let messages = protocol::decode_frame(&frame).map_err(|_| "undecodable peer frame")?;
        if messages
            .iter()
            .any(|m| matches!(m, PeerMessage::Relayed { .. }))
        {
            return Err("a replica cannot send relay envelopes");
        }
        ctx.node.deliver_all(id, messages)
    } else if ctx.book.layout_member(id).is_some() {
        ctx.routes.send(id, to, frame)
    } else {
        // Not a member yet: nothing it could say concerns another node.
        false
    };
    if !delivered {
        ctx.metrics.inc(&ctx.metrics.peer_receives_dropped);
    }
    Ok(())
}
