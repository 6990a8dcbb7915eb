//! How a node is set up: identity, static membership, timeouts and limits.

use crate::antientropy::MerkleConfig;
use crate::protocol::FRAME_SIZE_BYTES_MAX;
use crate::ring::{NodeId, NodeSpec, ProcessId, DEFAULT_REPLICAS};

use super::error::NodeError;

/// Largest key a client may use by default (the engine allows more; the cluster keeps
/// keys small because every replica message carries one).
pub const KEY_SIZE_BYTES_MAX_DEFAULT: usize = 8 << 10;
/// Largest value a client may store by default.
pub const VALUE_SIZE_BYTES_MAX_DEFAULT: usize = 1 << 20;
/// Bytes a data message spends besides its key and value (ids, tag, enum tags, length
/// prefixes; about 60 in practice). Key + value + this must fit one frame.
pub const MESSAGE_OVERHEAD_BYTES_MAX: usize = 4 << 10;
/// Upper bound on members: keeps a gossip frame (about 30 bytes per member) far below
/// the frame limit.
pub const MEMBERS_MAX: usize = 4096;
/// Gossip targets per round, at most (besides the occasional dead member).
pub const GOSSIP_FANOUT_MAX: usize = 4;
/// Largest causal context an eventual write may carry: a version vector has at most one
/// entry per member (`MEMBERS_MAX`), about 20 bytes each, plus a format byte.
pub const EVENTUAL_CONTEXT_SIZE_BYTES_MAX: usize = 96 << 10;
/// Anti-entropy exchanges in flight at once, at most (each holds at most one key page,
/// about 256 KiB, and pushes at most about 1 MiB per page).
pub const ANTI_ENTROPY_CONCURRENT_MAX: usize = 256;
/// Largest key when anti-entropy is on: a key page carries up to 256 KiB of keys plus
/// its cursor and one key that may exceed that, and must stay well inside a frame.
pub const ANTI_ENTROPY_KEY_SIZE_BYTES_MAX: usize = FRAME_SIZE_BYTES_MAX / 4;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    /// This node. Ignored in favour of the identity persisted in the engine, if any.
    pub id: NodeId,
    /// This node's failure domain; must match its entry in `members`.
    pub zone: String,
    /// This node's weight in capacity units; must match its entry in `members`.
    pub capacity: u32,
    /// The process this node runs in beside other shards (`NodeSpec::process`); must
    /// match its entry in `members`. `None`: a process of its own.
    pub process: Option<ProcessId>,
    /// Replication factor N.
    pub replicas: usize,
    /// The full initial member list, this node included; every node of a new cluster is
    /// started with the same list, and the ring is the `RingLayout` of it. Empty: the
    /// node waits to be added to an existing cluster (`AdminRequest::Join` sent to a
    /// member), and learns the layout from it. Ignored in favour of the membership
    /// persisted in the engine, if any.
    pub members: Vec<NodeSpec>,
    /// How long each phase of a coordinator operation waits for a quorum. A request
    /// therefore answers within at most twice this (two phases).
    pub request_timeout_ms: u64,
    /// Heartbeat bump and gossip round period.
    pub gossip_interval_ms: u64,
    /// Random live peers each gossip round goes to (1..=`GOSSIP_FANOUT_MAX`).
    pub gossip_fanout: usize,
    /// A member whose heartbeat has not risen for this long is suspect (still used).
    pub suspect_after_ms: u64,
    /// ... and for this long, dead: it no longer counts as a reachable replica.
    pub dead_after_ms: u64,
    pub key_size_bytes_max: usize,
    pub value_size_bytes_max: usize,
    /// Coordinator operations in flight at once; more are refused with `Overloaded`.
    pub in_flight_requests_max: usize,
    /// Peer messages waiting in the output queue; beyond this further sends are
    /// dropped (and counted), as a lossy network would. Client replies are never dropped.
    pub queued_sends_max: usize,
    /// Eventual mode: answers an eventual get waits for (R), 1..=`replicas`.
    pub eventual_r: usize,
    /// Eventual mode: durable copies an eventual put waits for (W), 1..=`replicas`,
    /// counting the coordinator's dot issuer.
    pub eventual_w: usize,
    /// Eventual mode: hints this node holds for other nodes, at most (all targets
    /// together). A write that would need one more is refused by this node, which then
    /// does not count toward that write's W; the coordinator reports which node was full.
    pub hints_queued_max: usize,
    /// Eventual mode: how often a node with hints checks whether their owners are alive
    /// (by gossip) and hands a batch off.
    pub hint_handoff_interval_ms: u64,
    /// Hints in flight to one owner at once (one batch).
    pub hint_handoff_batch_max: usize,
    /// Bytes of sibling state in one handoff batch, at most (at least one hint is sent).
    pub hint_handoff_batch_bytes_max: usize,
    // ---- Anti-entropy (node/ae/) ----
    /// Period of anti-entropy root rounds: each compares the roots of every range
    /// shared with the next live co-replica (round-robin) in `⌈shared / 256⌉` batches,
    /// one round trip. 0: never initiate (the node still answers peers and keeps its
    /// trees, so it is repaired by their rounds). Default 500 ms: with 5 nodes (512
    /// vnodes, N = 3) a node sends ~6 messages and ~13 KB per round (batches and the
    /// replies it owes), ~12 msg/s and ~26 KB/s, and compares with all 4 co-replicas
    /// every 2 s.
    pub anti_entropy_interval_ms: u64,
    /// Descents in flight at once (1..=`ANTI_ENTROPY_CONCURRENT_MAX`): only ranges whose
    /// roots differed take one; queued ones start as others finish, so this bounds
    /// sessions and in-flight messages, not how many ranges a round compares.
    pub anti_entropy_concurrent_max: usize,
    /// Tree shape per range. Must be the same on every node (mismatches are rejected
    /// as `DepthMismatch`, never mis-compared).
    pub anti_entropy_merkle: MerkleConfig,
    /// Register tombstone purge (`node/purge/`): at most one purge change (a layout
    /// epoch bump) per this interval, only while some member holds tombstones old
    /// enough; a deleted key's tombstone is dropped one to two intervals after the
    /// delete once every replica holds it. 0: never purge (tombstones are kept, and
    /// this node never confirms, so no member purges). Default 60 s.
    pub purge_interval_ms: u64,
    /// A membership change still pending this long after this node learned it, with a
    /// node it adds not synced and believed dead, is fenced by this node, which aborts
    /// it once the fences prove it can never commit (`ring/history.rs`). 0: never on
    /// its own (an admin `Abort` still does). Default 10 minutes.
    pub change_timeout_ms: u64,
    /// Fresh randomness from the host (the OS's, or the browser's `crypto`), from which a
    /// store opened for the first time makes its identity secret (`NodeSpec::identity`);
    /// unused once the store has one. All zeros (the default) still gives each store its
    /// own secret (mixed with id and clock), but a guessable one: hosts must fill it.
    pub fresh_identity: [u8; crate::ring::IDENTITY_SECRET_BYTES],
    /// Deliberate bugs for the simulator's mutation tests (`node/mutations.rs`): empty
    /// unless a test sets it. Exists only with the test-only feature `mutations`.
    #[cfg(feature = "mutations")]
    #[doc(hidden)]
    pub mutations: super::mutations::Mutations,
}

