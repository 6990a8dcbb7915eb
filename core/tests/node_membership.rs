//! Membership changes on real `Node`s (shared harness, `common/`): a node joins and
//! receives its ranges, a member leaves after handing its ranges off, a dead member is
//! removed, and values written before and during each change stay readable.
//! Linearizability under faults during changes is the simulator's job (tests/).
#![cfg(not(target_arch = "wasm32"))]

use ringkv_core::node::{AdminRequest, ClientError, ClientReply, ClientRequest, Role};
use ringkv_core::ring::NodeId;
use ringkv_core::storage::Engine;

mod common;
use common::*;

impl Cluster {
    /// Runs until every live member's committed layout has `version`, or panics.
    fn until_committed(&mut self, version: u64, limit_ms: u64) {
        let deadline_ms = self.now_ms + limit_ms;
        loop {
            let done = self.nodes.iter().flatten().all(|node| {
                let status = node.status();
                status.membership.role != Role::Member
                    || (status.layout.version() == version
                        && status.membership.pending_version.is_none())
            });
            if done {
                return;
            }
            assert!(
                self.now_ms <= deadline_ms,
                "layout version {version} not committed everywhere within {limit_ms} ms: {:?}",
                self.nodes
                    .iter()
                    .flatten()
                    .map(|n| n.status().membership)
                    .collect::<Vec<_>>()
            );
            self.run_for(50);
        }
    }

    /// Registers (`d/` records) node `i` holds.
    fn registers(&self, i: usize) -> usize {
        self.engines[i]
            .scan_prefix(b"d/", usize::MAX)
            .expect("scan")
            .len()
    }

    fn values_readable_everywhere(&mut self, keys: usize, value_of: impl Fn(usize) -> String) {
        for at in self.members_up() {
            for k in 0..keys {
                let reply = self.call(at, get(&format!("key-{k}")));
                assert_eq!(
                    reply,
                    ClientReply::Value(Some(value_of(k).into_bytes())),
                    "key-{k} read at node {at}"
                );
            }
        }
    }
}

#[test]
fn a_joining_node_receives_its_ranges_and_reads_stay_current() {
    let mut cluster = Cluster::new(3);
    cluster.run_for(300);
    for k in 0..60 {
        assert_eq!(
            cluster.call(k % 3, put(&format!("key-{k}"), &format!("v{k}"))),
            ClientReply::Done
        );
    }
    let joiner = cluster.add_joiner();
    assert_eq!(cluster.node(joiner).status().membership.role, Role::Joining);
    // A joiner serves no clients.
    assert!(matches!(
        cluster.call(joiner, get("key-1")),
        ClientReply::Error(ClientError::Unavailable { .. })
    ));
    let spec = cluster.specs[joiner].clone();
    assert_eq!(
        cluster.call(0, ClientRequest::Admin(AdminRequest::Join(spec.clone()))),
        ClientReply::Done
    );
    // Writes during the change.
    for k in 0..20 {
        assert_eq!(
            cluster.call(k % 4, put(&format!("key-{k}"), &format!("w{k}"))),
            ClientReply::Done
        );
    }
    cluster.until_committed(2, 20_000);
    assert_eq!(cluster.node(joiner).status().membership.role, Role::Member);
    assert!(cluster.registers(joiner) > 0, "the new node received data");
    cluster.values_readable_everywhere(60, |k| {
        if k < 20 {
            format!("w{k}")
        } else {
            format!("v{k}")
        }
    });
    // Joining again is a no-op.
    assert_eq!(
        cluster.call(1, ClientRequest::Admin(AdminRequest::Join(spec))),
        ClientReply::Done
    );
    assert_eq!(cluster.node(1).status().layout.version(), 2);
}

#[test]
fn a_leaving_node_hands_off_before_it_stops_serving() {
    let mut cluster = Cluster::new(4);
    cluster.run_for(300);
    for k in 0..60 {
        assert_eq!(
            cluster.call(k % 4, put(&format!("key-{k}"), &format!("v{k}"))),
            ClientReply::Done
        );
    }
    assert_eq!(
        cluster.call(1, ClientRequest::Admin(AdminRequest::Leave(NodeId(1)))),
        ClientReply::Done
    );
    // A second change waits for the first.
    assert!(matches!(
        cluster.call(2, ClientRequest::Admin(AdminRequest::Leave(NodeId(2)))),
        ClientReply::Error(ClientError::Unavailable { .. })
    ));
    cluster.until_committed(2, 20_000);
    assert_eq!(cluster.node(0).status().membership.role, Role::Left);
    assert!(matches!(
        cluster.call(0, get("key-1")),
        ClientReply::Error(ClientError::Unavailable { .. })
    ));
    // With node 1 gone for good, every value is still on a majority of the rest.
    cluster.crash(0);
    cluster.values_readable_everywhere(60, |k| format!("v{k}"));
}

