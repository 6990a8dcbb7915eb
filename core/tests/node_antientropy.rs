//! Anti-entropy on real `Node`s: a replica that missed writes during a partition
//! converges once it heals, with no client reads, through Merkle exchanges and key
//! pages; tombstones travel and are never undone; lost, duplicated, reordered and
//! replayed anti-entropy messages are harmless; in steady state only root batches are
//! sent, `⌈shared / 256⌉` per round, and a full sweep after a heal takes a few round
//! trips.
//! Uses the shared harness in `common/` (message queue, manual clock with per-node
//! skew, `MemoryStore` + `LsmEngine`).
#![cfg(not(target_arch = "wasm32"))]

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use ringkv_core::antientropy::{RootBatch, RootBatchReply, RootEntry, MAX_ROOTS_PER_MESSAGE};
use ringkv_core::node::{ClientReply, ClientRequest, PeerMessage};
use ringkv_core::ring::{key_position, NodeId, TokenRange};
use ringkv_core::storage::{Engine, WriteBatch, WriteOptions};
use ringkv_core::versioning::Tag;

/// Anti-entropy period in these tests (the default is 1 s).
const INTERVAL_MS: u64 = 100;
/// Descents in flight at once. A round compares every range shared with one peer in
/// one round trip; only differing ranges take a session.
const CONCURRENT: usize = 8;

mod common;
use common::*;

/// A cluster whose nodes run anti-entropy every `INTERVAL_MS` with `CONCURRENT` sessions.
fn cluster(n: usize) -> Cluster {
    Cluster::with(n, |config| {
        config.anti_entropy_interval_ms = INTERVAL_MS;
        config.anti_entropy_concurrent_max = CONCURRENT;
    })
}

impl Cluster {
    /// Every `d/` record of replica `i`, raw.
    fn data(&self, i: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.engines[i]
            .scan_prefix(b"d/", usize::MAX)
            .expect("scan")
    }

    /// Every `p/` entry of replica `i`, raw.
    fn position_index(&self, i: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.engines[i]
            .scan_prefix(b"p/", usize::MAX)
            .expect("scan")
    }

    /// Runs interval by interval until `done`; the number of intervals it took, or
    /// `None` if `max_intervals` were not enough.
    fn run_until(&mut self, max_intervals: u64, done: impl Fn(&Cluster) -> bool) -> Option<u64> {
        for intervals in 0..=max_intervals {
            if done(self) {
                return Some(intervals);
            }
            self.run_for(INTERVAL_MS);
        }
        None
    }

    /// Roots of every range of node `i`.
    fn roots(&self, i: usize) -> BTreeMap<TokenRange, u64> {
        self.node(i)
            .status()
            .anti_entropy
            .ranges
            .iter()
            .map(|range| (range.range, range.root))
            .collect()
    }

    /// Rounds one node needs to compare its ranges with every co-replica once (one
    /// peer per round).
    fn sweep_intervals(&self) -> u64 {
        self.peers_of(0).len() as u64
    }

    /// Nodes sharing at least one range with node `i`.
    fn peers_of(&self, i: usize) -> BTreeSet<NodeId> {
        self.node(i)
            .status()
            .anti_entropy
            .ranges
            .iter()
            .flat_map(|r| r.replicas.iter().copied())
            .filter(|id| *id != nid(i))
            .collect()
    }

    /// Ranges nodes `a` and `b` share.
    fn shared(&self, a: usize, b: usize) -> usize {
        self.node(a)
            .status()
            .anti_entropy
            .ranges
            .iter()
            .filter(|r| r.replicas.contains(&nid(b)))
            .count()
    }

    fn all_equal(&self, nodes: &[usize]) -> bool {
        let first = self.data(nodes[0]);
        nodes.iter().all(|i| self.data(*i) == first)
    }

    fn keys_repaired(&self, i: usize) -> u64 {
        self.node(i).status().counters.keys_repaired
    }
}

