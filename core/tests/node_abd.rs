//! ABD on real `Node`s: the shared harness (`common/`: a message queue, one manual
//! clock with per-node skew, `MemoryStore` + `LsmEngine`) wires 3–5 nodes and checks the
//! linearizable put/get paths under unreachable replicas, lost, duplicated, reordered
//! and replayed messages, crashes, and write-back.
#![cfg(not(target_arch = "wasm32"))]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use ringkv_core::node::{ClientError, ClientReply, MemberState, PeerMessage};
use ringkv_core::rand::SplitMix64;
use ringkv_core::ring::NodeId;
use ringkv_core::storage::blockstore::FaultStore;
use ringkv_core::versioning::Tag;

mod common;
use common::*;

impl Cluster {
    fn put(&mut self, at: usize, key: &str, value: &str) -> ClientReply {
        self.call(at, put(key, value))
    }

    fn get(&mut self, at: usize, key: &str) -> ClientReply {
        self.call(at, get(key))
    }
}

fn value(v: &str) -> ClientReply {
    ClientReply::Value(Some(v.into()))
}

fn is_unavailable(reply: &ClientReply) -> bool {
    matches!(reply, ClientReply::Error(ClientError::Unavailable { .. }))
}

/// The key's replicas as node indexes, in preference order.
fn replicas_of(cluster: &Cluster, key: &str) -> Vec<usize> {
    cluster
        .node(0)
        .status()
        .layout
        .preference_list(key.as_bytes())
        .into_iter()
        .map(index)
        .collect()
}

#[test]
fn put_then_get_from_every_coordinator() {
    let mut cluster = Cluster::new(5);
    for (i, key) in ["a", "b", "c", "d", "e"].iter().enumerate() {
        assert_eq!(cluster.put(i, key, &format!("{key}1")), ClientReply::Done);
        assert_eq!(
            cluster.put((i + 1) % 5, key, &format!("{key}2")),
            ClientReply::Done
        );
        for at in 0..5 {
            assert_eq!(
                cluster.get(at, key),
                value(&format!("{key}2")),
                "{key} via {at}"
            );
        }
        // Exactly the key's three replicas hold it.
        let holders: Vec<usize> = (0..5)
            .filter(|&r| cluster.stored(r, key.as_bytes()).is_some())
            .collect();
        let mut expected = replicas_of(&cluster, key);
        expected.sort();
        assert_eq!(holders, expected);
    }
    assert_eq!(cluster.call(2, delete("a")), ClientReply::Done);
    assert_eq!(cluster.get(4, "a"), ClientReply::Value(None));
    assert_eq!(cluster.get(1, "never-written"), ClientReply::Value(None));
    for i in 0..5 {
        let status = cluster.node(i).status();
        assert_eq!(status.counters.retransmissions, 0, "no loss, no resends");
        assert_eq!(status.counters.write_backs, 0);
        assert!(status.members.iter().all(|m| m.state == MemberState::Alive));
    }
}

#[test]
fn one_of_three_unreachable_still_serves() {
    let mut cluster = Cluster::new(3);
    cluster.blocked.insert(NodeId(3));
    // Before and after the failure detector notices.
    for round in 0..2 {
        let v = format!("v{round}");
        assert_eq!(cluster.put(0, "k", &v), ClientReply::Done);
        assert_eq!(cluster.get(1, "k"), value(&v));
        cluster.run_for(3_000);
    }
    assert_eq!(
        cluster.node(0).status().member(NodeId(3)).map(|m| m.state),
        Some(MemberState::Dead)
    );
    assert_eq!(cluster.stored(2, b"k"), None);
}

#[test]
fn two_of_three_unreachable_is_unavailable_and_applies_nothing() {
    let mut cluster = Cluster::new(3);
    cluster.blocked.extend([NodeId(2), NodeId(3)]);
    // Peers still believed alive: phase 1 is sent, times out, nothing is written.
    let reply = cluster.put(0, "k", "v");
    assert!(is_unavailable(&reply), "{reply:?}");
    assert!(is_unavailable(&cluster.get(0, "k")));
    for i in 0..3 {
        assert_eq!(cluster.stored(i, b"k"), None, "replica {i}");
    }
    assert_eq!(cluster.node(0).status().counters.refused_unreachable, 0);
    // Once they are believed dead, refused at once: no message, no time passes.
    cluster.run_for(3_000);
    let id = cluster.request(0, put("k", "v"));
    assert!(cluster
        .net
        .iter()
        .all(|(_, _, m)| matches!(m, PeerMessage::Gossip { .. })));
    let before = cluster.now_ms;
    assert!(is_unavailable(
        &cluster.replies.remove(&id).expect("immediate reply")
    ));
    assert_eq!(cluster.now_ms, before);
    assert_eq!(cluster.node(0).status().counters.refused_unreachable, 1);
    for i in 0..3 {
        assert_eq!(cluster.stored(i, b"k"), None, "replica {i}");
    }
}