impl NodeConfig {
    /// A configuration with the defaults below for everything but identity and members.
    pub fn new(id: NodeId, zone: impl Into<String>, capacity: u32, members: Vec<NodeSpec>) -> Self {
        NodeConfig {
            id,
            zone: zone.into(),
            capacity,
            process: None,
            replicas: DEFAULT_REPLICAS,
            members,
            request_timeout_ms: 1000,
            gossip_interval_ms: 100,
            gossip_fanout: 2,
            suspect_after_ms: 500,
            dead_after_ms: 2000,
            key_size_bytes_max: KEY_SIZE_BYTES_MAX_DEFAULT,
            value_size_bytes_max: VALUE_SIZE_BYTES_MAX_DEFAULT,
            in_flight_requests_max: 1024,
            queued_sends_max: 16 << 10,
            eventual_r: 2,
            eventual_w: 2,
            hints_queued_max: 64 << 10,
            hint_handoff_interval_ms: 500,
            hint_handoff_batch_max: 64,
            hint_handoff_batch_bytes_max: 4 << 20,
            anti_entropy_interval_ms: 500,
            anti_entropy_concurrent_max: 8,
            anti_entropy_merkle: MerkleConfig::default(),
            purge_interval_ms: 60_000,
            change_timeout_ms: 600_000,
            fresh_identity: [0; crate::ring::IDENTITY_SECRET_BYTES],
            #[cfg(feature = "mutations")]
            mutations: super::mutations::Mutations::NONE,
        }
    }

