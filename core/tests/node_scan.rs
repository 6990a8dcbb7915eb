//! SCAN on real `Node`s (the shared harness of `common/`): pages in ring order that list
//! every present key and no deleted one, whichever node coordinates, with replicas that
//! missed writes or deletes, across a membership change, and `Unavailable` without a
//! quorum.
#![cfg(not(target_arch = "wasm32"))]

use std::collections::BTreeSet;

use ringkv_core::node::{AdminRequest, ClientError, ClientReply, ClientRequest};
use ringkv_core::ring::{key_position, NodeId};

mod common;
use common::*;

/// One page: its keys and next cursor.
fn page(cluster: &mut Cluster, at: usize, cursor: u64, count: u32) -> (Vec<Vec<u8>>, u64) {
    match cluster.call(at, ClientRequest::Scan { cursor, count }) {
        ClientReply::Keys { keys, cursor } => (keys, cursor),
        other => panic!("scan page at {cursor}: {other:?}"),
    }
}

/// A whole scan through node `at`: every key in the order returned.
fn scan_all(cluster: &mut Cluster, at: usize, count: u32) -> Vec<Vec<u8>> {
    let mut keys = Vec::new();
    let mut cursor = 0;
    for _ in 0..100_000 {
        let (page_keys, next) = page(cluster, at, cursor, count);
        keys.extend(page_keys);
        if next == 0 {
            return keys;
        }
        assert!(
            next > cursor,
            "the cursor moves forward ({cursor} to {next})"
        );
        cursor = next;
    }
    panic!("the scan did not end");
}

fn names(keys: &[Vec<u8>]) -> BTreeSet<String> {
    keys.iter()
        .map(|k| String::from_utf8(k.clone()).expect("utf-8 key"))
        .collect()
}

/// `got` equals `want`; on failure names the first differences, not both sets.
fn assert_same(got: &BTreeSet<String>, want: &BTreeSet<String>, context: &str) {
    let missing: Vec<&String> = want.difference(got).take(10).collect();
    let extra: Vec<&String> = got.difference(want).take(10).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{context}: {} missing (first {missing:?}), {} extra (first {extra:?})",
        want.difference(got).count(),
        got.difference(want).count()
    );
}

fn expected(range: std::ops::Range<usize>, deleted: impl Fn(usize) -> bool) -> BTreeSet<String> {
    range
        .filter(|k| !deleted(*k))
        .map(|k| format!("key-{k}"))
        .collect()
}

#[test]
fn a_scan_lists_every_present_key_once_in_ring_order_from_every_coordinator() {
    let mut cluster = Cluster::new(5);
    cluster.run_for(300);
    for k in 0..300 {
        assert_eq!(
            cluster.call(k % 5, put(&format!("key-{k}"), "v")),
            ClientReply::Done
        );
    }
    for k in (0..300).filter(|k| k % 6 == 0) {
        assert_eq!(
            cluster.call(k % 5, delete(&format!("key-{k}"))),
            ClientReply::Done
        );
    }
    let want = expected(0..300, |k| k % 6 == 0);
    for (at, count) in [(0, 10), (1, 37), (2, 1), (3, 1000), (4, 250)] {
        let keys = scan_all(&mut cluster, at, count);
        assert_eq!(
            keys.len(),
            want.len(),
            "each key once (node {at}, COUNT {count})"
        );
        assert_same(&names(&keys), &want, &format!("node {at}, COUNT {count}"));
        let positions: Vec<u64> = keys.iter().map(|k| key_position(k)).collect();
        assert!(
            positions.windows(2).all(|w| w[0] <= w[1]),
            "ring order (node {at}, COUNT {count})"
        );
    }
    // An empty keyspace scans to the end too.
    let mut empty = Cluster::new(3);
    empty.run_for(300);
    assert!(scan_all(&mut empty, 0, 10).is_empty());
}