/// Every range two nodes share has the same root on both.
fn assert_shared_roots_equal(cluster: &Cluster, nodes: &[usize]) {
    for a in nodes {
        let roots_a = cluster.roots(*a);
        for b in nodes {
            let roots_b = cluster.roots(*b);
            let mut shared = 0;
            for (range, root) in &roots_a {
                if let Some(other) = roots_b.get(range) {
                    assert_eq!(root, other, "nodes {a} and {b} differ on {range}");
                    shared += 1;
                }
            }
            assert!(shared > 0, "nodes {a} and {b} share ranges");
        }
    }
}

fn key(i: usize) -> Vec<u8> {
    format!("key-{i}").into_bytes()
}

/// Writes `count` keys (some overwritten, some deleted) while node `lagging` is cut
/// off, so that only it misses them.
fn write_around(cluster: &mut Cluster, lagging: usize, count: usize) {
    cluster.blocked.insert(nid(lagging));
    let coordinator = (lagging + 1) % cluster.nodes.len();
    for i in 0..count {
        cluster.put_ok(coordinator, &key(i), format!("v{i}").as_bytes());
    }
    for i in (0..count).step_by(5) {
        cluster.put_ok(coordinator, &key(i), format!("w{i}").as_bytes());
    }
    for i in (0..count).step_by(7) {
        cluster.delete_ok(coordinator, &key(i));
    }
    for i in 0..count {
        assert_eq!(cluster.stored(lagging, &key(i)), None, "lagging has {i}");
    }
    cluster.blocked.remove(&nid(lagging));
}

#[test]
fn lagging_replica_converges_without_reads() {
    let mut cluster = cluster(3);
    cluster.run_for(500);
    write_around(&mut cluster, 2, 40);
    let requests_before: u64 = (0..3)
        .map(|i| cluster.node(i).status().counters.requests)
        .sum();
    // Gossip needs a few rounds to see node 3 alive again; two sweeps visit every range
    // with each co-replica (the peer rotates per sweep).
    let bound = 2 * cluster.sweep_intervals() + 20;
    let took = cluster.run_until(bound, |c| c.all_equal(&[0, 1, 2]));
    assert!(took.is_some(), "not converged within {bound} intervals");
    let data = cluster.data(2);
    assert_eq!(data.len(), 40);
    assert_eq!(cluster.position_index(2).len(), 40);
    assert_eq!(
        cluster.stored(2, &key(5)).map(|(_, v)| v),
        Some(Some(b"w5".to_vec()))
    );
    assert_eq!(cluster.stored(2, &key(7)).map(|(_, v)| v), Some(None));
    assert!(
        cluster.keys_repaired(2) >= 40,
        "{}",
        cluster.keys_repaired(2)
    );
    // Repairs went one way only: the others were never behind.
    assert_eq!(cluster.keys_repaired(0) + cluster.keys_repaired(1), 0);
    let requests_after: u64 = (0..3)
        .map(|i| cluster.node(i).status().counters.requests)
        .sum();
    assert_eq!(requests_before, requests_after, "no client traffic");
    assert_shared_roots_equal(&cluster, &[0, 1, 2]);
    let status = cluster.node(2).status().anti_entropy;
    assert!(status.counters.roots_compared > 0);
    let repaired: u64 = (0..3)
        .map(|i| {
            cluster
                .node(i)
                .status()
                .anti_entropy
                .counters
                .exchanges_repaired
        })
        .sum();
    assert!(repaired > 0);
}

/// Every `e/` record of replica `i`, raw.
fn eventual_records(cluster: &Cluster, i: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    cluster.engines[i]
        .scan_prefix(b"e/", usize::MAX)
        .expect("scan")
}

