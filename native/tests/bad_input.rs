//! Bad input on every listener of a real node: garbage bytes, oversized keys, values,
//! commands and WebSocket messages, unauthenticated clients and peers, connection
//! floods. Each gets an error reply or a close, and the node keeps serving everyone.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{http_get, Cluster, NodeProc, Resp, Value, SECRET};
use futures_util::{SinkExt, StreamExt};
use ringkv::peer::auth::{self, PeerAuth};
use ringkv::wire::{self, ClientFrame, ServerFrame};
use ringkv_core::ring::NodeId;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

const TOKEN: &str = "client-token";

fn node() -> Cluster {
    Cluster::start(
        1,
        &[
            "--auth-token",
            TOKEN,
            "--max-connections",
            "16",
            "--handshake-timeout-ms",
            "300",
        ],
    )
}

fn authed(node: &NodeProc) -> Resp {
    let mut c = node.resp();
    assert_eq!(c.call(&["AUTH", TOKEN]), Value::ok());
    c
}

/// The node still answers a fresh client and its health check.
fn still_serving(node: &mut NodeProc) {
    assert!(node.alive(), "the node process died; log:\n{}", node.log());
    let mut c = authed(node);
    assert_eq!(c.call(&["SET", "alive", "yes"]), Value::ok());
    assert_eq!(c.call(&["GET", "alive"]), Value::bulk("yes"));
    let health = http_get(&node.http, "/health").expect("health");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
}

