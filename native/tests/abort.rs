//! Membership changes that cannot complete, on real processes:
//! - a node joining a one-node cluster is killed (-9) for good in the middle of
//!   receiving its ranges: the change stalls (every range needs it), `ringkv status`
//!   shows it with its age, and after `--change-timeout-ms` the cluster aborts it on
//!   its own and serves every key again;
//! - a dead member of a two-replica ring is refused by a plain `ringkv remove` (its
//!   ranges would be rebuilt from fewer than a majority) and removed by `--force`,
//!   losing no key; `ringkv abort` with nothing in progress is refused.

mod common;

use std::time::{Duration, Instant};

use common::{encode, free_port, http_json, Cluster, Ports, Value};

const VALUE_BYTES: usize = 4 << 10;
const BURST: usize = 200;

fn key(i: usize) -> String {
    format!("abort-{i:06}")
}

fn value(i: usize) -> Vec<u8> {
    let mut v = format!("{i:06}:").into_bytes();
    v.resize(VALUE_BYTES, b'x' + (i % 3) as u8);
    v
}

/// Writes keys `0..count` through `address` in pipelined bursts; every reply `OK`.
fn write_keys(address: &str, count: usize) {
    let mut resp = common::Resp::connect(address);
    let indexes: Vec<usize> = (0..count).collect();
    for burst in indexes.chunks(BURST) {
        let mut bytes = Vec::new();
        for &i in burst {
            bytes.extend(encode(&[b"SET", key(i).as_bytes(), &value(i)]));
        }
        resp.send_raw(&bytes).expect("send");
        for &i in burst {
            assert_eq!(resp.read(), Some(Value::ok()), "SET {}", key(i));
        }
    }
}

/// Reads keys `0..count` through `address` in pipelined bursts: each must hold its
/// value.
fn every_key_served(address: &str, count: usize) {
    let mut resp = common::Resp::connect(address);
    let indexes: Vec<usize> = (0..count).collect();
    for burst in indexes.chunks(BURST) {
        let mut bytes = Vec::new();
        for &i in burst {
            bytes.extend(encode(&[b"GET", key(i).as_bytes()]));
        }
        resp.send_raw(&bytes).expect("send");
        for &i in burst {
            assert_eq!(
                resp.read(),
                Some(Value::Bulk(Some(value(i)))),
                "GET {} through {address}",
                key(i)
            );
        }
    }
}

fn status(http: &str) -> serde_json::Value {
    let (code, status) = http_json(http, "/status").expect("status");
    assert_eq!(code, 200);
    status
}

fn ringkv(args: &[&str]) -> std::process::Output {
    std::process::Command::new(common::ringkv_bin())
        .args(args)
        .output()
        .expect("ringkv")
}

#[test]
fn a_joiner_killed_mid_stream_is_aborted_and_every_key_served() {
    const KEYS: usize = 20_000;
    let mut cluster = Cluster::start(1, &["--change-timeout-ms", "3000"]);
    write_keys(&cluster.nodes[0].resp, KEYS);
    let seeds = [cluster.nodes[0].ws.clone()];
    let ports = Ports {
        ws: free_port(),
        resp: free_port(),
        http: free_port(),
    };
    let joiner = cluster.add_joiner(1, ports, &seeds, 2, &|_| None);
    // Killed as soon as it has applied part of its ranges, before it synced.
    let start = Instant::now();
    let applied = loop {
        let joiner_status = http_json(&joiner.http, "/status").map(|(_, s)| s);
        let sync = joiner_status.as_ref().map(|s| &s["membership"]["sync"]);
        let applied = sync
            .and_then(|s| s["entries_applied"].as_u64())
            .unwrap_or(0);
        if applied > 0 {
            joiner.kill9();
            break applied;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the joiner never started receiving: {joiner_status:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(
        applied < KEYS as u64,
        "killed after all {applied} entries: not mid-stream"
    );
    let n1 = &cluster.nodes[0];
    let pending = status(&n1.http);
    assert_eq!(pending["membership"]["pending_version"], 2, "{pending}");
    // While it is stuck, the change shows with its age.
    std::thread::sleep(Duration::from_millis(1_000));
    let out = ringkv(&["status", "--node", &n1.ws]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = text
        .lines()
        .find(|l| l.starts_with("change to layout v2 in progress for"))
        .unwrap_or_else(|| panic!("no stuck change in status:\n{text}"));
    println!("joiner killed after {applied} of {KEYS} entries; status: {line}");
    // Aborted on its own: the one-node layout again, as version 3.
    let start = Instant::now();
    loop {
        let now = status(&n1.http);
        if now["membership"]["pending_version"].is_null() {
            assert_eq!(now["layout_version"], 3, "{now}");
            assert_eq!(now["members"].as_array().map(Vec::len), Some(1), "{now}");
            assert_eq!(now["membership"]["changes_aborted"], 1, "{now}");
            println!(
                "aborted {} ms after the kill",
                start.elapsed().as_millis() + 1_000
            );
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "not aborted: {now}\nlog:\n{}",
            n1.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    every_key_served(&n1.resp, KEYS);
    assert_eq!(n1.resp().call(&["SET", "after", "abort"]), Value::ok());
}

#[test]
fn a_dead_member_of_a_two_replica_ring_is_removed_with_force() {
    const KEYS: usize = 300;
    let mut cluster = Cluster::start(3, &["--replicas", "2"]);
    write_keys(&cluster.nodes[0].resp, KEYS);
    let (n1, n2) = (cluster.nodes[0].ws.clone(), cluster.nodes[1].ws.clone());
    let out = ringkv(&["abort", "--node", &n1]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("nothing to abort"),
        "{out:?}"
    );
    cluster.nodes[2].kill9();
    // Judged by n1's failure detector: wait until it holds n3 dead.
    let start = Instant::now();
    loop {
        let now = status(&cluster.nodes[0].http);
        let n3_dead = now["members"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|m| m["name"] == "n3" && m["state"] == "dead");
        if n3_dead {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{now}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = ringkv(&["remove", "n3", "--node", &n1]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let refused = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(refused.contains("--force"), "{refused}");
    println!("plain removal: {refused}");
    let out = ringkv(&["remove", "--force", "n3", "--node", &n2]);
    assert!(out.status.success(), "{out:?}");
    for node in &mut cluster.nodes[..2] {
        node.wait_member_of(2);
    }
    every_key_served(&cluster.nodes[0].resp, KEYS);
    every_key_served(&cluster.nodes[1].resp, KEYS);
}