#[test]
fn a_dead_member_is_removed_and_its_ranges_rebuilt() {
    let mut cluster = Cluster::new(5);
    cluster.run_for(300);
    for k in 0..40 {
        assert_eq!(
            cluster.call(k % 5, put(&format!("key-{k}"), &format!("v{k}"))),
            ClientReply::Done
        );
    }
    cluster.crash(4);
    cluster.run_for(3_000);
    assert_eq!(
        cluster.call(0, ClientRequest::Admin(AdminRequest::Remove(NodeId(5)))),
        ClientReply::Done
    );
    cluster.until_committed(2, 20_000);
    cluster.values_readable_everywhere(40, |k| format!("v{k}"));
    // A node that restarts after it was removed learns so and serves nobody.
    cluster.restart(4);
    cluster.run_for(2_000);
    assert_eq!(cluster.node(4).status().membership.role, Role::Left);
}

#[test]
fn a_change_needs_a_majority_of_members() {
    let mut cluster = Cluster::new(3);
    cluster.run_for(300);
    let joiner = cluster.add_joiner();
    cluster.crash(1);
    cluster.crash(2);
    let spec = cluster.specs[joiner].clone();
    let reply = cluster.call(0, ClientRequest::Admin(AdminRequest::Join(spec)));
    assert!(
        matches!(reply, ClientReply::Error(ClientError::Unavailable { .. })),
        "{reply:?}"
    );
    assert_eq!(cluster.node(0).status().layout.version(), 1);
    assert_eq!(cluster.node(0).status().membership.pending_version, None);
}

#[test]
fn concurrent_changes_choose_one_layout() {
    let mut cluster = Cluster::new(5);
    cluster.run_for(300);
    let a = cluster.add_joiner();
    let b = cluster.add_joiner();
    let (spec_a, spec_b) = (cluster.specs[a].clone(), cluster.specs[b].clone());
    // Both proposals are in flight at once, at different coordinators.
    let first = cluster.request(0, ClientRequest::Admin(AdminRequest::Join(spec_a)));
    let second = cluster.request(3, ClientRequest::Admin(AdminRequest::Join(spec_b)));
    let first = cluster.wait(first, 10_000);
    let second = cluster.wait(second, 10_000);
    let done = [&first, &second]
        .iter()
        .filter(|r| ***r == ClientReply::Done)
        .count();
    assert_eq!(
        done, 1,
        "exactly one change is made: {first:?} / {second:?}"
    );
    cluster.until_committed(2, 20_000);
    let layouts: Vec<_> = cluster
        .nodes
        .iter()
        .flatten()
        .filter(|n| n.status().membership.role == Role::Member)
        .map(|n| n.status().layout)
        .collect();
    assert!(
        layouts.windows(2).all(|w| w[0] == w[1]),
        "one layout everywhere"
    );
    assert_eq!(layouts[0].nodes().len(), 6);
}

/// Node 4 keeps keys of at most 1 KiB; the others the default 8 KiB.
fn small_keys_on_node_4(config: &mut ringkv_core::node::NodeConfig) {
    if config.id == NodeId(4) {
        config.key_size_bytes_max = 1 << 10;
    }
}

#[test]
fn a_sync_that_cannot_hold_a_key_is_refused_not_counted() {
    // A joiner whose key limit is below a stored key's size: it must never count a
    // source read while skipping that key (it would be a "synced" replica without it).
    let mut cluster = Cluster::with(3, small_keys_on_node_4);
    cluster.run_for(300);
    let big = "k".repeat(2 << 10);
    assert_eq!(cluster.call(0, put(&big, "v")), ClientReply::Done);
    for k in 0..20 {
        assert_eq!(
            cluster.call(k % 3, put(&format!("key-{k}"), "v")),
            ClientReply::Done
        );
    }
    let joiner = cluster.add_joiner();
    let spec = cluster.node(joiner).join_spec("");
    assert_eq!(
        cluster.call(0, ClientRequest::Admin(AdminRequest::Join(spec))),
        ClientReply::Done
    );
    cluster.run_for(5_000);
    let status = cluster.node(joiner).status().membership;
    let history = cluster.node(joiner).layout_history().clone();
    let synced_itself =
        history.synced().contains(&NodeId(4)) || history.committed_by().contains(&NodeId(4));
    assert!(
        !synced_itself,
        "the joiner counted a sync that skipped a key: {status:?}"
    );
    assert!(status.counters.sync_pages_refused > 0, "{status:?}");
    if let Some(sync) = &status.sync {
        assert!(
            sync.refused.iter().any(|r| r.contains("key limit")),
            "{sync:?}"
        );
    }
    // The key stays readable through the nodes that hold it.
    assert_eq!(
        cluster.call(1, get(&big)),
        ClientReply::Value(Some(b"v".to_vec()))
    );
}