/// Eventual writes acknowledged by one replica (W = 1, the others cut off) reach every
/// replica through anti-entropy alone: no reads, no hints (the others were believed
/// alive, so no fallback held any). Before eventual keys had anti-entropy they stayed
/// on one node until a read touched them.
#[test]
fn eventual_writes_on_one_replica_reach_all_without_reads() {
    let mut cluster = Cluster::with(3, |config| {
        config.anti_entropy_interval_ms = INTERVAL_MS;
        config.anti_entropy_concurrent_max = CONCURRENT;
        config.eventual_w = 1;
        config.eventual_r = 1;
    });
    cluster.run_for(500);
    // A register write node 2 misses: both kinds of difference in the same buckets.
    cluster.blocked.insert(nid(2));
    cluster.put_ok(0, &key(0), b"register");
    cluster.blocked.insert(nid(1));
    for i in 0..30 {
        let request = ClientRequest::PutEventual {
            key: key(i),
            value: format!("e{i}").into_bytes(),
            context: None,
        };
        assert_eq!(cluster.call(0, request), ClientReply::Done);
    }
    // The operations' resends to the cut-off replicas end (their deadlines pass).
    cluster.run_for(3_000);
    cluster.blocked.remove(&nid(1));
    cluster.blocked.remove(&nid(2));
    assert_eq!(eventual_records(&cluster, 0).len(), 30);
    assert!(eventual_records(&cluster, 1).is_empty());
    assert!(eventual_records(&cluster, 2).is_empty());
    let requests_before: u64 = (0..3)
        .map(|i| cluster.node(i).status().counters.requests)
        .sum();
    let bound = 2 * cluster.sweep_intervals() + 20;
    let took = cluster.run_until(bound, |c| {
        let first = eventual_records(c, 0);
        (1..3).all(|i| eventual_records(c, i) == first) && c.all_equal(&[0, 1, 2])
    });
    assert!(took.is_some(), "not converged within {bound} intervals");
    for i in 0..3 {
        let index = cluster.engines[i]
            .scan_prefix(b"q/", usize::MAX)
            .expect("scan");
        assert_eq!(index.len(), 30, "q/ entries on node {i}");
        let hints: u64 = cluster.node(i).status().hint_queues.values().sum();
        assert_eq!(hints, 0, "no hints on node {i}");
    }
    assert!(cluster.keys_repaired(1) >= 30 && cluster.keys_repaired(2) >= 30);
    let requests_after: u64 = (0..3)
        .map(|i| cluster.node(i).status().counters.requests)
        .sum();
    assert_eq!(requests_before, requests_after, "no client traffic");
    assert_shared_roots_equal(&cluster, &[0, 1, 2]);
    // The trees kept incrementally equal the trees rebuilt from the indexes.
    let roots_before = cluster.roots(2);
    cluster.restart(2);
    assert_eq!(cluster.roots(2), roots_before);
}

#[test]
fn tombstones_propagate_and_are_never_undone() {
    let mut cluster = cluster(3);
    cluster.put_ok(0, b"k", b"old");
    cluster.run_for(200);
    assert!(cluster.stored(2, b"k").is_some());
    let (old_tag, _) = cluster.stored(2, b"k").expect("stored");
    cluster.blocked.insert(nid(2));
    cluster.delete_ok(0, b"k");
    cluster.blocked.clear();
    assert_eq!(
        cluster.stored(2, b"k"),
        Some((old_tag, Some(b"old".to_vec())))
    );
    let bound = 2 * cluster.sweep_intervals() + 20;
    let took = cluster.run_until(bound, |c| c.all_equal(&[0, 1, 2]));
    assert!(took.is_some(), "not converged within {bound} intervals");
    let (tombstone_tag, value) = cluster.stored(2, b"k").expect("tombstone kept");
    assert_eq!(value, None);
    assert!(tombstone_tag > old_tag);
    assert_eq!(
        cluster.keys_repaired(2),
        1,
        "the tombstone came by anti-entropy"
    );
    // A stale copy of the old value (a replayed push, as from a replica that had not
    // seen the delete) does not bring it back.
    let epoch = cluster.node(0).status().membership.epoch;
    for to in 0..3 {
        cluster.inject(
            nid((to + 1) % 3),
            to,
            PeerMessage::AntiEntropyPush {
                epoch,
                key: b"k".to_vec(),
                tag: old_tag,
                value: Some(b"old".to_vec()),
            },
        );
    }
    cluster.run_for(2 * cluster.sweep_intervals() * INTERVAL_MS);
    for i in 0..3 {
        assert_eq!(
            cluster.stored(i, b"k"),
            Some((tombstone_tag, None)),
            "node {i}"
        );
        assert_eq!(cluster.get_linearizable(i, b"k"), ClientReply::Value(None));
    }
    assert_shared_roots_equal(&cluster, &[0, 1, 2]);
}

