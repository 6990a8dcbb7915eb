//! Ending a membership change that cannot complete, on real `Node`s (shared harness,
//! `common/`): a change whose joiner died before it synced is aborted (on its own after
//! `change_timeout_ms`, or by an admin `Abort`) and every key is served again; a dead
//! member is force-removed where too few replicas survive for the majority rule, with
//! nothing lost; a removal that would lose a range's last copy is refused.
#![cfg(not(target_arch = "wasm32"))]

use ringkv_core::node::{
    AdminRequest, ClientError, ClientReply, ClientRequest, NodeConfig, PeerMessage,
};
use ringkv_core::ring::NodeId;

mod common;
use common::*;

const KEYS: usize = 40;

fn timeout_5s(config: &mut NodeConfig) {
    config.change_timeout_ms = 5_000;
}

fn never_on_its_own(config: &mut NodeConfig) {
    config.change_timeout_ms = 0;
}

fn two_replicas(config: &mut NodeConfig) {
    config.replicas = 2;
    config.change_timeout_ms = 0;
}

fn one_replica(config: &mut NodeConfig) {
    config.replicas = 1;
    config.eventual_r = 1;
    config.eventual_w = 1;
}

/// The joiner never receives its sync pages.
fn no_pages_to_the_joiner(joiner: NodeId, _: NodeId, to: NodeId, message: &PeerMessage) -> bool {
    to == joiner && matches!(message, PeerMessage::SyncPage(_))
}

fn admin(request: AdminRequest) -> ClientRequest {
    ClientRequest::Admin(request)
}

impl Cluster {
    fn pending_at(&self, i: usize) -> Option<u64> {
        self.node(i).status().membership.pending_version
    }

    /// Runs until nodes `0..n` all hold committed layout `version` with nothing
    /// pending, or panics after 20 s.
    fn until_settled(&mut self, n: usize, version: u64) {
        let deadline_ms = self.now_ms + 20_000;
        while (0..n).any(|i| {
            self.node(i).status().layout.version() != version || self.pending_at(i).is_some()
        }) {
            assert!(
                self.now_ms < deadline_ms,
                "layout v{version} not settled on nodes 0..{n}"
            );
            self.run_for(100);
        }
    }

    fn write_keys(&mut self, members: usize) {
        for k in 0..KEYS {
            self.put_ok(k % members, format!("key-{k}").as_bytes(), b"v");
        }
    }

    /// Every key reads back at every live member.
    fn every_key_served(&mut self) {
        for at in self.members_up() {
            for k in 0..KEYS {
                let reply = self.get_linearizable(at, format!("key-{k}").as_bytes());
                assert_eq!(
                    reply,
                    ClientReply::Value(Some(b"v".to_vec())),
                    "key-{k} read at node {at}"
                );
            }
        }
    }

    /// Adds a joiner through node 0, dropping the messages `drop(joiner, from, to,
    /// message)` says to while the change is chosen and for `ms` after. Returns the
    /// joiner's index.
    fn join_dropping(
        &mut self,
        drop: fn(NodeId, NodeId, NodeId, &PeerMessage) -> bool,
        ms: u64,
    ) -> usize {
        let joiner = self.add_joiner();
        let joiner_id = nid(joiner);
        self.filter = Some(Box::new(move |from, to, message| {
            drop(joiner_id, from, to, message)
        }));
        let spec = self.specs[joiner].clone();
        assert_eq!(
            self.call(0, admin(AdminRequest::Join(spec))),
            ClientReply::Done
        );
        self.run_for(ms);
        joiner
    }

    /// Adds a joiner through node 0 whose sync pages never arrive, then crashes it for
    /// good: the change is chosen and stays pending. Returns the joiner's index.
    fn join_and_lose_the_joiner(&mut self) -> usize {
        let joiner = self.join_dropping(no_pages_to_the_joiner, 200);
        self.crash(joiner);
        self.filter = None;
        let status = self.node(0).status();
        assert!(
            status.membership.pending_version.is_some(),
            "{:?}",
            status.membership
        );
        joiner
    }
}

