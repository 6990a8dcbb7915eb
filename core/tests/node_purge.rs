//! Tombstone purge on real `Node`s (`node/purge/`): deleted keys' tombstones leave
//! every replica once every replica holds them (a replica that missed a delete holds
//! the purge back until anti-entropy repairs it), the keys stay deleted, a replayed
//! push of an older value sent before the purge is refused by the epoch fence, and a
//! new write after the purge gets a tag above the purged tombstone.
//! Uses the shared harness in `common/`.
#![cfg(not(target_arch = "wasm32"))]

use ringkv_core::node::{ClientReply, PeerMessage};

mod common;
use common::*;

const INTERVAL_MS: u64 = 100;
const PURGE_INTERVAL_MS: u64 = 500;

fn cluster(purge: bool) -> Cluster {
    if purge {
        Cluster::with(3, |config| {
            config.anti_entropy_interval_ms = INTERVAL_MS;
            config.purge_interval_ms = PURGE_INTERVAL_MS;
        })
    } else {
        Cluster::with(3, |config| {
            config.anti_entropy_interval_ms = INTERVAL_MS;
            config.purge_interval_ms = 0;
        })
    }
}

fn key(i: usize) -> Vec<u8> {
    format!("key-{i:03}").into_bytes()
}

impl Cluster {
    fn tombstones(&self, keys: usize) -> usize {
        (0..3)
            .flat_map(|i| (0..keys).map(move |k| (i, k)))
            .filter(|(i, k)| matches!(self.stored(*i, &key(*k)), Some((_, None))))
            .count()
    }
}

#[test]
fn deleted_keys_are_purged_everywhere_and_stay_deleted() {
    let mut cluster = cluster(true);
    for k in 0..20 {
        cluster.put_ok(k % 3, &key(k), b"old");
    }
    cluster.run_for(500);
    let (old_tag, _) = cluster.stored(2, &key(0)).expect("replicated");
    let old_epoch = cluster.node(0).status().membership.epoch;
    // Node 2 misses the deletes: it still holds the old values, so no tombstone may
    // go anywhere until anti-entropy gave it the deletes.
    cluster.blocked.insert(nid(2));
    for k in 0..10 {
        cluster.delete_ok(k % 2, &key(k));
    }
    cluster.blocked.clear();
    let (tombstone_tag, _) = cluster.stored(0, &key(0)).expect("tombstone");
    assert!(cluster.tombstones(10) >= 20);

    let mut waited_ms = 0;
    while cluster.tombstones(10) > 0 {
        assert!(
            waited_ms < 20_000,
            "tombstones left: {}; {:#?}",
            cluster.tombstones(10),
            (0..3)
                .map(|i| {
                    let status = cluster.node(i).status();
                    (status.membership.epoch, status.purge)
                })
                .collect::<Vec<_>>()
        );
        cluster.run_for(INTERVAL_MS);
        waited_ms += INTERVAL_MS;
    }
    println!("purged everywhere after {waited_ms} ms");
    let statuses: Vec<_> = (0..3).map(|i| cluster.node(i).status()).collect();
    let purged: u64 = statuses.iter().map(|s| s.purge.tombstones_purged).sum();
    assert_eq!(purged, 30, "10 keys on 3 replicas each");
    assert!(statuses
        .iter()
        .all(|s| s.purge.purge_floor >= tombstone_tag.counter));
    for i in 0..3 {
        for k in 0..10 {
            assert_eq!(cluster.stored(i, &key(k)), None, "node {i} key {k}");
        }
        for k in 10..20 {
            assert!(cluster.stored(i, &key(k)).is_some(), "node {i} key {k}");
        }
    }

    // A push of the old value sent before the purge (its epoch older) is refused.
    for to in 0..3 {
        cluster.inject(
            nid((to + 1) % 3),
            to,
            PeerMessage::AntiEntropyPush {
                epoch: old_epoch,
                key: key(0),
                tag: old_tag,
                value: Some(b"old".to_vec()),
            },
        );
    }
    cluster.run_for(1_000);
    for i in 0..3 {
        assert_eq!(cluster.stored(i, &key(0)), None, "node {i}");
        for k in 0..10 {
            assert_eq!(
                cluster.get_linearizable(i, &key(k)),
                ClientReply::Value(None)
            );
        }
        assert_eq!(
            cluster.get_linearizable(i, &key(15)),
            ClientReply::Value(Some(b"old".to_vec()))
        );
    }

    // A new write gets a tag above the purged tombstone's.
    cluster.put_ok(1, &key(0), b"new");
    let (new_tag, _) = cluster.stored(1, &key(0)).expect("written");
    assert!(new_tag > tombstone_tag);
    assert_eq!(
        cluster.get_linearizable(2, &key(0)),
        ClientReply::Value(Some(b"new".to_vec()))
    );
}