#[test]
fn lost_duplicated_reordered_and_replayed_messages_are_harmless() {
    let mut cluster = cluster(3);
    cluster.run_for(500);
    write_around(&mut cluster, 0, 30);
    cluster.chaos = Chaos {
        duplicate_percent: 20,
        reorder: true,
        replay_percent: 5,
        loss_percent: 20,
    };
    // Loss stretches sessions (each lost message costs a resend timeout), so sweeps
    // are slower than in a clean network.
    let bound = 10 * cluster.sweep_intervals() + 40;
    let took = cluster.run_until(bound, |c| c.all_equal(&[0, 1, 2]));
    assert!(took.is_some(), "not converged within {bound} intervals");
    cluster.chaos = Chaos::default();
    cluster.run_for(1_000);
    assert!(cluster.all_equal(&[0, 1, 2]));
    assert_shared_roots_equal(&cluster, &[0, 1, 2]);
    let counters: Vec<_> = (0..3)
        .map(|i| cluster.node(i).status().anti_entropy.counters)
        .collect();
    assert!(
        counters.iter().map(|c| c.resends).sum::<u64>() > 0,
        "{counters:?}"
    );
    assert!(counters.iter().map(|c| c.stale_responses).sum::<u64>() > 0);
    for i in 0..30 {
        let expected = match i {
            i if i % 7 == 0 => None,
            i if i % 5 == 0 => Some(format!("w{i}").into_bytes()),
            i => Some(format!("v{i}").into_bytes()),
        };
        assert_eq!(
            cluster.get_linearizable(i % 3, &key(i)),
            ClientReply::Value(expected)
        );
    }
}

#[test]
fn steady_state_traffic_is_only_matching_root_batches() {
    let mut cluster = cluster(3);
    for i in 0..20 {
        cluster.put_ok(i % 3, &key(i), b"v");
    }
    // Let every write reach every replica and in-flight exchanges finish.
    cluster.run_for(1_000);
    assert!(cluster.all_equal(&[0, 1, 2]));
    type Batches = BTreeMap<(NodeId, NodeId, u64), Vec<usize>>;
    let batches: Rc<RefCell<Batches>> = Rc::default();
    let seen: Rc<RefCell<BTreeMap<String, u64>>> = Rc::default();
    let (record, record_batches) = (seen.clone(), batches.clone());
    cluster.filter = Some(Box::new(move |from, to, message| {
        let kind = match message {
            PeerMessage::AntiEntropyRoots(batch) => {
                // ~30 B per entry: a full batch stays well under 10 KiB.
                let bytes = ringkv_core::protocol::encode(message)
                    .expect("encodes")
                    .len();
                assert!(bytes <= 10 << 10, "{bytes} B for {}", batch.roots.len());
                record_batches
                    .borrow_mut()
                    .entry((from, to, batch.id))
                    .or_default()
                    .push(batch.roots.len());
                "roots"
            }
            PeerMessage::AntiEntropyRootsReply(reply)
                if reply.differing.is_empty() && reply.unknown.is_empty() =>
            {
                "all equal"
            }
            PeerMessage::Gossip { .. } => "gossip",
            other => other.kind(),
        };
        *record.borrow_mut().entry(kind.to_string()).or_default() += 1;
        false
    }));
    let pushed_before: u64 = (0..3)
        .map(|i| cluster.node(i).status().anti_entropy.counters.keys_pushed)
        .sum();
    let generations = cluster.run_for_counting(2 * cluster.sweep_intervals() * INTERVAL_MS);
    let seen = seen.borrow().clone();
    let kinds: BTreeSet<&str> = seen.keys().map(String::as_str).collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["all equal", "gossip", "roots"]),
        "{seen:?}"
    );
    // Every batch is answered, all equal; a round is one round trip.
    assert_eq!(seen.get("roots"), seen.get("all equal"));
    assert!(generations <= 2, "{generations} generations");
    // Each round sends ⌈shared / 256⌉ batches, every shared range once, ≤ 256 each.
    let batches = batches.borrow().clone();
    assert!(!batches.is_empty());
    for ((from, to, _), sizes) in &batches {
        let shared = cluster.shared(index(*from), index(*to));
        assert_eq!(
            sizes.len(),
            shared.div_ceil(MAX_ROOTS_PER_MESSAGE),
            "{sizes:?}"
        );
        assert_eq!(sizes.iter().sum::<usize>(), shared);
        assert!(sizes.iter().all(|n| *n <= MAX_ROOTS_PER_MESSAGE));
    }
    // ~1,500 ranges per node here, so several batches per round.
    assert!(batches.values().all(|sizes| sizes.len() >= 2));
    for i in 0..3 {
        let status = cluster.node(i).status().anti_entropy;
        assert_eq!(status.ranges_exchanged, status.ranges.len(), "node {i}");
        assert!(status.oldest_exchange_ms.is_some());
        assert!(status
            .ranges
            .iter()
            .all(|r| r.last_exchange.is_some_and(|last| last.in_sync)));
        assert_eq!(status.counters.roots_differing, 0);
    }
    let pushed_after: u64 = (0..3)
        .map(|i| cluster.node(i).status().anti_entropy.counters.keys_pushed)
        .sum();
    assert_eq!(pushed_before, pushed_after);
}

