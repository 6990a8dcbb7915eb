//! Upgrades on real processes: a data directory carries its format version, checked
//! before the engine opens (a newer one is refused naming both versions; one from
//! before the marker is adopted and marked), and nodes refuse peers of another peer
//! protocol version with a log line and a metric, whichever side is newer: at the
//! WebSocket upgrade (a header both sides send) and, for builds that send no header,
//! at the first frame.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::peer::PeerLink;
use common::{http_get, plan, ringkv_bin, NodeProc, Value};
use ringkv_core::protocol::FORMAT_VERSION;
use ringkv_core::ring::NodeId;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const MARKER: &str = "FORMAT";

fn counter(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics:\n{metrics}"))
}

fn metrics(node: &NodeProc) -> String {
    http_get(&node.http, "/metrics").expect("metrics")
}

fn wait_for_log(node: &NodeProc, needle: &str) -> String {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        let log = node.log();
        if log.contains(needle) {
            return log;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no {needle:?} in the log of n{}:\n{}", node.id, node.log());
}

#[test]
fn a_data_directory_of_a_newer_format_is_refused_naming_both_versions() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let dir = scratch.path().join("n1");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join(MARKER), "ringkv data directory format 999\n").expect("marker");
    let ports = plan(1)[0];
    let node = NodeProc::new(1, ports, dir.clone(), &[]);
    let mut child = Command::new(ringkv_bin())
        .args(&node.args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("ringkv serve opened a data directory of format 999");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read");
    assert!(!status.success(), "exit {status}; stderr:\n{stderr}");
    assert!(
        stderr.contains("format 999") && stderr.contains("format 1"),
        "the error names both versions: {stderr}"
    );
    // Nothing was opened or created next to the newer data.
    assert!(!dir.join("lsm").exists(), "the engine was opened");
}

#[test]
fn a_data_directory_from_before_the_marker_is_adopted_and_marked() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let dir = scratch.path().join("n1");
    let mut node = NodeProc::new(1, plan(1)[0], dir.clone(), &[]);
    node.start();
    node.wait_healthy();
    assert_eq!(node.resp().call(&["SET", "kept", "v1"]), Value::ok());
    assert!(node.terminate().success());
    let marker = std::fs::read_to_string(dir.join(MARKER)).expect("a new directory is marked");
    assert_eq!(marker.trim(), "ringkv data directory format 1");

    // A directory written before markers existed: data, no marker.
    std::fs::remove_file(dir.join(MARKER)).expect("remove marker");
    node.start();
    node.wait_healthy();
    wait_for_log(&node, "adopted");
    assert_eq!(node.resp().call(&["GET", "kept"]), Value::bulk("v1"));
    let marker = std::fs::read_to_string(dir.join(MARKER)).expect("marked on adoption");
    assert_eq!(marker.trim(), "ringkv data directory format 1");
    assert!(node.terminate().success());
}

#[test]
fn a_peer_of_another_protocol_version_is_refused_with_a_log_line_and_a_metric() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // n1 lists n2 as a member; n2's address is a fake newer node that answers every
    // upgrade with 426 and its version, so n1 is the dialer refused by a newer build.
    let fake = TcpListener::bind("127.0.0.1:0").expect("bind");
    let fake_address = fake.local_addr().expect("addr").to_string();
    std::thread::spawn(move || {
        for stream in fake.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut head = [0u8; 4096];
            let _ = stream.read(&mut head);
            let body = "peer protocol version 99 only";
            let _ = write!(
                stream,
                "HTTP/1.1 426 Upgrade Required\r\nx-ringkv-peer-protocol: 99\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let ports = plan(1)[0];
    let scratch = tempfile::tempdir().expect("tempdir");
    let members = format!("n1@127.0.0.1:{},n2@{fake_address}", ports.ws);
    let mut node = NodeProc::new(1, ports, scratch.path().join("n1"), &["--member", &members]);
    node.start();
    node.wait_healthy();
    let log = wait_for_log(&node, "peer protocol version 99");
    assert!(
        log.contains(&format!("this node speaks {FORMAT_VERSION}")),
        "the dialer's log line names both versions:\n{log}"
    );

    // A newer dialer announcing its version in the upgrade request: refused with 426
    // before any handshake, naming the version this node speaks.
    let mut request = format!("ws://{}/peer", node.ws)
        .into_client_request()
        .expect("request");
    request
        .headers_mut()
        .insert("x-ringkv-peer-protocol", "98".parse().expect("header"));
    let answer = runtime.block_on(async {
        let tcp = tokio::net::TcpStream::connect(&node.ws).await.expect("tcp");
        tokio_tungstenite::client_async(request, tcp).await
    });
    match answer {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 426);
            assert_eq!(
                response
                    .headers()
                    .get("x-ringkv-peer-protocol")
                    .and_then(|v| v.to_str().ok()),
                Some(FORMAT_VERSION.to_string().as_str())
            );
        }
        other => panic!("a peer of protocol 98 was not refused: {other:?}"),
    }
    wait_for_log(&node, "peer protocol version 98");

    // An older dialer that sends no header authenticates, then its first frame
    // carries its version: refused there, the link closed.
    let closed = runtime.block_on(async {
        let mut link = PeerLink::dial(&node.ws, NodeId(3), NodeId(1), "").await;
        let mut frame = 2u16.to_le_bytes().to_vec();
        frame.extend_from_slice(&[0, 0, 0]);
        link.send_raw(frame).await;
        link.closed_within(Duration::from_secs(10)).await
    });
    assert!(
        closed,
        "the node kept a link whose frames are of protocol 2"
    );
    let log = wait_for_log(&node, "peer protocol version 2");
    assert!(log.contains("n3"), "the line names the peer:\n{log}");
    // Each refusal is counted: the dials of n1 to the fake n2 (at least one), the
    // header refusal and the frame refusal.
    let refused = counter(&metrics(&node), "ringkv_peer_protocol_refused_total");
    assert!(
        refused >= 3,
        "ringkv_peer_protocol_refused_total = {refused}"
    );
    assert!(node.terminate().success());
}
