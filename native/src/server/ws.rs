//! WebSocket settings and small helpers shared by the peer and client endpoints.

use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio_tungstenite::tungstenite::error::Error as WsError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;

/// tungstenite's defaults (64 MiB messages, 16 MiB frames) are far above what any
/// legitimate message needs: cap both at the frame limit plus a little framing slack.
pub fn config(frame_size_bytes_max: usize) -> WebSocketConfig {
    let limit = frame_size_bytes_max + 1024;
    WebSocketConfig::default()
        .max_message_size(Some(limit))
        .max_frame_size(Some(limit))
        .write_buffer_size(128 << 10)
        .max_write_buffer_size(limit * 2)
}

pub const NORMAL: CloseCode = CloseCode::Normal;
/// 1008: authentication failed, malformed or unexpected message.
pub const POLICY: CloseCode = CloseCode::Policy;
/// 1009: message over the size limit.
pub const TOO_BIG: CloseCode = CloseCode::Size;
/// 1013: server busy (connection limit) or shutting down.
pub const AGAIN: CloseCode = CloseCode::Again;

/// What came in: a binary message, a reason to close, or the end.
pub enum Incoming {
    Binary(Vec<u8>),
    /// Over the size limit (close with 1009).
    TooBig,
    /// Text or other junk where binary was expected (close with 1008).
    Junk,
    Closed,
}

/// The next data message; pings and pongs are answered by tungstenite and skipped.
pub async fn next_binary<St>(stream: &mut St) -> Incoming
where
    St: Stream<Item = Result<Message, WsError>> + Unpin,
{
    use tokio_tungstenite::tungstenite::error::CapacityError;
    loop {
        return match stream.next().await {
            Some(Ok(Message::Binary(bytes))) => Incoming::Binary(bytes.to_vec()),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Text(_) | Message::Frame(_))) => Incoming::Junk,
            Some(Ok(Message::Close(_))) | None => Incoming::Closed,
            Some(Err(WsError::Capacity(CapacityError::MessageTooLong { .. }))) => Incoming::TooBig,
            Some(Err(WsError::Capacity(_) | WsError::Protocol(_) | WsError::Utf8(_))) => {
                Incoming::Junk
            }
            Some(Err(_)) => Incoming::Closed,
        };
    }
}

pub async fn send_binary<Si>(sink: &mut Si, bytes: Vec<u8>) -> bool
where
    Si: Sink<Message> + Unpin,
{
    sink.send(Message::Binary(bytes.into())).await.is_ok()
}

/// Best effort: the peer may already be gone.
pub async fn close<Si>(sink: &mut Si, code: CloseCode, reason: &str)
where
    Si: Sink<Message> + Unpin,
{
    let frame = CloseFrame {
        code,
        reason: reason.chars().take(100).collect::<String>().into(),
    };
    let _ = sink.send(Message::Close(Some(frame))).await;
    let _ = sink.close().await;
}
