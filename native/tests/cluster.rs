//! A 3-node cluster of real processes: writes on one node are read on the others
//! (RESP and the client WebSocket protocol), losing one node (kill -9) keeps reads and
//! writes linearizable, losing two makes them UNAVAILABLE, and a restarted node rejoins
//! with its data. SIGTERM stops a node cleanly.

mod common;

use common::{Cluster, Value};
use ringkv::cmd::client::Client;
use ringkv_core::node::{ClientError, ClientReply, ClientRequest, Consistency};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn three_nodes_survive_one_failure_and_refuse_without_quorum() {
    let mut cluster = Cluster::start(3, &[]);
    let mut n1 = cluster.nodes[0].resp();
    assert_eq!(n1.call(&["SET", "k", "v1"]), Value::ok());
    for node in &cluster.nodes[1..] {
        assert_eq!(
            node.resp().call(&["GET", "k"]),
            Value::bulk("v1"),
            "node {}",
            node.id
        );
    }

    // The client WebSocket protocol reaches the same data.
    runtime().block_on(async {
        let mut client = Client::connect(&cluster.nodes[2].ws, &Default::default())
            .await
            .expect("connect");
        let reply = client
            .request(ClientRequest::Get {
                key: b"k".to_vec(),
                consistency: Consistency::Linearizable,
            })
            .await
            .expect("get");
        assert_eq!(reply, ClientReply::Value(Some(b"v1".to_vec())));
        let reply = client
            .request(ClientRequest::Put {
                key: b"ws".to_vec(),
                value: b"from-ws".to_vec(),
                consistency: Consistency::Linearizable,
            })
            .await
            .expect("put");
        assert_eq!(reply, ClientReply::Done);
        let status = client.status().await.expect("status");
        assert_eq!(status["members"].as_array().map(Vec::len), Some(3));
    });
    assert_eq!(n1.call(&["GET", "ws"]), Value::bulk("from-ws"));

    // One of three down: every write and read still succeeds, and each read sees the
    // write before it, whichever node serves it.
    cluster.nodes[2].kill9();
    let mut n2 = cluster.nodes[1].resp();
    for i in 0..20 {
        let value = format!("after-kill-{i}");
        let (writer, reader) = if i % 2 == 0 {
            (&mut n1, &mut n2)
        } else {
            (&mut n2, &mut n1)
        };
        assert_eq!(writer.call(&["SET", "k", &value]), Value::ok(), "write {i}");
        assert_eq!(reader.call(&["GET", "k"]), Value::bulk(&value), "read {i}");
    }

    // Two of three down: no quorum, and the client is told so.
    cluster.nodes[1].kill9();
    let write = n1.call(&["SET", "k", "lost"]);
    assert_eq!(write.error_prefix(), Some("UNAVAILABLE"), "{write:?}");
    let read = n1.call(&["GET", "k"]);
    assert_eq!(read.error_prefix(), Some("UNAVAILABLE"), "{read:?}");
    runtime().block_on(async {
        let mut client = Client::connect(&cluster.nodes[0].ws, &Default::default())
            .await
            .expect("connect");
        let reply = client
            .request(ClientRequest::Get {
                key: b"k".to_vec(),
                consistency: Consistency::Linearizable,
            })
            .await
            .expect("get");
        assert!(
            matches!(reply, ClientReply::Error(ClientError::Unavailable { .. })),
            "{reply:?}"
        );
    });

    // Bring one back (same data dir): quorum again, and the last acknowledged write is
    // what every node reads.
    cluster.nodes[1].start();
    cluster.nodes[1].wait_healthy();
    let mut recovered = None;
    for _ in 0..100 {
        match cluster.nodes[1].resp().call(&["GET", "k"]) {
            Value::Bulk(value) => {
                recovered = value;
                break;
            }
            // Until gossip shows the peers alive again, the node may refuse.
            Value::Error(e) if e.starts_with("UNAVAILABLE") => {
                std::thread::sleep(std::time::Duration::from_millis(100))
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(recovered.as_deref(), Some(&b"after-kill-19"[..]));
    assert_eq!(n1.call(&["GET", "k"]), Value::bulk("after-kill-19"));

    // SIGTERM: a clean stop.
    let status = cluster.nodes[0].terminate();
    assert!(status.success(), "exit status {status:?}");
    assert!(cluster.nodes[0].log().contains("stopped cleanly"));
}

#[test]
fn cli_commands_talk_to_a_cluster() {
    let cluster = Cluster::start(3, &[]);
    let ringkv = |args: &[&str]| {
        std::process::Command::new(common::ringkv_bin())
            .args(args)
            .output()
            .expect("ringkv")
    };
    let (n1, n3) = (&cluster.nodes[0].ws, &cluster.nodes[2].ws);
    let out = ringkv(&["put", "greeting", "hello", "--node", n1]);
    assert!(out.status.success(), "{out:?}");
    let out = ringkv(&["get", "greeting", "--node", n3, "--json"]);
    assert!(out.status.success(), "{out:?}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["value"], "hello");
    let out = ringkv(&["del", "greeting", "--node", n3]);
    assert!(out.status.success(), "{out:?}");
    let out = ringkv(&["get", "greeting", "--node", n1]);
    assert_eq!(out.status.code(), Some(1), "absent key: exit 1 ({out:?})");

    // Import, then export from another node: the same lines come back.
    let file = cluster.dir.path().join("in.jsonl");
    let lines: Vec<String> = (0..50)
        .map(|i| format!("{{\"key\":\"key{i:02}\",\"value\":\"value {i}\"}}"))
        .collect();
    std::fs::write(&file, lines.join("\n")).expect("write");
    let out = ringkv(&["import", &file.display().to_string(), "--node", n1]);
    assert!(out.status.success(), "{out:?}");
    let out = ringkv(&["export", "--node", n3]);
    assert!(out.status.success(), "{out:?}");
    let exported: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(exported.len(), 50);
    assert_eq!(exported[7]["key"], "key07");
    assert_eq!(exported[7]["value"], "value 7");

    let out = ringkv(&["status", "--node", n1, "--json"]);
    assert!(out.status.success(), "{out:?}");
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(status["members"].as_array().map(Vec::len), Some(3));
    let out = ringkv(&["status", "--node", n1]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("n3"),
        "{out:?}"
    );
}

#[test]
fn nodes_join_through_a_shared_seed_list_and_leave() {
    let mut cluster = Cluster::start_seeded(3, &[]);
    let mut n1 = cluster.nodes[0].resp();
    assert_eq!(n1.call(&["SET", "joined", "yes"]), Value::ok());
    assert_eq!(
        cluster.nodes[2].resp().call(&["GET", "joined"]),
        Value::bulk("yes")
    );

    // A restart keeps identity, membership and data, whatever the seeds say.
    cluster.nodes[1].kill9();
    cluster.nodes[1]
        .args
        .retain(|a| a != "--seed" && !a.contains(','));
    cluster.nodes[1].start();
    cluster.nodes[1].wait_member_of(3);
    assert_eq!(
        cluster.nodes[1].resp().call(&["GET", "joined"]),
        Value::bulk("yes")
    );

    // n3 leaves: its data moves to the others, then it serves no more.
    let out = std::process::Command::new(common::ringkv_bin())
        .args(["leave", "n3", "--node", &cluster.nodes[0].ws])
        .output()
        .expect("ringkv leave");
    assert!(out.status.success(), "{out:?}");
    cluster.nodes[0].wait_member_of(2);
    cluster.nodes[1].wait_member_of(2);
    assert_eq!(n1.call(&["GET", "joined"]), Value::bulk("yes"));
    assert_eq!(
        cluster.nodes[1].resp().call(&["SET", "after", "leave"]),
        Value::ok()
    );
    assert_eq!(n1.call(&["GET", "after"]), Value::bulk("leave"));
    // Two members left: with N=3 each key now lives on both; losing n3's process
    // changes nothing.
    cluster.nodes[2].kill9();
    assert_eq!(n1.call(&["GET", "after"]), Value::bulk("leave"));
}

#[test]
fn a_member_restarted_on_a_new_address_announces_it() {
    let mut cluster = Cluster::start_seeded(3, &[]);
    let mut n1 = cluster.nodes[0].resp();
    assert_eq!(n1.call(&["SET", "moved", "1"]), Value::ok());
    // n3 comes back listening elsewhere.
    cluster.nodes[2].kill9();
    let new_port = common::free_port();
    let new_address = format!("127.0.0.1:{new_port}");
    let at = cluster.nodes[2]
        .args
        .iter()
        .position(|a| a == "--listen")
        .expect("--listen");
    cluster.nodes[2].args[at + 1] = new_address.clone();
    cluster.nodes[2].ws = new_address.clone();
    cluster.nodes[2].start();
    cluster.nodes[2].wait_healthy();
    // Once the change is chosen, n1 lists n3 at its new address ...
    let mut announced = false;
    for _ in 0..300 {
        let status = common::http_get(&cluster.nodes[0].http, "/status").unwrap_or_default();
        if status.contains(&format!("\"address\": \"{new_address}\"")) {
            announced = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        announced,
        "n1 never learned the new address; n3 log:\n{}",
        cluster.nodes[2].log()
    );
    // ... and needs it: with n2 down, n1's quorum is itself and n3.
    cluster.nodes[1].kill9();
    let mut reply = Value::Simple(String::new());
    for _ in 0..100 {
        reply = n1.call(&["SET", "moved", "2"]);
        if reply == Value::ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(reply, Value::ok(), "{}", cluster.nodes[0].log());
    assert_eq!(
        cluster.nodes[2].resp().call(&["GET", "moved"]),
        Value::bulk("2")
    );
}

/// A Prometheus counter from `/metrics` text.
fn counter(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

#[test]
fn a_pipelined_burst_goes_to_each_peer_in_batches() {
    // What a node sends one peer in one committer group leaves as one frame: under a
    // pipelined burst the node sends far fewer frames than messages.
    let cluster = Cluster::start(3, &[]);
    let mut resp = cluster.nodes[0].resp();
    let mut burst = Vec::new();
    for i in 0..2_000 {
        let key = format!("batched-{i}");
        burst.extend(common::encode(&[b"SET", key.as_bytes(), b"v"]));
    }
    resp.send_raw(&burst).expect("send");
    for _ in 0..2_000 {
        assert_eq!(resp.read(), Some(Value::ok()));
    }
    let metrics = common::http_get(&cluster.nodes[0].http, "/metrics").expect("metrics");
    let messages = counter(&metrics, "ringkv_peer_messages_sent_total");
    let frames = counter(&metrics, "ringkv_peer_frames_sent_total");
    println!("n1 sent {messages} peer messages in {frames} frames");
    // Each SET is 2 phases × 2 remote replicas: at least 8,000 messages.
    assert!(messages >= 8_000, "{messages} messages");
    assert!(
        frames * 4 <= messages,
        "{messages} messages in {frames} frames"
    );
}
