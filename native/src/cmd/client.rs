//! A client of the `/client` WebSocket protocol (`wire`), used by the CLI and tests.

use futures_util::{SinkExt, StreamExt};
use ringkv_core::node::backup::BackupCursor;
use ringkv_core::node::{ClientReply, ClientRequest};
use ringkv_core::protocol::SyncEntry;
use ringkv_core::ring::RingLayout;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::cli::ClientArgs;
use crate::error::{Error, Result};
use crate::server::conn::Conn;
use crate::server::tls::{self, Tls};
use crate::server::ws;
use crate::wire::{self, ClientFrame, ServerFrame};

/// How to reach a node: the client token and, for TLS, the roots to trust.
#[derive(Clone, Default)]
pub struct ConnectOptions {
    pub token: Option<String>,
    pub tls: Option<Tls>,
}

impl ConnectOptions {
    pub fn from_args(args: &ClientArgs) -> Result<ConnectOptions> {
        Ok(ConnectOptions {
            token: args.token.clone(),
            tls: match &args.tls_ca {
                Some(ca) => Some(Tls::client_only(tls::client(ca)?)),
                None => None,
            },
        })
    }
}

pub struct Client {
    ws: WebSocketStream<Conn>,
    next_id: u64,
    pub node: u64,
}

impl Client {
    pub async fn connect(address: &str, options: &ConnectOptions) -> Result<Client> {
        Self::connect_to(address, None, options).await
    }

    /// Connects to member `node` at `address`: in a process of several shards, that
    /// shard serves the session (its status, key scans, backup pages); check
    /// `Client::node` for whom `address` actually reached.
    pub async fn connect_to(
        address: &str,
        node: Option<u64>,
        options: &ConnectOptions,
    ) -> Result<Client> {
        let path = match node {
            Some(id) => format!("ws://{address}/client?to={id}"),
            None => format!("ws://{address}/client"),
        };
        let tcp = TcpStream::connect(address)
            .await
            .map_err(|e| Error::Connection(format!("{address}: {e}")))?;
        let _ = tcp.set_nodelay(true);
        let stream = match &options.tls {
            Some(tls) => tls.connect(tcp, address).await.map_err(Error::Connection)?,
            None => Conn::Plain(tcp),
        };
        let token = options.token.clone();
        let (ws, _) = tokio_tungstenite::client_async_with_config(
            path,
            stream,
            Some(ws::config(ringkv_core::protocol::FRAME_SIZE_BYTES_MAX)),
        )
        .await
        .map_err(|e| Error::Connection(format!("{address}: {e}")))?;
        let mut client = Client {
            ws,
            next_id: 0,
            node: 0,
        };
        client.send(&ClientFrame::Hello { token }).await?;
        match client.next().await? {
            ServerFrame::Welcome { node } => client.node = node,
            ServerFrame::Refused { reason } => return Err(Error::Remote(reason)),
            other => return Err(Error::Remote(format!("unexpected {other:?}"))),
        }
        Ok(client)
    }

    pub async fn send(&mut self, frame: &ClientFrame) -> Result<()> {
        let bytes = wire::encode(frame).map_err(|e| Error::Connection(e.to_string()))?;
        self.ws
            .send(Message::Binary(bytes.into()))
            .await
            .map_err(|e| Error::Connection(e.to_string()))
    }

    pub async fn next(&mut self) -> Result<ServerFrame> {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Binary(bytes))) => {
                    return wire::decode(&bytes).map_err(|e| Error::Remote(e.to_string()))
                }
                Some(Ok(Message::Close(frame))) => {
                    let reason = frame.map(|f| f.reason.to_string()).unwrap_or_default();
                    return Err(Error::Connection(format!("closed by the server {reason}")));
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(Error::Connection(e.to_string())),
                None => return Err(Error::Connection("closed by the server".into())),
            }
        }
    }

    /// A fresh request id.
    pub fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// One request, waiting for its reply.
    pub async fn request(&mut self, request: ClientRequest) -> Result<ClientReply> {
        let id = self.id();
        self.send(&ClientFrame::Request { id, request }).await?;
        loop {
            match self.next().await? {
                ServerFrame::Reply { id: got, reply } if got == id => return Ok(reply),
                ServerFrame::Refused { reason } => return Err(Error::Remote(reason)),
                _ => continue,
            }
        }
    }

    pub async fn status(&mut self) -> Result<serde_json::Value> {
        let id = self.id();
        self.send(&ClientFrame::Status { id }).await?;
        loop {
            match self.next().await? {
                ServerFrame::Status { id: got, json } if got == id => {
                    return serde_json::from_str(&json).map_err(|e| Error::Remote(e.to_string()))
                }
                ServerFrame::Refused { reason } => return Err(Error::Remote(reason)),
                _ => continue,
            }
        }
    }

    pub async fn local_keys(
        &mut self,
        after: Option<Vec<u8>>,
        limit: u32,
    ) -> Result<(Vec<Vec<u8>>, bool)> {
        let id = self.id();
        self.send(&ClientFrame::LocalKeys { id, after, limit })
            .await?;
        loop {
            match self.next().await? {
                ServerFrame::Keys {
                    id: got,
                    keys,
                    done,
                } if got == id => return Ok((keys, done)),
                ServerFrame::Refused { reason } => return Err(Error::Remote(reason)),
                _ => continue,
            }
        }
    }

    /// The node's committed layout.
    pub async fn layout(&mut self) -> Result<RingLayout> {
        let id = self.id();
        self.send(&ClientFrame::Layout { id }).await?;
        loop {
            match self.next().await? {
                ServerFrame::Layout { id: got, layout } if got == id => return Ok(layout),
                ServerFrame::Failed { id: got, reason } if got == id => {
                    return Err(Error::Remote(reason))
                }
                ServerFrame::Refused { reason } => return Err(Error::Remote(reason)),
                _ => continue,
            }
        }
    }

    /// One page of the node's backup stream (`next: None`: the stream is complete).
    pub async fn backup_page(
        &mut self,
        cursor: Option<BackupCursor>,
        limit: u32,
    ) -> Result<(Vec<SyncEntry>, Option<BackupCursor>)> {
        let id = self.id();
        self.send(&ClientFrame::Backup { id, cursor, limit })
            .await?;
        loop {
            match self.next().await? {
                ServerFrame::BackupPage {
                    id: got,
                    entries,
                    next,
                } if got == id => return Ok((entries, next)),
                ServerFrame::Failed { id: got, reason } if got == id => {
                    return Err(Error::Remote(reason))
                }
                ServerFrame::Refused { reason } => return Err(Error::Remote(reason)),
                _ => continue,
            }
        }
    }
}