#[test]
fn a_full_sweep_after_heal_takes_a_few_round_trips() {
    let mut cluster = cluster(3);
    cluster.run_for(500);
    write_around(&mut cluster, 2, 40);
    let depth_max = cluster
        .node(0)
        .status()
        .anti_entropy
        .ranges
        .iter()
        .map(|r| u64::from(r.depth))
        .max()
        .expect("ranges");
    // Round trips of the longest chain: one for all root batches (⌈shared / 256⌉ of
    // them, sent together: every shared range compared at once), then the differing
    // ranges (≤ 40, one per key) in waves of `CONCURRENT` sessions, each ⌈depth / 4⌉
    // round trips to descend, one key page, and the pushes the page reply asks for
    // (one way, counted as one more).
    let waves = 40u64.div_ceil(CONCURRENT as u64);
    let k = 1 + waves * (depth_max.div_ceil(4) + 1 + 1);
    let mut generations = 0;
    let mut intervals = 0;
    // Gossip needs a few rounds to see node 3 alive again; then the first root round
    // between it and a co-replica repairs everything, in one instant of this harness.
    while !cluster.all_equal(&[0, 1, 2]) {
        assert!(intervals < cluster.sweep_intervals() + 20, "not converged");
        generations = generations.max(cluster.run_for_counting(INTERVAL_MS));
        intervals += 1;
    }
    assert!(
        generations <= 2 * k,
        "{generations} generations > 2 × {k} round trips"
    );
    let rounds: u64 = (0..3)
        .map(|i| cluster.node(i).status().anti_entropy.counters.root_rounds)
        .sum();
    assert!(rounds > 0);
    assert_eq!(cluster.keys_repaired(2), 40);
    assert_shared_roots_equal(&cluster, &[0, 1, 2]);
}

