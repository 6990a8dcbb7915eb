//! Membership changes on real `Node`s (shared harness, `common/`): a node joins and
//! receives its ranges, a member leaves after handing its ranges off, a dead member is
//! removed, and values written before and during each change stay readable.
//! Linearizability under faults during changes is the simulator's job (tests/).
#![cfg(not(target_arch = "wasm32"))]

use ringkv_core::node::{AdminRequest, ClientError, ClientReply, ClientRequest, Consistency, Role};
use ringkv_core::ring::NodeId;
use ringkv_core::storage::Engine;

mod common;
use common::*;

fn put(key: &str, value: &str) -> ClientRequest {
    ClientRequest::Put {
        key: key.into(),
        value: value.into(),
        consistency: Consistency::Linearizable,
    }
}

fn get(key: &str) -> ClientRequest {
    ClientRequest::Get {
        key: key.into(),
        consistency: Consistency::Linearizable,
    }
}

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
        for at in 0..self.nodes.len() {
            let member = self.nodes[at]
                .as_ref()
                .is_some_and(|n| n.status().membership.role == Role::Member);
            if !member {
                continue;
            }
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
