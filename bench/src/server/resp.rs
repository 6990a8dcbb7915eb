//! A minimal RESP client for the `cluster` load generator: one TCP connection, one
//! request in flight, `SET key value` and `GET key` encoded as arrays of bulk strings,
//! replies parsed as far as those two commands need. Nothing here panics on what the
//! server sends: an error reply is an error, anything unexpected breaks the connection
//! (the caller reconnects).

use std::fmt;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Longest bulk reply accepted (a GET reads back a 100-byte value).
const MAX_BULK: usize = 1 << 20;

/// Why a request failed.
#[derive(Debug)]
pub enum RespError {
    /// The server answered with an error reply; the connection is still in step.
    Server(String),
    /// IO failed or the reply was not what the command returns: the connection is out
    /// of step and must be dropped.
    Broken(String),
}

impl fmt::Display for RespError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RespError::Server(e) => write!(f, "error reply: {e}"),
            RespError::Broken(e) => write!(f, "connection: {e}"),
        }
    }
}

impl From<std::io::Error> for RespError {
    fn from(e: std::io::Error) -> Self {
        RespError::Broken(e.to_string())
    }
}

/// One reply, as far as SET and GET need.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    Simple(String),
    Bulk(Vec<u8>),
    Nil,
}

pub struct RespConn<S = TcpStream> {
    stream: BufReader<S>,
    out: Vec<u8>,
    line: Vec<u8>,
}

impl RespConn {
    pub async fn connect(addr: &str) -> Result<Self, RespError> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self::new(stream))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> RespConn<S> {
    pub fn new(stream: S) -> Self {
        Self {
            stream: BufReader::new(stream),
            out: Vec::with_capacity(256),
            line: Vec::with_capacity(64),
        }
    }

    /// `SET key value`: `Ok` on `+OK`.
    pub async fn set(&mut self, key: &[u8], value: &[u8]) -> Result<(), RespError> {
        match self.call(&[b"SET", key, value]).await? {
            Reply::Simple(s) if s == "OK" => Ok(()),
            other => Err(RespError::Broken(format!("SET answered {other:?}"))),
        }
    }

    /// `GET key`: the value, or `None` when the key has none.
    pub async fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, RespError> {
        match self.call(&[b"GET", key]).await? {
            Reply::Bulk(v) => Ok(Some(v)),
            Reply::Nil => Ok(None),
            other => Err(RespError::Broken(format!("GET answered {other:?}"))),
        }
    }

    async fn call(&mut self, args: &[&[u8]]) -> Result<Reply, RespError> {
        encode(&mut self.out, args);
        self.stream.get_mut().write_all(&self.out).await?;
        self.read_reply().await
    }

    async fn read_reply(&mut self) -> Result<Reply, RespError> {
        self.line.clear();
        let n = self.stream.read_until(b'\n', &mut self.line).await?;
        if n == 0 {
            return Err(RespError::Broken("the server closed the connection".into()));
        }
        let line = self
            .line
            .strip_suffix(b"\r\n")
            .ok_or_else(|| RespError::Broken("reply line without CRLF".into()))?;
        let (&kind, rest) = line
            .split_first()
            .ok_or_else(|| RespError::Broken("empty reply line".into()))?;
        let text = || String::from_utf8_lossy(rest).into_owned();
        match kind {
            b'+' => Ok(Reply::Simple(text())),
            b'-' => Err(RespError::Server(text())),
            b'$' => {
                let len: i64 = text()
                    .parse()
                    .map_err(|_| RespError::Broken(format!("bad bulk length {:?}", text())))?;
                if len < 0 {
                    return Ok(Reply::Nil);
                }
                let len = usize::try_from(len).unwrap_or(usize::MAX);
                if len > MAX_BULK {
                    return Err(RespError::Broken(format!("bulk reply of {len} bytes")));
                }
                let mut body = vec![0; len + 2];
                self.stream.read_exact(&mut body).await?;
                if !body.ends_with(b"\r\n") {
                    return Err(RespError::Broken("bulk reply without CRLF".into()));
                }
                body.truncate(len);
                Ok(Reply::Bulk(body))
            }
            other => Err(RespError::Broken(format!(
                "unexpected reply type {:?}",
                char::from(other)
            ))),
        }
    }
}

/// `args` as a RESP array of bulk strings, into `out` (cleared first).
pub fn encode(out: &mut Vec<u8>, args: &[&[u8]]) {
    use std::io::Write;
    out.clear();
    // Writing to a Vec cannot fail.
    let _ = write!(out, "*{}\r\n", args.len());
    for a in args {
        let _ = write!(out, "${}\r\n", a.len());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_bulk_string_arrays() {
        let mut out = Vec::new();
        encode(&mut out, &[b"SET", b"k", b"v1"]);
        assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\nv1\r\n");
    }

    /// Sends `reply` to a fresh connection's request and returns what `f` makes of it.
    fn against<T>(
        reply: &'static [u8],
        f: impl AsyncFnOnce(&mut RespConn<tokio::io::DuplexStream>) -> T,
    ) -> T {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let (client, mut server) = tokio::io::duplex(1024);
            server.write_all(reply).await.expect("write");
            // The client reads end-of-stream after `reply`; its writes still succeed.
            server.shutdown().await.expect("shutdown");
            let mut conn = RespConn::new(client);
            let out = f(&mut conn).await;
            drop(server);
            out
        })
    }

    #[test]
    fn parses_the_replies_set_and_get_give() {
        assert!(against(b"+OK\r\n", async |c| c.set(b"k", b"v").await).is_ok());
        let got = against(b"$2\r\nv1\r\n", async |c| c.get(b"k").await);
        assert_eq!(got.ok().flatten(), Some(b"v1".to_vec()));
        let nil = against(b"$-1\r\n", async |c| c.get(b"k").await);
        assert!(matches!(nil, Ok(None)));
    }

    #[test]
    fn error_replies_and_garbage_are_errors_not_panics() {
        let err = against(b"-ERR no quorum\r\n", async |c| c.set(b"k", b"v").await);
        assert!(matches!(err, Err(RespError::Server(e)) if e == "ERR no quorum"));
        for reply in [
            &b":1\r\n"[..],
            b"$x\r\n",
            b"$99999999999\r\n",
            b"+OK\n",
            b"$3\r\nab",
            b"",
        ] {
            let got = against(reply, async |c| c.get(b"k").await);
            assert!(matches!(got, Err(RespError::Broken(_))), "{reply:?}");
        }
    }
}