#[test]
fn lost_duplicated_and_malformed_root_batches_are_harmless() {
    let mut cluster = cluster(3);
    cluster.run_for(500);
    write_around(&mut cluster, 1, 30);
    // Drop every other root batch and root reply; duplicate the rest.
    let mut count = 0u64;
    cluster.filter = Some(Box::new(move |_, _, message| {
        let batch = matches!(
            message,
            PeerMessage::AntiEntropyRoots(_) | PeerMessage::AntiEntropyRootsReply(_)
        );
        count += u64::from(batch);
        batch && count.is_multiple_of(2)
    }));
    cluster.chaos.duplicate_percent = 30;
    let bound = 4 * cluster.sweep_intervals() + 40;
    let took = cluster.run_until(bound, |c| c.all_equal(&[0, 1, 2]));
    assert!(took.is_some(), "not converged within {bound} intervals");
    let counters: Vec<_> = (0..3)
        .map(|i| cluster.node(i).status().anti_entropy.counters)
        .collect();
    assert!(counters.iter().map(|c| c.resends).sum::<u64>() > 0);
    assert!(counters.iter().map(|c| c.stale_responses).sum::<u64>() > 0);
    assert!(counters.iter().map(|c| c.roots_differing).sum::<u64>() > 0);
    cluster.filter = None;
    cluster.chaos = Chaos::default();

    // Oversized batch: ignored, not answered.
    let range = cluster.node(0).status().anti_entropy.ranges[0].clone();
    let entry = RootEntry {
        range: range.range,
        depth: range.depth,
        root: 7,
    };
    let ignored = cluster.node(0).status().counters.messages_ignored;
    cluster.net.clear();
    cluster.inject(
        nid(1),
        0,
        PeerMessage::AntiEntropyRoots(RootBatch {
            id: 1,
            part: 0,
            roots: vec![entry; MAX_ROOTS_PER_MESSAGE + 1],
        }),
    );
    assert!(cluster.net.is_empty(), "no answer to an oversized batch");
    assert_eq!(
        cluster.node(0).status().counters.messages_ignored,
        ignored + 1
    );
    // From a non-co-replica's point of view everything is unknown; a differing root
    // from a co-replica is reported differing, and nothing is written either way.
    cluster.inject(
        nid(1),
        0,
        PeerMessage::AntiEntropyRoots(RootBatch {
            id: 2,
            part: 0,
            roots: vec![entry],
        }),
    );
    let answered = cluster.net.pop_back().map(|(_, _, m)| m);
    assert_eq!(
        answered,
        Some(PeerMessage::AntiEntropyRootsReply(RootBatchReply {
            id: 2,
            part: 0,
            differing: vec![0],
            unknown: vec![],
        }))
    );
    // Replies nobody asked for, or with offsets outside the part: ignored.
    let stale = cluster
        .node(0)
        .status()
        .anti_entropy
        .counters
        .stale_responses;
    cluster.inject(
        nid(1),
        0,
        PeerMessage::AntiEntropyRootsReply(RootBatchReply {
            id: 12345,
            part: 0,
            differing: vec![0, 999],
            unknown: vec![65535],
        }),
    );
    assert_eq!(
        cluster
            .node(0)
            .status()
            .anti_entropy
            .counters
            .stale_responses,
        stale + 1
    );
    cluster.run_for(1_000);
    assert!(cluster.all_equal(&[0, 1, 2]));
    assert_shared_roots_equal(&cluster, &[0, 1, 2]);
}

#[test]
fn five_node_ring_repairs_each_key_among_its_replicas_only() {
    let mut cluster = cluster(5);
    cluster.run_for(500);
    write_around(&mut cluster, 3, 40);
    let layout = cluster.node(0).status().layout;
    let replicas_of =
        |k: &[u8]| -> Vec<usize> { layout.preference_list(k).into_iter().map(index).collect() };
    let converged = |c: &Cluster| {
        (0..40).all(|i| {
            let k = key(i);
            let replicas = replicas_of(&k);
            replicas
                .iter()
                .all(|r| c.stored(*r, &k) == c.stored(replicas[0], &k))
        })
    };
    let bound = 2 * cluster.sweep_intervals() + 20;
    assert!(
        cluster.run_until(bound, converged).is_some(),
        "not converged within {bound} intervals"
    );
    let mut lagging_keys = 0;
    for i in 0..40 {
        let k = key(i);
        let replicas = replicas_of(&k);
        lagging_keys += usize::from(replicas.contains(&3));
        for node in 0..5 {
            assert_eq!(
                cluster.stored(node, &k).is_some(),
                replicas.contains(&node),
                "key {i} on node {node}"
            );
        }
    }
    assert!(lagging_keys > 0);
    assert_eq!(cluster.keys_repaired(3), lagging_keys as u64);
    assert_shared_roots_equal(&cluster, &[0, 1, 2, 3, 4]);
}

