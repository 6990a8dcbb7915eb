//! A stand-in for a native peer, for tests that must control exactly what one node
//! hears from another (frame order, forged or hostile frames): it speaks the real peer
//! handshake (`ringkv::peer::auth`, HMAC over the cluster secret) over the real
//! WebSocket transport, dialing a node's `/peer` endpoint or accepting its dials.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use ringkv::peer::auth::{self, PeerAuth};
use ringkv_core::node::PeerMessage;
use ringkv_core::protocol;
use ringkv_core::ring::NodeId;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::SECRET;

type Ws = WebSocketStream<TcpStream>;

async fn next_binary(ws: &mut Ws) -> Vec<u8> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Binary(bytes))) => return bytes.to_vec(),
            Some(Ok(_)) => continue,
            other => panic!("peer connection ended: {other:?}"),
        }
    }
}

/// An authenticated link from `me` to the node at `address` (its id `to`): what this
/// test sends, that node receives as from `me`.
pub struct PeerLink {
    ws: Ws,
}

impl PeerLink {
    pub async fn dial(address: &str, me: NodeId, to: NodeId, my_address: &str) -> PeerLink {
        let auth = PeerAuth::new(SECRET.as_bytes().to_vec(), me).with_address(my_address.into());
        let tcp = TcpStream::connect(address).await.expect("connect");
        let (mut ws, _) = tokio_tungstenite::client_async(format!("ws://{address}/peer"), tcp)
            .await
            .expect("websocket");
        let challenge = auth::decode(&next_binary(&mut ws).await).expect("challenge");
        let (hello, nonce) = auth.hello(&challenge, to).expect("hello");
        ws.send(Message::Binary(auth::encode(&hello).into()))
            .await
            .expect("send hello");
        let welcome = auth::decode(&next_binary(&mut ws).await).expect("welcome");
        auth.verify_welcome(&welcome, &nonce, to)
            .expect("welcome mac");
        PeerLink { ws }
    }

    /// Sends `frame` as it is (a frame of another protocol version, garbage).
    pub async fn send_raw(&mut self, frame: Vec<u8>) {
        self.ws
            .send(Message::Binary(frame.into()))
            .await
            .expect("send");
    }

    /// Whether the node closed the link within `timeout`.
    pub async fn closed_within(&mut self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return false,
                Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => return true,
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    pub async fn send(&mut self, message: &PeerMessage) {
        let frame = protocol::encode(message).expect("encodes");
        self.ws
            .send(Message::Binary(frame.into()))
            .await
            .expect("send");
    }
}

/// Accepts the dials of real nodes as `me` on `listener`; every frame they send comes
/// out of the returned channel as `(sender, message)`.
pub fn accept_as(
    listener: TcpListener,
    me: NodeId,
) -> mpsc::UnboundedReceiver<(NodeId, PeerMessage)> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let auth = PeerAuth::new(SECRET.as_bytes().to_vec(), me);
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                let (challenge, nonce) = auth.challenge().expect("challenge");
                if ws
                    .send(Message::Binary(auth::encode(&challenge).into()))
                    .await
                    .is_err()
                {
                    return;
                }
                let hello = auth::decode(&next_binary(&mut ws).await).expect("hello");
                let (peer, _, welcome) = auth.verify_hello(&hello, &nonce).expect("hello mac");
                if ws
                    .send(Message::Binary(auth::encode(&welcome).into()))
                    .await
                    .is_err()
                {
                    return;
                }
                while let Some(Ok(message)) = ws.next().await {
                    if let Message::Binary(bytes) = message {
                        // A node sends what one turn group owes a peer as one batch
                        // frame: decoding frames as single messages dropped every
                        // message that happened to share a frame (a flaky relay test).
                        for message in protocol::decode_frame(&bytes).unwrap_or_default() {
                            if tx.send((peer, message)).is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    rx
}

/// The first message out of `inbox` that `pick` maps to `Some`, within `timeout`.
pub async fn wait_for<T>(
    inbox: &mut mpsc::UnboundedReceiver<(NodeId, PeerMessage)>,
    timeout: Duration,
    mut pick: impl FnMut(NodeId, PeerMessage) -> Option<T>,
) -> Option<T> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let next = tokio::time::timeout_at(deadline, inbox.recv())
            .await
            .ok()??;
        if let Some(found) = pick(next.0, next.1) {
            return Some(found);
        }
    }
}