#[test]
fn lost_phase_two_is_indeterminate() {
    let mut cluster = Cluster::new(3);
    assert_eq!(cluster.put(0, "k", "old"), ClientReply::Done);
    // Drop every Write between nodes: only the coordinator's own replica (loopback)
    // can apply it.
    cluster.filter = Some(Box::new(|_, _, m| matches!(m, PeerMessage::Write { .. })));
    let reply = cluster.put(0, "k", "new");
    assert!(
        matches!(reply, ClientReply::Error(ClientError::Indeterminate { .. })),
        "{reply:?}"
    );
    assert_eq!(cluster.node(0).status().counters.indeterminate, 1);
    cluster.filter = None;
    // The write may take effect at any later time (its copy at the coordinator's own
    // replica can be read and written back), but once a read has returned it, every
    // later read must too.
    let mut seen_new = false;
    for at in [1, 2, 1, 0, 2, 1, 0] {
        let reply = cluster.get(at, "k");
        seen_new |= reply == value("new");
        let expected = if seen_new { value("new") } else { value("old") };
        assert_eq!(reply, expected, "read via {at}");
    }
    // Node 0's own replica answers every read it coordinates, so it has seen "new".
    assert!(seen_new);
}

#[test]
fn duplicated_reordered_and_replayed_messages_are_harmless() {
    let mut cluster = Cluster::new(5);
    cluster.chaos = Chaos {
        duplicate_percent: 30,
        reorder: true,
        replay_percent: 10,
        loss_percent: 0,
    };
    let mut model: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut rng = SplitMix64::new(7);
    for step in 0..300 {
        if step % 25 == 0 {
            cluster.run_for(rng.below(500)); // gossip and timers run too
        }
        let key = format!("k{}", rng.below(4));
        let at = rng.below(5) as usize;
        match rng.below(5) {
            0 => {
                assert_eq!(
                    cluster.call(at, delete(&key)),
                    ClientReply::Done,
                    "step {step}"
                );
                model.insert(key, None);
            }
            1 | 2 => {
                let v = format!("v{step}");
                assert_eq!(cluster.put(at, &key, &v), ClientReply::Done, "step {step}");
                model.insert(key, Some(v));
            }
            _ => {
                let expected =
                    ClientReply::Value(model.get(&key).cloned().flatten().map(Into::into));
                assert_eq!(
                    cluster.get(at, &key),
                    expected,
                    "step {step}: {key} via {at}"
                );
            }
        }
    }
    let stale: u64 = (0..5)
        .map(|i| cluster.node(i).status().counters.stale_replies)
        .sum();
    assert!(stale > 0, "duplicates and replays reached coordinators");
}

#[test]
fn concurrent_puts_on_one_coordinator_get_distinct_tags() {
    // Both puts read the same maximum tag; if they also wrote the same tag, replicas
    // would keep whichever value arrived first and disagree about one tag.
    let mut cluster = Cluster::new(3);
    cluster.chaos.reorder = true;
    for trial in 0..20 {
        let first = cluster.request(0, put("k", &format!("a{trial}")));
        let second = cluster.request(0, put("k", &format!("b{trial}")));
        assert_eq!(cluster.wait(first, 10_000), ClientReply::Done);
        assert_eq!(cluster.wait(second, 10_000), ClientReply::Done);
        while cluster.step() {}
        let mut by_tag: BTreeMap<Tag, Option<Vec<u8>>> = BTreeMap::new();
        for i in 0..3 {
            let (tag, v) = cluster.stored(i, b"k").expect("stored");
            let known = by_tag.entry(tag).or_insert_with(|| v.clone());
            assert_eq!(*known, v, "trial {trial}: replicas disagree on {tag:?}");
        }
        let read = cluster.get(1, "k");
        for at in [0, 2] {
            assert_eq!(cluster.get(at, "k"), read, "trial {trial}");
        }
    }
}

#[test]
fn lost_messages_are_resent() {
    let mut cluster = Cluster::new(3);
    cluster.chaos.loss_percent = 10;
    for n in 0..50 {
        let key = format!("k{n}");
        assert_eq!(cluster.put(n % 3, &key, "v"), ClientReply::Done, "put {n}");
        assert_eq!(cluster.get((n + 1) % 3, &key), value("v"), "get {n}");
    }
    let resent: u64 = (0..3)
        .map(|i| cluster.node(i).status().counters.retransmissions)
        .sum();
    assert!(resent > 0);
}