#[test]
fn replicas_that_missed_writes_or_deletes_are_outvoted() {
    const KEYS: usize = 3_000;
    // No anti-entropy: the replicas that missed something must still lack it at the scan.
    let mut cluster = Cluster::with(5, |config| config.anti_entropy_interval_ms = 0);
    cluster.run_for(300);
    // n1 misses every write, n2 every delete, and n3 is down during the scan: each key
    // has a majority that saw both, and the scan must never show a deleted key from n2
    // nor miss a key because n1 lacks it.
    cluster.blocked.insert(NodeId(1));
    cluster.run_for(3_000);
    // Enough keys that arcs hold several, so replicas stop at their limit mid-arc.
    for k in 0..KEYS {
        assert_eq!(
            cluster.call(1 + k % 4, put(&format!("key-{k}"), "v")),
            ClientReply::Done
        );
    }
    cluster.blocked.clear();
    cluster.blocked.insert(NodeId(2));
    cluster.run_for(3_000);
    for k in (0..KEYS).filter(|k| k % 3 == 0) {
        let at = [0, 2, 3, 4][k % 4];
        assert_eq!(
            cluster.call(at, delete(&format!("key-{k}"))),
            ClientReply::Done
        );
    }
    cluster.blocked.clear();
    cluster.blocked.insert(NodeId(3));
    cluster.run_for(3_000);
    // The stale copies are really there: n1 lacks keys its peers hold, n2 still holds
    // values its peers deleted.
    let n1_lacks = (0..KEYS)
        .filter(|k| k % 3 != 0)
        .filter(|k| cluster.stored(0, format!("key-{k}").as_bytes()).is_none())
        .filter(|k| cluster.stored(2, format!("key-{k}").as_bytes()).is_some())
        .count();
    let n2_stale = (0..KEYS)
        .filter(|k| k % 3 == 0)
        .filter(|k| {
            cluster
                .stored(1, format!("key-{k}").as_bytes())
                .is_some_and(|(_, value)| value.is_some())
        })
        .count();
    assert!(
        n1_lacks > 20 && n2_stale > 10,
        "{n1_lacks} missing on n1, {n2_stale} stale on n2"
    );
    let want = expected(0..KEYS, |k| k % 3 == 0);
    for (at, count) in [(0, 1), (1, 3), (3, 16)] {
        let keys = scan_all(&mut cluster, at, count);
        let context = format!("scan through n{}, COUNT {count}", at + 1);
        assert_same(&names(&keys), &want, &context);
        assert_eq!(keys.len(), want.len());
    }
}

#[test]
fn a_scan_continues_across_a_membership_change() {
    let mut cluster = Cluster::new(3);
    cluster.run_for(300);
    for k in 0..150 {
        assert_eq!(
            cluster.call(k % 3, put(&format!("key-{k}"), "v")),
            ClientReply::Done
        );
    }
    // The first pages under the old layout.
    let mut keys = Vec::new();
    let mut cursor = 0;
    for _ in 0..3 {
        let (page_keys, next) = page(&mut cluster, 0, cursor, 10);
        keys.extend(page_keys);
        assert_ne!(next, 0, "150 keys take more than three pages of 10");
        cursor = next;
    }
    let joiner = cluster.add_joiner();
    let spec = cluster.specs[joiner].clone();
    assert_eq!(
        cluster.call(0, ClientRequest::Admin(AdminRequest::Join(spec))),
        ClientReply::Done
    );
    // The rest while the change moves data, then after it, from another node.
    for _ in 0..5 {
        let (page_keys, next) = page(&mut cluster, 1, cursor, 10);
        keys.extend(page_keys);
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    cluster.run_for(20_000);
    while cursor != 0 {
        let (page_keys, next) = page(&mut cluster, 2, cursor, 10);
        keys.extend(page_keys);
        cursor = next;
    }
    assert_same(
        &names(&keys),
        &expected(0..150, |_| false),
        "across a change",
    );
    assert_eq!(keys.len(), 150, "each key once");
}

#[test]
fn without_a_quorum_a_scan_is_unavailable() {
    let mut cluster = Cluster::new(3);
    cluster.run_for(300);
    for k in 0..20 {
        assert_eq!(
            cluster.call(0, put(&format!("key-{k}"), "v")),
            ClientReply::Done
        );
    }
    cluster.blocked.insert(NodeId(2));
    cluster.blocked.insert(NodeId(3));
    let reply = cluster.call(
        0,
        ClientRequest::Scan {
            cursor: 0,
            count: 10,
        },
    );
    assert!(
        matches!(reply, ClientReply::Error(ClientError::Unavailable { .. })),
        "{reply:?}"
    );
}