    /// The configuration of member `spec` of `members`.
    pub fn for_member(spec: &NodeSpec, members: Vec<NodeSpec>) -> Self {
        NodeConfig {
            process: spec.process,
            ..NodeConfig::new(spec.id, spec.zone.clone(), spec.capacity, members)
        }
    }

    /// Checks everything that does not depend on persisted state.
    pub fn validate(&self) -> Result<(), NodeError> {
        let fail = |reason: String| Err(NodeError::InvalidConfig { reason });
        if self.replicas == 0 {
            return fail("replicas must be at least 1".into());
        }
        if self.members.len() > MEMBERS_MAX {
            return fail(format!(
                "members lists {} nodes; at most {MEMBERS_MAX}",
                self.members.len()
            ));
        }
        match self.members.iter().find(|spec| spec.id == self.id) {
            // Empty: a node waiting to be added by `AdminRequest::Join`.
            None if self.members.is_empty() => {}
            None => return fail(format!("members does not include this node ({})", self.id)),
            Some(spec)
                if spec.zone != self.zone
                    || spec.capacity != self.capacity
                    || spec.process != self.process =>
            {
                return fail(format!(
                    "this node's entry in members (zone {:?}, capacity {}, process {:?}) \
                     differs from zone {:?}, capacity {}, process {:?}",
                    spec.zone, spec.capacity, spec.process, self.zone, self.capacity, self.process
                ))
            }
            Some(_) => {}
        }
        if self.request_timeout_ms == 0 || self.gossip_interval_ms == 0 {
            return fail("request_timeout_ms and gossip_interval_ms must be positive".into());
        }
        if !(1..=GOSSIP_FANOUT_MAX).contains(&self.gossip_fanout) {
            return fail(format!("gossip_fanout must be 1..={GOSSIP_FANOUT_MAX}"));
        }
        if self.suspect_after_ms < self.gossip_interval_ms
            || self.dead_after_ms <= self.suspect_after_ms
        {
            return fail("need gossip_interval_ms <= suspect_after_ms < dead_after_ms".into());
        }
        // Two keys: a sync page carries an entry's key and its `next` cursor's key.
        let frame_need = self
            .key_size_bytes_max
            .saturating_mul(2)
            .saturating_add(self.value_size_bytes_max)
            .saturating_add(MESSAGE_OVERHEAD_BYTES_MAX);
        if frame_need > FRAME_SIZE_BYTES_MAX {
            return fail(format!(
                "2 × key_size_bytes_max + value_size_bytes_max (2 × {} + {}) leave no room \
                 in a {FRAME_SIZE_BYTES_MAX}-byte frame",
                self.key_size_bytes_max, self.value_size_bytes_max
            ));
        }
        if self.in_flight_requests_max == 0 || self.queued_sends_max == 0 {
            return fail("in_flight_requests_max and queued_sends_max must be positive".into());
        }
        if !(1..=self.replicas).contains(&self.eventual_r)
            || !(1..=self.replicas).contains(&self.eventual_w)
        {
            return fail(format!(
                "eventual_r ({}) and eventual_w ({}) must be 1..=replicas ({})",
                self.eventual_r, self.eventual_w, self.replicas
            ));
        }
        if self.hints_queued_max == 0
            || self.hint_handoff_interval_ms == 0
            || self.hint_handoff_batch_max == 0
            || self.hint_handoff_batch_bytes_max == 0
        {
            return fail(
                "hints_queued_max, hint_handoff_interval_ms, hint_handoff_batch_max and \
                 hint_handoff_batch_bytes_max must be positive"
                    .into(),
            );
        }
        if !(1..=ANTI_ENTROPY_CONCURRENT_MAX).contains(&self.anti_entropy_concurrent_max) {
            return fail(format!(
                "anti_entropy_concurrent_max must be 1..={ANTI_ENTROPY_CONCURRENT_MAX}"
            ));
        }
        if self.key_size_bytes_max > ANTI_ENTROPY_KEY_SIZE_BYTES_MAX {
            return fail(format!(
                "key_size_bytes_max must be at most {ANTI_ENTROPY_KEY_SIZE_BYTES_MAX} \
                 (anti-entropy key pages must fit a frame)"
            ));
        }
        Ok(())
    }