#[test]
fn pushes_from_non_replicas_are_ignored() {
    let mut cluster = cluster(5);
    let layout = cluster.node(0).status().layout;
    let k = key(1);
    let replicas: Vec<usize> = layout.preference_list(&k).into_iter().map(index).collect();
    let outsider = (0..5).find(|i| !replicas.contains(i)).expect("5 > 3");
    let forged = PeerMessage::AntiEntropyPush {
        epoch: cluster.node(0).status().membership.epoch,
        key: k.clone(),
        tag: Tag {
            counter: 99,
            node: nid(outsider),
        },
        value: Some(b"forged".to_vec()),
    };
    // From a non-replica to a replica, and from a replica to a non-replica.
    cluster.inject(nid(outsider), replicas[0], forged.clone());
    cluster.inject(nid(replicas[0]), outsider, forged);
    assert_eq!(cluster.stored(replicas[0], &k), None);
    assert_eq!(cluster.stored(outsider, &k), None);
    assert_eq!(
        cluster.node(replicas[0]).status().counters.messages_ignored,
        1
    );
    assert_eq!(cluster.node(outsider).status().counters.messages_ignored, 1);
}

#[test]
fn restart_rebuilds_the_same_trees_and_older_stores_get_indexed() {
    let mut cluster = cluster(3);
    for i in 0..30 {
        cluster.put_ok(i % 3, &key(i), b"v");
    }
    cluster.delete_ok(0, &key(3));
    cluster.run_for(300);
    let roots = cluster.roots(0);
    let index_before = cluster.position_index(0);
    assert_eq!(index_before.len(), 30);
    cluster.restart(0);
    assert_eq!(cluster.roots(0), roots);
    assert!(cluster.node(0).status().notes.is_empty());
    // A store written before the index existed: no p/ entries, no marker.
    let mut batch = WriteBatch::new();
    for (engine_key, _) in &index_before {
        batch.delete(engine_key.clone());
    }
    batch.delete(b"m/position_index".to_vec());
    cluster.engines[0]
        .write(&batch, WriteOptions::DURABLE)
        .expect("strip index");
    cluster.restart(0);
    assert_eq!(cluster.position_index(0), index_before);
    assert_eq!(cluster.roots(0), roots);
    let notes = cluster.node(0).status().notes;
    assert!(
        notes
            .iter()
            .any(|n| n.contains("position index") && n.contains("30")),
        "{notes:?}"
    );
    cluster.restart(0);
    assert!(cluster.node(0).status().notes.is_empty(), "indexed once");
}

/// Keys that all fall into the range holding `seed`'s position.
fn keys_in_one_range(cluster: &Cluster, count: usize) -> Vec<Vec<u8>> {
    let seed_position = key_position(b"seed");
    let range = cluster
        .node(0)
        .status()
        .anti_entropy
        .ranges
        .iter()
        .map(|r| r.range)
        .find(|r| r.contains(seed_position))
        .expect("node 1 replicates every range of a 3-node ring");
    (0..)
        .map(|i| format!("dense-{i}").into_bytes())
        .filter(|k| range.contains(key_position(k)))
        .take(count)
        .collect()
}

#[test]
fn a_dense_range_is_repaired_in_bounded_pages() {
    // 600 keys of ~6 KiB in one range: more keys than a page lists (256) and more
    // bytes than one page pushes (1 MiB), so both bounds cut pages.
    let mut cluster = cluster(3);
    let keys = keys_in_one_range(&cluster, 600);
    let value = vec![b'x'; 6 << 10];
    cluster.blocked.insert(nid(1));
    for k in &keys {
        cluster.put_ok(0, k, &value);
    }
    cluster.blocked.clear();
    let bound = 2 * cluster.sweep_intervals() + 40;
    let took = cluster.run_until(bound, |c| c.all_equal(&[0, 1, 2]));
    assert!(took.is_some(), "not converged within {bound} intervals");
    assert_eq!(cluster.keys_repaired(1), 600);
    let pages: u64 = (0..3)
        .map(|i| cluster.node(i).status().anti_entropy.counters.key_pages)
        .sum();
    assert!(pages >= 4, "{pages} pages for 600 keys of 6 KiB");
    assert_shared_roots_equal(&cluster, &[0, 1, 2]);
}
