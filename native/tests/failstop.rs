//! A disk that fails under load: node n1 of three runs on a disk whose fsync starts
//! failing mid-run (`failfs/failfs.c`, an `LD_PRELOAD` shim: EIO, and the file cut back
//! to its last synced length, as Linux drops the dirty pages of a failed writeback).
//! Clients keep writing unique keys to every node. n1 must fail-stop: `/health` 503 and
//! `/status` naming the storage error, clients refused with "storage failed", nothing
//! acknowledged that the disk lost; the other two keep acknowledging writes. Then a
//! power cut (SIGKILL), a restart on the healthy disk, and every acknowledged write is
//! read back with its value.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{encode, http_get, restart_on_failing_disk, Cluster, Resp, Value};

/// What one client saw.
#[derive(Default)]
struct Seen {
    /// (key, value, acknowledged after n1 was seen failed)
    acked: Vec<(String, String, bool)>,
    /// Refused with the storage-failure error.
    refused: u64,
    /// Any other error (`UNAVAILABLE`, `INDETERMINATE`, including requests n1 had
    /// taken when it failed): not checked.
    other_errors: u64,
}

/// Writes unique keys to `address` until `stop`; `failed` marks acks after n1 failed.
fn writer(
    client: usize,
    address: String,
    stop: Arc<AtomicBool>,
    failed: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
) {
    let mut resp = Resp::connect(&address);
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let (key, value) = (format!("c{client}-{n}"), format!("value-{client}-{n}"));
        let after = failed.load(Ordering::Relaxed);
        let reply = resp.call(&["SET", &key, &value]);
        let mut seen = seen.lock().expect("lock");
        match reply {
            Value::Simple(ok) if ok == "OK" => seen.acked.push((key, value, after)),
            Value::Error(text)
                if text.starts_with("UNAVAILABLE") && text.contains("storage failed") =>
            {
                seen.refused += 1;
                drop(seen);
                // A failed node answers at once: do not spin.
                std::thread::sleep(Duration::from_millis(2));
            }
            Value::Error(_) => seen.other_errors += 1,
            other => panic!("SET {key}: unexpected reply {other:?}"),
        }
    }
}

/// `/health` and `/status` of a node, as text and JSON.
fn health(http: &str) -> String {
    http_get(http, "/health").unwrap_or_default()
}

fn storage_status(http: &str) -> serde_json::Value {
    let response = http_get(http, "/status").unwrap_or_default();
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str::<serde_json::Value>(body).expect("status JSON")["storage"].clone()
}

/// Reads every acknowledged key back (through every node in turn, pipelined); keys
/// whose read failed (a node still reconnecting) are retried. Returns how many matched.
fn check_all(cluster: &Cluster, acked: &[(String, String, bool)]) -> usize {
    let mut todo: Vec<&(String, String, bool)> = acked.iter().collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut checked = 0;
    while !todo.is_empty() {
        assert!(
            Instant::now() < deadline,
            "{} keys still unreadable, e.g. {:?}",
            todo.len(),
            todo[0]
        );
        let mut retry = Vec::new();
        for (i, chunk) in todo.chunks(500).enumerate() {
            let mut resp = cluster.nodes[i % cluster.nodes.len()].resp();
            let mut batch = Vec::new();
            for (key, _, _) in chunk {
                batch.extend(encode(&[b"GET", key.as_bytes()]));
            }
            resp.send_raw(&batch).expect("send");
            for entry @ (key, value, _) in chunk.iter().copied() {
                match resp.read().expect("reply") {
                    Value::Bulk(Some(got)) => {
                        assert_eq!(got, value.as_bytes(), "{key}: wrong value");
                        checked += 1;
                    }
                    Value::Bulk(None) => panic!("{key}: acknowledged write lost"),
                    Value::Error(_) => retry.push(entry),
                    other => panic!("GET {key}: {other:?}"),
                }
            }
        }
        if !retry.is_empty() {
            std::thread::sleep(Duration::from_millis(200));
        }
        todo = retry;
    }
    checked
}

#[test]
fn a_node_whose_fsync_fails_stops_and_no_acknowledged_write_is_lost() {
    let mut cluster = Cluster::start(3, &[]);
    // n1 moves onto the failing disk (same data directory, now under the shim).
    let dir = cluster.dir.path().to_path_buf();
    let trigger = restart_on_failing_disk(&mut cluster.nodes[0], &dir);

    let stop = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicBool::new(false));
    let seen: Vec<Arc<Mutex<Seen>>> = (0..3).map(|_| Arc::default()).collect();
    let writers: Vec<_> = cluster
        .nodes
        .iter()
        .enumerate()
        .map(|(client, node)| {
            let (address, stop, failed, seen) = (
                node.resp.clone(),
                stop.clone(),
                failed.clone(),
                seen[client].clone(),
            );
            std::thread::spawn(move || writer(client, address, stop, failed, seen))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(800));
    std::fs::write(&trigger, b"").expect("trigger");

    // n1 says it failed, and why, while still running.
    let http = cluster.nodes[0].http.clone();
    let deadline = Instant::now() + Duration::from_secs(10);
    let health = loop {
        let health = health(&http);
        if !health.starts_with("HTTP/1.1 200") && !health.is_empty() {
            break health;
        }
        assert!(Instant::now() < deadline, "n1 still healthy: {health:?}");
        std::thread::sleep(Duration::from_millis(20));
    };
    failed.store(true, Ordering::Relaxed);
    assert!(health.starts_with("HTTP/1.1 503"), "{health}");
    assert!(health.contains("storage failed"), "{health}");
    let storage = storage_status(&http);
    assert_eq!(storage["failed"], true, "{storage}");
    assert!(
        storage["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{storage}"
    );
    std::thread::sleep(Duration::from_millis(1000));
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.join().expect("writer");
    }
    assert!(cluster.nodes[0].alive(), "n1 must stop serving, not exit");

    // Power cut, then a restart on the same (now healthy) disk without the shim.
    let n1 = &mut cluster.nodes[0];
    n1.kill9();
    let cut = n1.log().matches("failfs: cut").count();
    n1.env.clear();
    n1.start();
    n1.wait_healthy();
    assert_eq!(storage_status(&n1.http)["failed"], false);

    let seen: Vec<Seen> = seen
        .into_iter()
        .map(|s| std::mem::take(&mut *s.lock().expect("lock")))
        .collect();
    let acked: Vec<(String, String, bool)> =
        seen.iter().flat_map(|s| s.acked.iter().cloned()).collect();
    let before = acked.iter().filter(|(_, _, after)| !after).count();
    let after_by = |i: usize| seen[i].acked.iter().filter(|(_, _, a)| *a).count();
    let checked = check_all(&cluster, &acked);
    println!(
        "failstop: acked before n1 failed {before} (n1 {}), acked after by n2 {} and n3 {}, \
         n1 acked after {}, refused by n1 {} (storage failed), other errors {}, files cut back to \
         their synced length {cut}, checked {checked} keys, lost 0",
        seen[0].acked.len() - after_by(0),
        after_by(1),
        after_by(2),
        after_by(0),
        seen[0].refused,
        seen.iter().map(|s| s.other_errors).sum::<u64>(),
    );
    assert_eq!(checked, acked.len());
    assert!(before > 0, "no writes before the failure");
    assert!(
        seen[0].refused > 0,
        "n1 never refused a client with the storage error"
    );
    assert_eq!(after_by(0), 0, "n1 acknowledged a write after it failed");
    assert!(
        after_by(1) > 0 && after_by(2) > 0,
        "n2 and n3 must keep acknowledging writes after n1 failed"
    );
}