#[test]
fn a_change_whose_joiner_died_is_aborted_after_the_timeout() {
    let mut cluster = Cluster::with(1, timeout_5s);
    cluster.run_for(300);
    cluster.write_keys(1);
    let joiner = cluster.join_and_lose_the_joiner();
    // Joint quorums need the dead joiner: writes fail while the change is pending.
    let request = cluster.request(
        0,
        ClientRequest::Put {
            key: b"key-0".to_vec(),
            value: b"v".to_vec(),
            consistency: ringkv_core::node::Consistency::Linearizable,
        },
    );
    let reply = cluster.wait(request, 3_000);
    assert!(matches!(reply, ClientReply::Error(_)), "{reply:?}");
    let status = cluster.node(0).status();
    assert!(status.membership.pending_age_ms.is_some());
    // A restart does not lose the timer: the change is timed again from the open.
    cluster.restart(0);
    cluster.run_for(8_000);
    let status = cluster.node(0).status();
    assert_eq!(
        status.membership.pending_version, None,
        "{:?}",
        status.membership
    );
    // The layout before the change, numbered after it.
    assert_eq!(status.layout.version(), 3);
    assert!(status.layout.node(nid(joiner)).is_none());
    assert_eq!(status.membership.counters.changes_aborted, 1);
    cluster.every_key_served();
    cluster.put_ok(0, b"after", b"abort");
}

#[test]
fn without_a_timeout_the_change_stays_pending() {
    let mut cluster = Cluster::with(1, never_on_its_own);
    cluster.run_for(300);
    cluster.write_keys(1);
    cluster.join_and_lose_the_joiner();
    cluster.run_for(20_000);
    let status = cluster.node(0).status();
    assert_eq!(status.membership.pending_version, Some(2));
    assert!(status.membership.pending_age_ms.unwrap_or(0) >= 20_000);
    // An admin abort ends it.
    assert_eq!(
        cluster.call(0, admin(AdminRequest::Abort)),
        ClientReply::Done
    );
    let status = cluster.node(0).status();
    assert_eq!(status.membership.pending_version, None);
    assert_eq!(status.layout.version(), 3);
    cluster.every_key_served();
    // Nothing left to abort.
    assert!(matches!(
        cluster.call(0, admin(AdminRequest::Abort)),
        ClientReply::Error(ClientError::Unsupported { .. })
    ));
}

#[test]
fn an_admin_abort_is_followed_by_every_member() {
    // N = 2: the ranges the joiner gains need it (a majority of two), so its death
    // stalls the change.
    let mut cluster = Cluster::with(3, two_replicas);
    cluster.run_for(300);
    cluster.write_keys(3);
    let joiner = cluster.join_and_lose_the_joiner();
    cluster.run_for(5_000);
    assert!(cluster.pending_at(1).is_some());
    assert_eq!(
        cluster.call(2, admin(AdminRequest::Abort)),
        ClientReply::Done
    );
    cluster.until_settled(3, 3);
    assert!(cluster.node(1).status().layout.node(nid(joiner)).is_none());
    cluster.every_key_served();
    // The next change gets the next version.
    let joiner_2 = cluster.add_joiner();
    let spec = cluster.specs[joiner_2].clone();
    assert_eq!(
        cluster.call(0, admin(AdminRequest::Join(spec))),
        ClientReply::Done
    );
    cluster.until_settled(1, 4);
    cluster.every_key_served();
}

