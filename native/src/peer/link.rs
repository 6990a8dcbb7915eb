//! One outbound link: dials a peer, authenticates, and sends the frames queued for it.
//! Reconnects with exponential backoff (50 ms .. 2 s, jittered). Frames queued while
//! the link is down are dropped when it fails (they are stale by then, and the node
//! retransmits what it still needs), so a dead peer costs at most one full queue.

use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use ringkv_core::ring::NodeId;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::auth::{self, PeerAuth};
use super::book::AddressBook;
use super::{version_refusal, NODE_HEADER, PROTOCOL_HEADER};
use crate::server::conn::Conn;
use crate::server::metrics::Metrics;
use crate::server::shutdown::Shutdown;
use crate::server::tls::Tls;
use crate::server::ws::{self, Incoming};
use ringkv_core::protocol::FORMAT_VERSION;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderMap, HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::Error as WsError;

/// Frames waiting for one peer; more are dropped.
pub const LINK_QUEUE_MAX: usize = 4096;
/// Frames written before one flush.
const WRITE_BATCH_MAX: usize = 128;
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

pub struct Link {
    pub to: NodeId,
    pub book: AddressBook,
    pub auth: PeerAuth,
    pub queue: mpsc::Receiver<Vec<u8>>,
    pub metrics: Arc<Metrics>,
    pub shutdown: Shutdown,
    pub handshake_timeout: Duration,
    pub frame_size_bytes_max: usize,
    /// Dial peers over TLS when set.
    pub tls: Option<Tls>,
}

/// Why a dial failed.
enum DialError {
    /// The peer speaks another peer protocol version (its answer said which).
    Version(String),
    Other(String),
}

impl From<String> for DialError {
    fn from(reason: String) -> Self {
        DialError::Other(reason)
    }
}

type Ws = WebSocketStream<Conn>;