#[test]
fn with_purge_off_tombstones_are_kept() {
    let mut cluster = cluster(false);
    for k in 0..5 {
        cluster.put_ok(0, &key(k), b"v");
        cluster.delete_ok(1, &key(k));
    }
    cluster.run_for(5_000);
    assert_eq!(cluster.tombstones(5), 15);
    let status = cluster.node(0).status();
    assert_eq!(status.purge.round_state, "off");
    assert_eq!(status.membership.epoch, 1, "no purge change was made");
}

/// A node holding a tombstone of a key it does not replicate — a copy left from an
/// earlier layout, or its own write as an old replica that no replica took — must not
/// hold every purge back: checking that copy could never succeed (simulator seed 184).
/// It checks only keys it replicates, and the next purge change's floor drops the copy.
#[test]
fn a_tombstone_no_replica_holds_does_not_hold_the_purge_back() {
    use ringkv_core::node::OpId;
    use ringkv_core::ring::epoch_tag_base;
    use ringkv_core::versioning::Tag;

    let mut cluster = Cluster::with(4, |config| {
        config.anti_entropy_interval_ms = INTERVAL_MS;
        config.purge_interval_ms = PURGE_INTERVAL_MS;
    });
    cluster.run_for(500);
    for k in 0..10 {
        cluster.put_ok(k % 4, &key(k), b"v");
    }
    for k in 0..5 {
        cluster.delete_ok(k % 4, &key(k));
    }
    // A key node 4 does not replicate (N = 3 of 4), and a tombstone of it on node 4
    // alone, at the current epoch, as a coordinator that was an old replica writes it.
    let history = cluster.node(0).layout_history().clone();
    let stray = (100..)
        .map(key)
        .find(|k| !history.committed().preference_list(k).contains(&nid(3)))
        .expect("a key node 4 does not replicate");
    let epoch = history.epoch();
    let tag = Tag {
        counter: epoch_tag_base(epoch) + 1,
        node: nid(3),
    };
    cluster.inject(
        nid(3),
        3,
        PeerMessage::Write {
            req: OpId {
                coordinator: nid(3),
                incarnation: 99,
                seq: 0,
            },
            epoch,
            key: stray.clone(),
            tag,
            value: None,
        },
    );
    cluster.run_for(50);
    assert_eq!(
        cluster.stored(3, &stray),
        Some((tag, None)),
        "the stray copy"
    );
    let left = |cluster: &Cluster| {
        let deleted = (0..4)
            .flat_map(|i| (0..5).map(move |k| (i, k)))
            .filter(|(i, k)| cluster.stored(*i, &key(*k)).is_some())
            .count();
        deleted + usize::from(cluster.stored(3, &stray).is_some())
    };
    let mut waited_ms = 0;
    while left(&cluster) > 0 {
        assert!(
            waited_ms < 20_000,
            "{} tombstones left; {:#?}",
            left(&cluster),
            (0..4)
                .map(|i| cluster.node(i).status().purge)
                .collect::<Vec<_>>()
        );
        cluster.run_for(INTERVAL_MS);
        waited_ms += INTERVAL_MS;
    }
    println!("every tombstone purged, the stray one included, after {waited_ms} ms");
    for k in 5..10 {
        assert_eq!(
            cluster.get_linearizable(k % 4, &key(k)),
            ClientReply::Value(Some(b"v".to_vec()))
        );
    }
}
