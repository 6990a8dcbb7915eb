//! Tombstone purge on real processes: a 3-node cluster writes 100,000 keys, deletes
//! them all, and with no operator action its disk use falls back to within 2× of the
//! empty cluster's: the purge drops the tombstones on every replica (`node/purge/`), an
//! idle memtable is flushed (`server/maintenance.rs`), and tombstone-density compaction
//! drops what the deletes shadow. Prints the figures. `RINGKV_PURGE_TEST_KEYS` changes
//! the key count.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{encode, http_json, Cluster, Value};

const VALUE_BYTES: usize = 100;
/// Commands per pipelined burst on one connection.
const BURST: usize = 500;

fn keys() -> usize {
    std::env::var("RINGKV_PURGE_TEST_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

/// Bytes of every file under `dir` (the node's data directory).
fn disk_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => disk_bytes(&entry.path()),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}

fn cluster_disk_bytes(cluster: &Cluster) -> u64 {
    cluster.nodes.iter().map(|node| disk_bytes(&node.dir)).sum()
}

fn key(i: usize) -> Vec<u8> {
    format!("purge-{i:07}").into_bytes()
}

/// Sends `command(i)` for every `i` of `range` through node `node` in pipelined
/// bursts. A reply other than one of `expected` must be `INDETERMINATE` or
/// `UNAVAILABLE` (the machine is shared, and a phase may time out under load); such
/// commands are sent again, alone, until they get an expected reply.
fn pipeline(
    cluster: &Cluster,
    node: usize,
    range: std::ops::Range<usize>,
    command: &dyn Fn(usize) -> Vec<u8>,
    expected: &[Value],
) {
    let mut resp = cluster.nodes[node].resp();
    let indexes: Vec<usize> = range.collect();
    for burst in indexes.chunks(BURST) {
        let mut bytes = Vec::new();
        for &i in burst {
            bytes.extend(command(i));
        }
        resp.send_raw(&bytes).expect("send");
        let mut again = Vec::new();
        for &i in burst {
            match resp.read() {
                Some(reply) if expected.contains(&reply) => {}
                reply => {
                    assert!(
                        retryable(reply.as_ref()),
                        "command {i} through n{}: {reply:?}",
                        node + 1
                    );
                    again.push(i);
                }
            }
        }
        for i in again {
            let mut attempts = 0;
            loop {
                resp.send_raw(&command(i)).expect("send");
                let reply = resp.read();
                if reply.as_ref().is_some_and(|reply| expected.contains(reply)) {
                    break;
                }
                attempts += 1;
                assert!(
                    retryable(reply.as_ref()) && attempts < 50,
                    "command {i} through n{}: {reply:?}",
                    node + 1
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

fn retryable(reply: Option<&Value>) -> bool {
    matches!(reply, Some(Value::Error(error))
        if error.starts_with("INDETERMINATE") || error.starts_with("UNAVAILABLE"))
}

/// Runs `command` over all keys, a third through each node, in parallel.
fn over_all_keys(cluster: &Arc<Cluster>, command: fn(usize) -> Vec<u8>, expected: Vec<Value>) {
    let n = keys();
    let per_node = n.div_ceil(3);
    let threads: Vec<_> = (0..3)
        .map(|node| {
            let cluster = cluster.clone();
            let expected = expected.clone();
            std::thread::spawn(move || {
                let range = node * per_node..((node + 1) * per_node).min(n);
                pipeline(&cluster, node, range, &command, &expected);
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("client thread");
    }
}

fn purge_status(cluster: &Cluster) -> Vec<serde_json::Value> {
    cluster
        .nodes
        .iter()
        .map(|node| {
            http_json(&node.http, "/status")
                .map(|(_, status)| status["purge"].clone())
                .unwrap_or_default()
        })
        .collect()
}

#[test]
fn deleting_every_key_gives_the_disk_space_back() {
    let cluster = Arc::new(Cluster::start(3, &["--purge-interval-ms", "1000"]));
    for node in &cluster.nodes {
        node.resp();
    }
    // The empty cluster, settled: identity, layout and the first flushes are on disk.
    std::thread::sleep(Duration::from_secs(7));
    let empty = cluster_disk_bytes(&cluster);

    let n = keys();
    let started = Instant::now();
    over_all_keys(
        &cluster,
        |i| encode(&[b"SET", &key(i), &[b'v'; VALUE_BYTES]]),
        vec![Value::ok()],
    );
    let write_s = started.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(1));
    let full = cluster_disk_bytes(&cluster);

    let started = Instant::now();
    // A retried delete whose first attempt took effect finds nothing: 0.
    over_all_keys(
        &cluster,
        |i| encode(&[b"DEL", &key(i)]),
        vec![Value::Int(1), Value::Int(0)],
    );
    let delete_s = started.elapsed().as_secs_f64();
    let deleted = cluster_disk_bytes(&cluster);

    let started = Instant::now();
    let limit = Duration::from_secs(180);
    let (settled, purged) = loop {
        let disk = cluster_disk_bytes(&cluster);
        let status = purge_status(&cluster);
        let purged: u64 = status
            .iter()
            .map(|s| s["tombstones_purged"].as_u64().unwrap_or(0))
            .sum();
        if disk <= 2 * empty && purged >= 3 * n as u64 {
            break (disk, purged);
        }
        assert!(
            started.elapsed() < limit,
            "after {limit:?}: {disk} bytes on disk (empty cluster: {empty}), {purged} \
             tombstones purged of {}; purge status: {status:#?}",
            3 * n
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let settle_s = started.elapsed().as_secs_f64();

    // Deleted keys stay deleted, through every node.
    for (node, i) in [(0, 0), (1, n / 2), (2, n - 1), (0, n / 3)] {
        let mut resp = cluster.nodes[node].resp();
        assert_eq!(
            resp.call_bytes(&[b"GET", &key(i)]),
            Value::Bulk(None),
            "key {i}"
        );
    }
    let mb = |bytes: u64| bytes as f64 / 1e6;
    let kb = |bytes: u64| bytes as f64 / 1e3;
    println!("tombstone purge, 3 nodes, N = 3, {n} keys of {VALUE_BYTES} bytes:");
    println!("  empty cluster        {:>9.1} KB", kb(empty));
    println!(
        "  all written          {:>9.2} MB  ({write_s:.1} s)",
        mb(full)
    );
    println!(
        "  all deleted          {:>9.2} MB  ({delete_s:.1} s)",
        mb(deleted)
    );
    println!(
        "  purged and compacted {:>9.1} KB  ({settle_s:.1} s later; {purged} tombstones purged; \
         {:.2}x the empty cluster)",
        kb(settled),
        settled as f64 / empty.max(1) as f64
    );
    assert!(full > 10 * empty, "the keys took space: {full} vs {empty}");
}