    /// Largest encoded sibling state of one eventual key: an `EventualMerge` carries a
    /// key and a state, and must fit one frame. Replicas refuse writes that would store
    /// a larger state, so every state they hold can be sent.
    pub fn eventual_state_size_bytes_max(&self) -> usize {
        // Two keys: a sync page carries an entry's key and its `next` cursor's key.
        FRAME_SIZE_BYTES_MAX
            .saturating_sub(self.key_size_bytes_max.saturating_mul(2))
            .saturating_sub(MESSAGE_OVERHEAD_BYTES_MAX)
    }

    /// Largest causal context an eventual write accepts: [`EVENTUAL_CONTEXT_SIZE_BYTES_MAX`],
    /// or less if key and value limits leave less room in an `EventualUpdate` frame.
    pub fn eventual_context_size_bytes_max(&self) -> usize {
        FRAME_SIZE_BYTES_MAX
            .saturating_sub(self.key_size_bytes_max)
            .saturating_sub(self.value_size_bytes_max)
            .saturating_sub(MESSAGE_OVERHEAD_BYTES_MAX)
            .min(EVENTUAL_CONTEXT_SIZE_BYTES_MAX)
    }

    /// Retransmission period of a phase's messages to replicas that have not answered:
    /// a quarter of the phase timeout, so a lost message costs at most a quarter of it.
    pub fn resend_interval_ms(&self) -> u64 {
        (self.request_timeout_ms / 4).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members() -> Vec<NodeSpec> {
        (1..=3)
            .map(|i| NodeSpec::new(i, format!("z{i}"), 1))
            .collect()
    }

    #[test]
    fn defaults_are_valid() {
        let config = NodeConfig::for_member(&NodeSpec::new(2, "z2", 1), members());
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(config.resend_interval_ms(), 250);
    }

    #[test]
    fn rejects_inconsistent_settings() {
        let base = NodeConfig::for_member(&NodeSpec::new(2, "z2", 1), members());
        let cases: [fn(&mut NodeConfig); 11] = [
            |c| c.id = NodeId(9),
            |c| c.zone = "elsewhere".into(),
            |c| c.replicas = 0,
            |c| {
                let me = c.id;
                c.members.retain(|spec| spec.id != me)
            },
            |c| c.request_timeout_ms = 0,
            |c| c.gossip_fanout = 0,
            |c| c.dead_after_ms = c.suspect_after_ms,
            |c| c.value_size_bytes_max = FRAME_SIZE_BYTES_MAX,
            |c| c.in_flight_requests_max = 0,
            |c| c.anti_entropy_concurrent_max = 0,
            |c| c.key_size_bytes_max = ANTI_ENTROPY_KEY_SIZE_BYTES_MAX + 1,
        ];
        for (i, change) in cases.iter().enumerate() {
            let mut config = base.clone();
            change(&mut config);
            assert!(
                matches!(config.validate(), Err(NodeError::InvalidConfig { .. })),
                "case {i} accepted"
            );
        }
    }

    #[test]
    fn eventual_settings_are_checked_and_limits_fit_a_frame() {
        let base = NodeConfig::for_member(&NodeSpec::new(2, "z2", 1), members());
        let cases: [fn(&mut NodeConfig); 5] = [
            |c| c.eventual_r = 0,
            |c| c.eventual_w = c.replicas + 1,
            |c| c.hints_queued_max = 0,
            |c| c.hint_handoff_interval_ms = 0,
            |c| c.hint_handoff_batch_max = 0,
        ];
        for (i, change) in cases.iter().enumerate() {
            let mut config = base.clone();
            change(&mut config);
            assert!(config.validate().is_err(), "case {i} accepted");
        }
        let state_max = base.eventual_state_size_bytes_max();
        assert!(state_max + base.key_size_bytes_max < FRAME_SIZE_BYTES_MAX);
        assert_eq!(
            base.eventual_context_size_bytes_max(),
            EVENTUAL_CONTEXT_SIZE_BYTES_MAX
        );
    }
}