impl Link {
    pub async fn run(mut self) {
        let mut backoff = BACKOFF_MIN;
        // A version refusal is logged at warn once per run of refusals (the link
        // redials every 2 s); each one is counted.
        let mut version_warned = false;
        loop {
            if self.shutdown.is_triggered() {
                return;
            }
            match self.connect().await {
                Ok(ws) => {
                    tracing::info!(peer = %self.to, "peer link up");
                    backoff = BACKOFF_MIN;
                    version_warned = false;
                    let ended = self.pump(ws).await;
                    if ended {
                        return;
                    }
                    tracing::info!(peer = %self.to, "peer link down");
                }
                Err(DialError::Version(theirs)) => {
                    self.metrics.inc(&self.metrics.peer_protocol_refused);
                    let line = version_refusal(&self.to.to_string(), &theirs);
                    if version_warned {
                        tracing::debug!("{line}");
                    } else {
                        tracing::warn!("{line}");
                        version_warned = true;
                    }
                }
                Err(DialError::Other(reason)) => {
                    self.metrics.inc(&self.metrics.peer_connect_failures);
                    tracing::debug!(peer = %self.to, %reason, "peer dial failed");
                }
            }
            // Stale frames go: the node resends what it still needs.
            while self.queue.try_recv().is_ok() {
                self.metrics.inc(&self.metrics.peer_sends_dropped);
            }
            let jitter = Duration::from_millis(u64::from(jitter_byte()) % 50);
            let mut shutdown = self.shutdown.clone();
            tokio::select! {
                _ = tokio::time::sleep(backoff + jitter) => {}
                _ = shutdown.wait() => return,
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    async fn connect(&self) -> Result<Ws, DialError> {
        let address = self
            .book
            .address(self.to)
            .ok_or_else(|| format!("no address for {}", self.to))?;
        let dial = async {
            let tcp = TcpStream::connect(&address)
                .await
                .map_err(|e| format!("connect {address}: {e}"))?;
            let _ = tcp.set_nodelay(true);
            let stream = match &self.tls {
                Some(tls) => tls.connect(tcp, &address).await?,
                None => Conn::Plain(tcp),
            };
            // `to` picks the shard of a multi-shard process (`server/shards.rs`); a
            // process of one shard ignores it.
            let mut request = format!("ws://{address}/peer?to={}", self.to.0)
                .into_client_request()
                .map_err(|e| format!("websocket {address}: {e}"))?;
            let headers = request.headers_mut();
            headers.insert(PROTOCOL_HEADER, HeaderValue::from(FORMAT_VERSION));
            if let Ok(me) = HeaderValue::from_str(&self.auth.me().to_string()) {
                headers.insert(NODE_HEADER, me);
            }
            let (mut ws, response) = match tokio_tungstenite::client_async_with_config(
                request,
                stream,
                Some(ws::config(self.frame_size_bytes_max)),
            )
            .await
            {
                Ok(answer) => answer,
                Err(WsError::Http(response))
                    if response.status() == StatusCode::UPGRADE_REQUIRED =>
                {
                    return Err(DialError::Version(header_text(response.headers())));
                }
                Err(e) => return Err(format!("websocket {address}: {e}").into()),
            };
            // An acceptor that names another version but upgraded anyway (it could
            // only be a build that speaks several): trust the frames, not the header.
            let _ = response;
            let challenge = match ws::next_binary(&mut ws).await {
                Incoming::Binary(bytes) => auth::decode(&bytes).map_err(|e| e.to_string())?,
                _ => return Err("no challenge".to_string().into()),
            };
            let (hello, nonce) = self
                .auth
                .hello(&challenge, self.to)
                .map_err(|e| e.to_string())?;
            if !ws::send_binary(&mut ws, auth::encode(&hello)).await {
                return Err(DialError::Other("closed during handshake".into()));
            }
            let welcome = match ws::next_binary(&mut ws).await {
                Incoming::Binary(bytes) => auth::decode(&bytes).map_err(|e| e.to_string())?,
                _ => return Err("refused (wrong cluster secret?)".to_string().into()),
            };
            self.auth
                .verify_welcome(&welcome, &nonce, self.to)
                .map_err(|e| {
                    self.metrics.inc(&self.metrics.peer_auth_failures);
                    e.to_string()
                })?;
            Ok(ws)
        };
        tokio::time::timeout(self.handshake_timeout, dial)
            .await
            .map_err(|_| DialError::Other("handshake timed out".into()))?
    }

    /// Sends queued frames until the link fails (`false`) or the node stops (`true`).
    async fn pump(&mut self, ws: Ws) -> bool {
        let (mut sink, mut stream) = ws.split();
        let ended = self.pump_split(&mut sink, &mut stream).await;
        ws::close(&mut sink, ws::NORMAL, "bye").await;
        ended
    }

    async fn pump_split(
        &mut self,
        sink: &mut SplitSink<Ws, Message>,
        stream: &mut SplitStream<Ws>,
    ) -> bool {
        let mut shutdown = self.shutdown.clone();
        loop {
            tokio::select! {
                frame = self.queue.recv() => {
                    let Some(frame) = frame else { return true };
                    if sink.feed(Message::Binary(frame.into())).await.is_err() {
                        return false;
                    }
                    for _ in 0..WRITE_BATCH_MAX {
                        match self.queue.try_recv() {
                            Ok(frame) => {
                                if sink.feed(Message::Binary(frame.into())).await.is_err() {
                                    return false;
                                }
                            }
                            Err(_) => break,
                        }
                    }
                    if sink.flush().await.is_err() {
                        return false;
                    }
                }
                // The acceptor never sends data; this notices a close or a dead socket.
                incoming = ws::next_binary(stream) => {
                    if matches!(incoming, Incoming::Closed | Incoming::TooBig | Incoming::Junk) {
                        return false;
                    }
                }
                _ = shutdown.wait() => return true,
            }
        }
    }
}

/// The version a refusing acceptor named (its header), shortened for the log.
fn header_text(headers: &HeaderMap) -> String {
    headers
        .get(PROTOCOL_HEADER)
        .map(|v| {
            String::from_utf8_lossy(v.as_bytes())
                .chars()
                .take(32)
                .collect()
        })
        .unwrap_or_else(|| "(not named)".into())
}

fn jitter_byte() -> u8 {
    let mut byte = [0u8; 1];
    let _ = getrandom::fill(&mut byte);
    byte[0]
}