#[test]
fn crash_and_reopen_keep_data_and_identity() {
    let mut cluster = Cluster::new(3);
    assert_eq!(cluster.put(1, "k", "v1"), ClientReply::Done);
    // Requests in flight when node 0 crashes: their replies reach the new incarnation,
    // whose operation ids restart at the same sequence numbers, and must not be taken
    // for the new operations' replies (a `ReadAck` for "k" counted for a read of "other").
    let _lost_get = cluster.request(0, get("k"));
    let _lost_put = cluster.request(0, put("k", "v2"));
    cluster.crash(0);
    cluster.restart_on(0, cluster.stores[0].clone());
    let status = cluster.node(0).status();
    assert_eq!((status.id, status.incarnation), (NodeId(1), 2));
    assert_eq!(cluster.get(0, "other"), ClientReply::Value(None));
    assert!(cluster.node(0).status().counters.stale_replies > 0);
    // The lost put never reached phase 2 (its coordinator died first).
    assert_eq!(cluster.get(0, "k"), value("v1"));
    assert_eq!(cluster.put(0, "k", "v3"), ClientReply::Done);
    for at in 0..3 {
        assert_eq!(cluster.get(at, "k"), value("v3"));
    }
    // Its own replica kept the data across the reopen.
    assert_eq!(
        cluster.stored(0, b"k").and_then(|(_, v)| v),
        Some(b"v3".to_vec())
    );
}

#[test]
fn acknowledged_writes_survive_power_loss() {
    // FaultStore crash images keep only synced bytes (plus a torn tail): everything a
    // replica acknowledged must be there after the restart.
    let mut cluster = Cluster::new(3);
    let faulty: Vec<FaultStore> = (0..3).map(|_| FaultStore::new()).collect();
    for (i, store) in faulty.iter().enumerate() {
        cluster.crash(i);
        cluster.restart_on(i, Arc::new(store.clone()));
    }
    for n in 0..20 {
        assert_eq!(
            cluster.put(n % 3, &format!("k{n}"), &format!("v{n}")),
            ClientReply::Done
        );
    }
    for (i, store) in faulty.iter().enumerate() {
        cluster.crash(i);
        cluster.restart_on(i, Arc::new(store.crash_image(i as u64)));
    }
    for n in 0..20 {
        assert_eq!(
            cluster.get((n + 1) % 3, &format!("k{n}")),
            value(&format!("v{n}"))
        );
    }
    assert_eq!(cluster.node(1).status().incarnation, 2); // first open on the FaultStore was 1
}

#[test]
fn read_with_differing_tags_writes_back() {
    let mut cluster = Cluster::new(3);
    let order = replicas_of(&cluster, "k");
    let (a, b, c) = (order[0], order[1], order[2]);
    cluster.blocked.insert(nid(c));
    assert_eq!(cluster.put(a, "k", "v1"), ClientReply::Done);
    assert_eq!(cluster.stored(c, b"k"), None);
    // Now a is unreachable: b's read quorum is {b, c}, whose tags differ.
    cluster.blocked = BTreeSet::from([nid(a)]);
    assert_eq!(cluster.get(b, "k"), value("v1"));
    let (tag, stored) = cluster.stored(c, b"k").expect("written back");
    assert_eq!(stored, Some(b"v1".to_vec()));
    assert_eq!(Some(tag), cluster.stored(b, b"k").map(|(t, _)| t));
    assert_eq!(cluster.node(b).status().counters.write_backs, 1);
    // With c up to date, the next read needs no write-back.
    assert_eq!(cluster.get(c, "k"), value("v1"));
    assert_eq!(cluster.node(c).status().counters.write_backs, 0);
}

#[test]
fn gossip_detects_a_partition_and_its_healing() {
    let mut cluster = Cluster::new(3);
    cluster.run_for(1_000);
    for i in 0..3 {
        assert!(cluster
            .node(i)
            .status()
            .members
            .iter()
            .all(|m| m.state == MemberState::Alive));
    }
    cluster.blocked.insert(NodeId(3));
    cluster.run_for(3_000);
    let state =
        |c: &Cluster, at: usize, of: u64| c.node(at).status().member(NodeId(of)).map(|m| m.state);
    assert_eq!(state(&cluster, 0, 3), Some(MemberState::Dead));
    assert_eq!(state(&cluster, 2, 1), Some(MemberState::Dead));
    assert_eq!(state(&cluster, 0, 2), Some(MemberState::Alive));
    cluster.blocked.clear();
    cluster.run_for(1_000);
    for i in 0..3 {
        assert!(
            cluster
                .node(i)
                .status()
                .members
                .iter()
                .all(|m| m.state == MemberState::Alive),
            "node {i}: {:?}",
            cluster.node(i).status().members
        );
    }
}