#[test]
fn a_dead_member_of_a_two_replica_ring_is_force_removed_without_loss() {
    let mut cluster = Cluster::with(3, two_replicas);
    cluster.run_for(300);
    cluster.write_keys(3);
    cluster.crash(2);
    cluster.run_for(3_000);
    // A majority of {n1 or n2, n3} is both: the plain removal names --force.
    let reply = cluster.call(0, admin(AdminRequest::Remove(NodeId(3))));
    match &reply {
        ClientReply::Error(ClientError::Unsupported { reason }) => {
            assert!(reason.contains("--force"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        cluster.call(0, admin(AdminRequest::ForceRemove(NodeId(3)))),
        ClientReply::Done
    );
    cluster.until_settled(2, 2);
    cluster.every_key_served();
}

#[test]
fn forced_removal_with_two_of_three_replicas_alive_loses_nothing() {
    let mut cluster = Cluster::new(4);
    cluster.run_for(300);
    cluster.write_keys(4);
    cluster.crash(3);
    cluster.run_for(3_000);
    assert_eq!(
        cluster.call(1, admin(AdminRequest::ForceRemove(NodeId(4)))),
        ClientReply::Done
    );
    cluster.until_settled(3, 2);
    cluster.every_key_served();
    // Each key is on its three new replicas, not only on the two survivors.
    for k in 0..KEYS {
        let holders = (0..3)
            .filter(|i| cluster.stored(*i, format!("key-{k}").as_bytes()).is_some())
            .count();
        assert_eq!(holders, 3, "key-{k}");
    }
}

#[test]
fn a_removal_that_would_lose_the_last_copy_is_refused() {
    let mut cluster = Cluster::with(3, one_replica);
    cluster.run_for(300);
    cluster.write_keys(3);
    cluster.crash(2);
    cluster.run_for(3_000);
    let reply = cluster.call(0, admin(AdminRequest::ForceRemove(NodeId(3))));
    match &reply {
        ClientReply::Error(ClientError::Unsupported { reason }) => assert!(
            reason.contains("last copy of range") && reason.contains("n3 is its only replica"),
            "{reason}"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(cluster.node(0).status().layout.version(), 1);
}

/// The joiner's reports reach n1 alone: n1 hears it synced, nobody else does.
fn reports_from_the_joiner_to_n1_only(
    joiner: NodeId,
    from: NodeId,
    to: NodeId,
    message: &PeerMessage,
) -> bool {
    from == joiner && to != NodeId(1) && matches!(message, PeerMessage::Layout(_))
}

impl Cluster {
    /// A 3-member N = 2 cluster whose joiner synced, told n1 alone, and died for good.
    /// Returns the joiner's id.
    fn joiner_told_one_member_and_died(&mut self) -> NodeId {
        self.run_for(300);
        self.write_keys(3);
        let joiner = self.join_dropping(reports_from_the_joiner_to_n1_only, 2_000);
        let status = self.node(0).status().membership;
        // n1 holds the joiner's claim but one holder of three does not count: it has
        // not committed alone (the others could never have learned that).
        assert_eq!(self.pending_at(0), Some(2), "{status:?}");
        assert!(
            status.synced.len() >= 2,
            "the old members synced: {status:?}"
        );
        self.crash(joiner);
        self.filter = None;
        nid(joiner)
    }
}

#[test]
fn a_joiner_that_told_one_member_it_synced_is_aborted() {
    let mut cluster = Cluster::with(3, two_replicas);
    cluster.joiner_told_one_member_and_died();
    cluster.run_for(2_000);
    assert_eq!(cluster.pending_at(1), Some(2));
    // n2 and n3 fence holding no claim of the joiner's: it can never be counted.
    assert_eq!(
        cluster.call(1, admin(AdminRequest::Abort)),
        ClientReply::Done
    );
    cluster.until_settled(3, 3);
    cluster.every_key_served();
}

#[test]
fn a_joiner_declared_gone_by_force_removal_is_aborted() {
    let mut cluster = Cluster::with(3, two_replicas);
    let joiner_id = cluster.joiner_told_one_member_and_died();
    assert_eq!(
        cluster.call(0, admin(AdminRequest::ForceRemove(joiner_id))),
        ClientReply::Done
    );
    cluster.until_settled(3, 3);
    cluster.every_key_served();
}

#[test]
fn a_change_waiting_on_a_live_node_is_not_fenced_and_does_not_spin() {
    let mut cluster = Cluster::with(1, timeout_5s);
    cluster.run_for(300);
    cluster.write_keys(1);
    // The joiner lives, but never receives its pages.
    cluster.join_dropping(no_pages_to_the_joiner, 10_000);
    let status = cluster.node(0).status();
    assert_eq!(status.membership.pending_version, Some(2));
    assert!(
        status.membership.fenced.is_empty(),
        "{:?}",
        status.membership
    );
    // Past the timeout, its next look is a resend interval away, not due at once.
    let now_ms = cluster.local_ms(0);
    let next_ms = cluster.node(0).poll_timeout().expect("timers");
    assert!(next_ms > now_ms, "due at {next_ms}, now {now_ms}");
}
