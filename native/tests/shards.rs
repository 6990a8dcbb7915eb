//! Processes of several shards (`ringkv serve --shards 2`): each shard is a ring member,
//! all shards of a process one failure domain. Killing a whole process must leave every
//! key readable and writable (no key has two of its three replicas in one process), and
//! the tools that walk members (`export`) must reach every shard behind one address.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{http_json, Cluster, Value};

const PROCESSES: u64 = 3;
const KEYS: usize = 200;

#[test]
fn a_killed_process_takes_no_key_down_and_every_shard_is_reachable() {
    let mut cluster = Cluster::start(PROCESSES, &["--shards", "2"]);
    for node in &mut cluster.nodes {
        node.wait_member_of(PROCESSES as usize * 2);
    }
    // Every member names its process; shard 1 of n1 is n1000001.
    let (_, status) = http_json(&cluster.nodes[0].http, "/status").expect("status");
    let members = status["members"].as_array().expect("members");
    let mut ids: Vec<(u64, u64)> = members
        .iter()
        .map(|m| {
            (
                m["id"].as_u64().expect("id"),
                m["process"]
                    .as_u64()
                    .expect("every member names its process"),
            )
        })
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        vec![
            (1, 1),
            (2, 2),
            (3, 3),
            (1_000_001, 1),
            (1_000_002, 2),
            (1_000_003, 3)
        ]
    );

    let mut first = cluster.nodes[0].resp();
    for i in 0..KEYS {
        let (key, value) = (format!("k{i}"), format!("v{i}"));
        assert_eq!(first.call(&["SET", &key, &value]), Value::ok(), "SET {key}");
    }

    // Process 3 dies with both its shards: every key keeps two of its three replicas.
    cluster.nodes[2].kill9();
    std::thread::sleep(Duration::from_millis(300));
    let mut second = cluster.nodes[1].resp();
    for i in 0..KEYS {
        let key = format!("k{i}");
        let value = format!("w{i}");
        assert_eq!(
            second.call(&["GET", &key]),
            Value::bulk(&format!("v{i}")),
            "GET {key} with process 3 down"
        );
        assert_eq!(
            first.call(&["SET", &key, &value]),
            Value::ok(),
            "SET {key} with process 3 down"
        );
    }

    // Back up: it catches up and serves the newer values.
    cluster.nodes[2].start();
    cluster.nodes[2].wait_healthy();
    let mut third = cluster.nodes[2].resp();
    for i in (0..KEYS).step_by(7) {
        let key = format!("k{i}");
        assert_eq!(
            third.call(&["GET", &key]),
            Value::bulk(&format!("w{i}")),
            "GET {key} from the restarted process"
        );
    }

    // `export` lists each member's local keys: shards share an address, so it must
    // reach each shard by id (`/client?to=ID`), not shard 0 six times.
    let out = std::process::Command::new(common::ringkv_bin())
        .args(["export", "--node", &cluster.nodes[0].ws])
        .output()
        .expect("ringkv export");
    assert!(out.status.success(), "export: {out:?}");
    let exported: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter_map(|entry| entry["key"].as_str().map(str::to_owned))
        .collect();
    let expected: BTreeSet<String> = (0..KEYS).map(|i| format!("k{i}")).collect();
    let missing: Vec<&String> = expected.difference(&exported).collect();
    assert!(
        missing.is_empty(),
        "export of a sharded cluster missed {missing:?}"
    );
    assert_eq!(exported.len(), KEYS, "export listed keys never written");
}