#[test]
fn a_store_that_lost_its_data_is_not_the_member() {
    // A member whose store is gone (a memory-backed replica reloaded, a wiped disk)
    // comes back under the same id: it must never ack, vote or coordinate as that
    // member, which acknowledged writes it no longer holds.
    let mut cluster = Cluster::new(3);
    cluster.run_for(300);
    let joiner = cluster.add_joiner();
    let spec = cluster.node(joiner).join_spec("");
    assert!(spec.identity.is_some());
    assert_eq!(
        cluster.call(0, ClientRequest::Admin(AdminRequest::Join(spec.clone()))),
        ClientReply::Done
    );
    cluster.until_committed(2, 20_000);
    for k in 0..30 {
        assert_eq!(
            cluster.call(k % 4, put(&format!("key-{k}"), "v1")),
            ClientReply::Done
        );
    }
    // Same id, empty store: a new identity secret.
    cluster.crash(joiner);
    let fresh: std::sync::Arc<dyn ringkv_core::storage::blockstore::BlockStore> =
        std::sync::Arc::new(ringkv_core::storage::blockstore::MemoryStore::new());
    cluster.restart_on(joiner, fresh);
    let restarted_at = cluster.delivered.len();
    // Writes keep arriving (the displaced store is one of the replicas of some keys).
    for k in 0..30 {
        let _ = cluster.call(k % 3, put(&format!("key-{k}"), "v2"));
    }
    cluster.run_for(3_000);
    assert_eq!(
        cluster.node(joiner).status().membership.role,
        Role::Displaced
    );
    let reply = cluster.call(joiner, get("key-1"));
    assert!(
        matches!(&reply, ClientReply::Error(ClientError::Unavailable { reason }) if reason.contains("rejoin")),
        "{reply:?}"
    );
    // Joining again under the same id with the new store is refused with the reason.
    let again = cluster.node(joiner).join_spec("");
    let reply = cluster.call(0, ClientRequest::Admin(AdminRequest::Join(again)));
    assert!(
        matches!(&reply, ClientReply::Error(ClientError::Unsupported { reason }) if reason.contains("bound to another store")),
        "{reply:?}"
    );
    // The displaced store answered no replica message as the member.
    let answered = cluster.delivered[restarted_at..]
        .iter()
        .any(|(from, _, message)| {
            *from == NodeId(joiner as u64 + 1)
                && matches!(
                    message,
                    ringkv_core::node::PeerMessage::ReadTagAck { .. }
                        | ringkv_core::node::PeerMessage::ReadAck { .. }
                        | ringkv_core::node::PeerMessage::WriteAck { .. }
                )
        });
    assert!(!answered, "the displaced store answered as the member");
    // The rest still serve every key.
    cluster.values_readable_everywhere(30, |_| "v2".into());
}

/// A shard joins into a process; a later join of the same member naming no process
/// (a zone or capacity change from an operator who does not know it) keeps its process,
/// and one naming another process is refused: its store lives where it runs, and a
/// spec placing it elsewhere would let one process hold two replicas of a key.
#[test]
fn a_member_keeps_its_process() {
    use ringkv_core::ring::ProcessId;
    let mut cluster = Cluster::new(3);
    cluster.run_for(300);
    let joiner = cluster.add_joiner();
    let shard = cluster.specs[joiner].clone().in_process(ProcessId(7));
    assert_eq!(
        cluster.call(0, ClientRequest::Admin(AdminRequest::Join(shard.clone()))),
        ClientReply::Done
    );
    cluster.until_committed(2, 20_000);
    let mut resized = cluster.specs[joiner].clone();
    resized.capacity = 2;
    assert_eq!(resized.process, None);
    assert_eq!(
        cluster.call(0, ClientRequest::Admin(AdminRequest::Join(resized))),
        ClientReply::Done
    );
    cluster.until_committed(3, 20_000);
    let layout = cluster.node(0).status().layout;
    let member = layout.node(shard.id).expect("member");
    assert_eq!((member.capacity, member.process), (2, Some(ProcessId(7))));
    let moved = shard.clone().in_process(ProcessId(8));
    let reply = cluster.call(0, ClientRequest::Admin(AdminRequest::Join(moved)));
    assert!(
        matches!(&reply, ClientReply::Error(ClientError::Unsupported { reason }) if reason.contains("never moves to another process")),
        "{reply:?}"
    );
    assert_eq!(cluster.node(0).status().layout.version(), 3);
}