#[test]
fn resp_garbage_and_oversized_input() {
    let mut cluster = node();
    let node = &mut cluster.nodes[0];
    for garbage in [
        &b"*abc\r\n"[..],
        b"*2\r\n$3\r\nGET\r\n:5\r\n",
        b"*1\r\n$3\r\nGETX\r\n",
        b"*1\r\n$99999999999\r\n",
        b"*99999999999\r\n",
    ] {
        let mut c = node.resp();
        c.send_raw(garbage).expect("send");
        match c.read() {
            Some(Value::Error(e)) => assert!(e.starts_with("ERR Protocol error"), "{e}"),
            other => panic!("{garbage:?}: {other:?}"),
        }
        assert_eq!(
            c.read(),
            None,
            "{garbage:?}: connection closed after a protocol error"
        );
    }
    // Binary noise with no line end: refused once it passes the line limit.
    let mut c = node.resp();
    let noise: Vec<u8> = (0..100_000u32)
        .map(|i| (i * 7 % 251) as u8 | 0x80)
        .collect();
    let _ = c.send_raw(&noise);
    assert!(matches!(c.read(), Some(Value::Error(_)) | None));

    let mut c = authed(node);
    let big_key = "k".repeat(9 << 10);
    assert_eq!(
        c.call(&["SET", &big_key, "v"]).error_prefix(),
        Some("TOOLARGE")
    );
    assert_eq!(c.call(&["GET", &big_key]).error_prefix(), Some("TOOLARGE"));
    let big_value = "v".repeat(1_500_000);
    assert_eq!(
        c.call(&["SET", "k", &big_value]).error_prefix(),
        Some("TOOLARGE")
    );
    let ok_value = "v".repeat(1 << 20);
    assert_eq!(
        c.call(&["SET", "k", &ok_value]),
        Value::ok(),
        "1 MiB is allowed"
    );
    assert_eq!(c.call(&["GET", "k"]), Value::bulk(&ok_value));
    // Over the 2 MiB command limit: refused at the bulk header, connection closed.
    let huge = "v".repeat(3 << 20);
    let _ = c.send_raw(&common::encode(&[b"SET", b"k", huge.as_bytes()]));
    match c.read() {
        Some(Value::Error(e)) => assert!(e.contains("Protocol error"), "{e}"),
        other => panic!("{other:?}"),
    }
    still_serving(node);
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

async fn ws(address: &str, path: &str) -> Ws {
    let tcp = tokio::net::TcpStream::connect(address).await.expect("tcp");
    let (ws, _) = tokio_tungstenite::client_async(format!("ws://{address}{path}"), tcp)
        .await
        .expect("upgrade");
    ws
}

/// Reads until the server closes; returns its close code (and any binary messages).
async fn until_close(ws: &mut Ws) -> (Option<CloseCode>, Vec<Vec<u8>>) {
    let mut got = Vec::new();
    loop {
        match ws.next().await {
            Some(Ok(Message::Close(frame))) => return (frame.map(|f| f.code), got),
            Some(Ok(Message::Binary(b))) => got.push(b.to_vec()),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return (None, got),
        }
    }
}

fn hello(token: &str) -> Message {
    let frame = ClientFrame::Hello {
        token: Some(token.into()),
    };
    Message::Binary(wire::encode(&frame).expect("encode").into())
}

#[test]
fn websocket_clients_with_bad_input_are_closed() {
    let mut cluster = node();
    let address = cluster.nodes[0].ws.clone();
    runtime().block_on(async {
        // Wrong token.
        let mut c = ws(&address, "/client").await;
        c.send(hello("wrong")).await.expect("send");
        let (code, frames) = until_close(&mut c).await;
        assert_eq!(code, Some(CloseCode::Policy));
        assert!(matches!(
            wire::decode::<ServerFrame>(&frames[0]),
            Ok(ServerFrame::Refused { .. })
        ));
        // Garbage instead of Hello; text instead of binary.
        for message in [
            Message::Binary(vec![1, 250, 250, 250].into()),
            Message::Binary(vec![].into()),
            Message::Text("hello".into()),
        ] {
            let mut c = ws(&address, "/client").await;
            c.send(message).await.expect("send");
            assert_eq!(until_close(&mut c).await.0, Some(CloseCode::Policy));
        }
        // Silence: closed after the handshake timeout.
        let mut c = ws(&address, "/client").await;
        assert!(matches!(
            until_close(&mut c).await.0,
            Some(CloseCode::Policy) | None
        ));
        // Authenticated, then garbage, then an oversized message.
        let mut c = ws(&address, "/client").await;
        c.send(hello(TOKEN)).await.expect("send");
        let first = c.next().await.expect("welcome").expect("welcome");
        assert!(matches!(
            wire::decode::<ServerFrame>(&first.into_data()),
            Ok(ServerFrame::Welcome { .. })
        ));
        c.send(Message::Binary(
            vec![1, 0xff, 0xff, 0xff, 0xff, 0xff].into(),
        ))
        .await
        .expect("send");
        assert_eq!(until_close(&mut c).await.0, Some(CloseCode::Policy));
        let mut c = ws(&address, "/client").await;
        c.send(hello(TOKEN)).await.expect("send");
        let _ = c.next().await;
        let _ = c.send(Message::Binary(vec![1u8; 3 << 20].into())).await;
        assert!(matches!(
            until_close(&mut c).await.0,
            Some(CloseCode::Size) | None
        ));
        // Unknown path: refused before the upgrade.
        let tcp = tokio::net::TcpStream::connect(&address).await.expect("tcp");
        let refused = tokio_tungstenite::client_async(format!("ws://{address}/nope"), tcp).await;
        assert!(refused.is_err());
    });
    still_serving(&mut cluster.nodes[0]);
}

#[test]
fn peers_without_the_secret_are_refused() {
    let mut cluster = node();
    let address = cluster.nodes[0].ws.clone();
    runtime().block_on(async {
        // A peer with the wrong secret never gets a Welcome.
        let impostor = PeerAuth::new(b"not-the-cluster-secret".to_vec(), NodeId(2));
        let mut c = ws(&address, "/peer").await;
        let challenge = c.next().await.expect("challenge").expect("challenge");
        let challenge = auth::decode(&challenge.into_data()).expect("decode");
        let (hello, _) = impostor.hello(&challenge, NodeId(1)).expect("hello");
        c.send(Message::Binary(auth::encode(&hello).into()))
            .await
            .expect("send");
        let (code, frames) = until_close(&mut c).await;
        assert_eq!(code, Some(CloseCode::Policy));
        assert!(frames.is_empty(), "no welcome for an impostor");
        // Garbage in place of the hello.
        let mut c = ws(&address, "/peer").await;
        let _ = c.next().await;
        c.send(Message::Binary(vec![7; 100].into()))
            .await
            .expect("send");
        assert_eq!(until_close(&mut c).await.0, Some(CloseCode::Policy));
        // A genuine peer that then sends an undecodable frame is disconnected.
        let peer = PeerAuth::new(SECRET.as_bytes().to_vec(), NodeId(2));
        let mut c = ws(&address, "/peer").await;
        let challenge = c.next().await.expect("challenge").expect("challenge");
        let challenge = auth::decode(&challenge.into_data()).expect("decode");
        let (hello, nonce) = peer.hello(&challenge, NodeId(1)).expect("hello");
        c.send(Message::Binary(auth::encode(&hello).into()))
            .await
            .expect("send");
        let welcome = c.next().await.expect("welcome").expect("welcome");
        let welcome = auth::decode(&welcome.into_data()).expect("decode");
        peer.verify_welcome(&welcome, &nonce, NodeId(1))
            .expect("the node proves it holds the secret");
        c.send(Message::Binary(vec![0xde, 0xad, 0xbe, 0xef].into()))
            .await
            .expect("send");
        assert_eq!(until_close(&mut c).await.0, Some(CloseCode::Policy));
    });
    let metrics = http_get(&cluster.nodes[0].http, "/metrics").expect("metrics");
    assert!(
        metrics.contains("ringkv_peer_auth_failures_total 1"),
        "{metrics}"
    );
    still_serving(&mut cluster.nodes[0]);
}

#[test]
fn http_garbage_and_connection_floods() {
    let mut cluster = node();
    let node = &mut cluster.nodes[0];
    let response = {
        let mut s = TcpStream::connect(&node.http).expect("connect");
        s.write_all(b"\x00\x01garbage\r\n\r\n").expect("send");
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        text
    };
    assert!(
        response.starts_with("HTTP/1.1 405") || response.starts_with("HTTP/1.1 400"),
        "{response}"
    );
    let mut s = TcpStream::connect(&node.http).expect("connect");
    let _ = s.write_all(&vec![b'a'; 20_000]);
    let mut rest = Vec::new();
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let _ = s.read_to_end(&mut rest);
    assert!(!rest.starts_with(b"HTTP/1.1 200"));
    assert!(http_get(&node.http, "/nope").is_some_and(|r| r.starts_with("HTTP/1.1 404")));

    // RESP flood: beyond the limit (16) connections are told and closed.
    let flood: Vec<TcpStream> = (0..40)
        .map(|_| TcpStream::connect(&node.resp).expect("connect"))
        .collect();
    let mut refused = 0;
    for mut s in flood.iter().skip(16) {
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        if text.contains("max number of clients") {
            refused += 1;
        }
    }
    assert_eq!(refused, 24, "every connection over the limit is refused");
    // The WebSocket listener has its own limit: a RESP flood does not touch peers.
    let health = http_get(&node.http, "/health").expect("health during the flood");
    assert!(health.starts_with("HTTP/1.1 200"));
    drop(flood);
    // Once the flood is gone the node takes clients again (connections close
    // asynchronously: retry a bounded number of times).
    let mut served = false;
    for _ in 0..200 {
        let mut c = node.resp();
        c.send_raw(&common::encode(&[b"AUTH", TOKEN.as_bytes()]))
            .expect("send");
        if c.read() == Some(Value::ok()) {
            served = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(served, "the node never took clients again after the flood");

    // WebSocket flood of idle sockets: the excess gets 503, the handshake timeout
    // frees the rest.
    let flood: Vec<TcpStream> = (0..30)
        .map(|_| TcpStream::connect(&node.ws).expect("connect"))
        .collect();
    let mut unavailable = 0;
    for mut s in flood.iter().skip(16) {
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        if text.starts_with("HTTP/1.1 503") {
            unavailable += 1;
        }
    }
    assert_eq!(unavailable, 14);
    drop(flood);
    still_serving(node);
}
