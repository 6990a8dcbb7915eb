//! Heartbeat-counter gossip failure detection.
//!
//! Every round a node bumps its own heartbeat and pushes its whole table to a few
//! random peers; receivers keep the larger `(incarnation, heartbeat)` per member. A
//! member is judged only by *local* time since its heartbeat last rose here, so clocks
//! of different nodes never meet (hosts may hand each node a skewed clock; only
//! differences of one node's own clock are used).
//!
//! The verdict affects only the coordinator's "enough replicas believed alive?" check
//! and gossip targets, never ring ownership.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::protocol::GossipEntry;
use crate::rand::SplitMix64;
use crate::ring::NodeId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MemberState {
    /// Heartbeat rose within `suspect_after_ms`.
    Alive,
    /// Not for `suspect_after_ms`: still counted as reachable (it may just be slow).
    Suspect,
    /// Not for `dead_after_ms`: not counted as a reachable replica.
    Dead,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Liveness {
    pub incarnation: u64,
    pub heartbeat: u64,
    /// Local time the heartbeat last rose (or the node opened, before any rise).
    pub rose_at_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GossipTimings {
    pub interval_ms: u64,
    pub fanout: usize,
    pub suspect_after_ms: u64,
    pub dead_after_ms: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct MergeOutcome {
    /// Members whose heartbeat rose.
    pub risen: usize,
    /// Entries about nodes that are not members (ignored: membership is static).
    pub unknown: usize,
}

#[derive(Debug, Clone)]
pub(crate) struct FailureDetector {
    me: NodeId,
    incarnation: u64,
    heartbeat: u64,
    /// Every member but this node.
    peers: BTreeMap<NodeId, Liveness>,
    timings: GossipTimings,
    next_round_ms: u64,
}

impl FailureDetector {
    /// Peers start alive as of `now_ms` (optimistic: a fresh cluster is usable at once;
    /// a peer that never speaks is suspect after `suspect_after_ms`, dead after
    /// `dead_after_ms`). The first round is jittered so nodes started together do not
    /// gossip in lockstep.
    pub fn new(
        me: NodeId,
        incarnation: u64,
        members: impl IntoIterator<Item = NodeId>,
        timings: GossipTimings,
        now_ms: u64,
        rng: &mut SplitMix64,
    ) -> Self {
        let fresh = Liveness {
            incarnation: 0,
            heartbeat: 0,
            rose_at_ms: now_ms,
        };
        FailureDetector {
            me,
            incarnation,
            heartbeat: 0,
            peers: members
                .into_iter()
                .filter(|id| *id != me)
                .map(|id| (id, fresh))
                .collect(),
            timings,
            next_round_ms: now_ms.saturating_add(rng.below(timings.interval_ms)),
        }
    }

    pub fn next_round_ms(&self) -> u64 {
        self.next_round_ms
    }

    /// The member list changed (a layout change): keeps what is known of remaining
    /// members, starts new ones alive as of `now_ms` (like `new`), forgets the rest.
    pub fn set_members(&mut self, members: impl IntoIterator<Item = NodeId>, now_ms: u64) {
        let fresh = Liveness {
            incarnation: 0,
            heartbeat: 0,
            rose_at_ms: now_ms,
        };
        let mut peers = BTreeMap::new();
        for id in members.into_iter().filter(|id| *id != self.me) {
            peers.insert(id, self.peers.get(&id).copied().unwrap_or(fresh));
        }
        self.peers = peers;
    }

    pub fn is_member(&self, id: NodeId) -> bool {
        id == self.me || self.peers.contains_key(&id)
    }

    pub fn state(&self, id: NodeId, now_ms: u64) -> MemberState {
        if id == self.me {
            return MemberState::Alive;
        }
        let Some(liveness) = self.peers.get(&id) else {
            return MemberState::Dead;
        };
        let quiet_ms = now_ms.saturating_sub(liveness.rose_at_ms);
        if quiet_ms >= self.timings.dead_after_ms {
            MemberState::Dead
        } else if quiet_ms >= self.timings.suspect_after_ms {
            MemberState::Suspect
        } else {
            MemberState::Alive
        }
    }

    /// Whether `id` counts as a reachable replica (alive or suspect).
    pub fn believed_alive(&self, id: NodeId, now_ms: u64) -> bool {
        self.state(id, now_ms) != MemberState::Dead
    }

    pub fn liveness(&self, id: NodeId) -> Option<Liveness> {
        if id == self.me {
            return Some(Liveness {
                incarnation: self.incarnation,
                heartbeat: self.heartbeat,
                rose_at_ms: 0,
            });
        }
        self.peers.get(&id).copied()
    }

    /// The table as sent: every member including this node.
    pub fn entries(&self) -> Vec<GossipEntry> {
        let me = GossipEntry {
            id: self.me,
            incarnation: self.incarnation,
            heartbeat: self.heartbeat,
        };
        std::iter::once(me)
            .chain(self.peers.iter().map(|(id, liveness)| GossipEntry {
                id: *id,
                incarnation: liveness.incarnation,
                heartbeat: liveness.heartbeat,
            }))
            .collect()
    }

    /// Folds a received table in. Entries about this node are ignored (only it
    /// advances its own heartbeat); entries about non-members are counted and ignored.
    pub fn merge(&mut self, entries: &[GossipEntry], now_ms: u64) -> MergeOutcome {
        let mut outcome = MergeOutcome::default();
        for entry in entries {
            if entry.id == self.me {
                continue;
            }
            let Some(liveness) = self.peers.get_mut(&entry.id) else {
                outcome.unknown += 1;
                continue;
            };
            if entry.version() > (liveness.incarnation, liveness.heartbeat) {
                *liveness = Liveness {
                    incarnation: entry.incarnation,
                    heartbeat: entry.heartbeat,
                    rose_at_ms: now_ms,
                };
                outcome.risen += 1;
            }
        }
        outcome
    }

    /// Runs a round if one is due: bumps the heartbeat and picks targets, `fanout`
    /// random non-dead peers plus, with probability `dead / (live + 1)`, one dead peer
    /// (otherwise two sides that declared each other dead during a partition would never
    /// speak again). Returns the targets; the caller sends them `entries()`.
    pub fn round(&mut self, now_ms: u64, rng: &mut SplitMix64) -> Option<Vec<NodeId>> {
        if now_ms < self.next_round_ms {
            return None;
        }
        // Late hosts get one round, not a burst of catch-up rounds.
        self.next_round_ms = now_ms.saturating_add(self.timings.interval_ms);
        self.heartbeat = self.heartbeat.saturating_add(1);
        let (mut live, dead): (Vec<NodeId>, Vec<NodeId>) = self
            .peers
            .keys()
            .partition(|id| self.believed_alive(**id, now_ms));
        let mut targets = Vec::with_capacity(self.timings.fanout + 1);
        // Partial Fisher-Yates: the first `fanout` slots become a uniform sample.
        for slot in 0..self.timings.fanout.min(live.len()) {
            let remaining = (live.len() - slot) as u64;
            let pick = slot + rng.below(remaining) as usize;
            live.swap(slot, pick);
            targets.push(live[slot]);
        }
        if !dead.is_empty() && rng.below(live.len() as u64 + 1) < dead.len() as u64 {
            if let Some(id) = dead.get(rng.below(dead.len() as u64) as usize) {
                targets.push(*id);
            }
        }
        Some(targets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMINGS: GossipTimings = GossipTimings {
        interval_ms: 100,
        fanout: 2,
        suspect_after_ms: 500,
        dead_after_ms: 2000,
    };

    fn detector(rng: &mut SplitMix64) -> FailureDetector {
        FailureDetector::new(NodeId(1), 7, (1..=5).map(NodeId), TIMINGS, 1000, rng)
    }

    fn entry(id: u64, incarnation: u64, heartbeat: u64) -> GossipEntry {
        GossipEntry {
            id: NodeId(id),
            incarnation,
            heartbeat,
        }
    }

    #[test]
    fn states_follow_local_time_since_the_heartbeat_rose() {
        let mut rng = SplitMix64::new(1);
        let mut fd = detector(&mut rng);
        assert_eq!(fd.state(NodeId(2), 1000), MemberState::Alive);
        assert_eq!(fd.state(NodeId(2), 1500), MemberState::Suspect);
        assert_eq!(fd.state(NodeId(2), 3000), MemberState::Dead);
        assert_eq!(fd.state(NodeId(9), 1000), MemberState::Dead); // not a member
        assert_eq!(fd.state(NodeId(1), 99_999), MemberState::Alive); // self
        let outcome = fd.merge(&[entry(2, 1, 3), entry(9, 1, 1), entry(1, 99, 99)], 2900);
        assert_eq!(
            outcome,
            MergeOutcome {
                risen: 1,
                unknown: 1
            }
        );
        assert_eq!(fd.state(NodeId(2), 3000), MemberState::Alive);
        // Same or older evidence does not count as a rise.
        assert_eq!(fd.merge(&[entry(2, 1, 3), entry(2, 0, 50)], 5000).risen, 0);
        assert_eq!(fd.state(NodeId(2), 5000), MemberState::Dead);
        // A restart (new incarnation, heartbeat from 0) is newer.
        assert_eq!(fd.merge(&[entry(2, 2, 0)], 5000).risen, 1);
        assert_eq!(fd.state(NodeId(2), 5000), MemberState::Alive);
    }

    #[test]
    fn rounds_bump_the_heartbeat_and_pick_bounded_distinct_targets() {
        let mut rng = SplitMix64::new(2);
        let mut fd = detector(&mut rng);
        let first = fd.next_round_ms();
        assert!((1000..1100).contains(&first));
        assert_eq!(fd.round(first - 1, &mut rng), None);
        for round in 1..=50u64 {
            let now = fd.next_round_ms();
            let targets = fd.round(now, &mut rng).expect("due");
            assert!((2..=3).contains(&targets.len()));
            assert_ne!(targets[0], targets[1]);
            assert!(!targets.contains(&NodeId(1)));
            assert_eq!(fd.liveness(NodeId(1)).expect("self").heartbeat, round);
            // Keep peers 2 and 3 alive; 4 and 5 go dead after 2 s.
            fd.merge(&[entry(2, 1, round), entry(3, 1, round)], now);
        }
        let now = fd.next_round_ms();
        assert_eq!(fd.state(NodeId(4), now), MemberState::Dead);
        let mut dead_contacts = 0;
        for _ in 0..300 {
            let now = fd.next_round_ms();
            fd.merge(&[entry(2, 1, now), entry(3, 1, now)], now);
            let targets = fd.round(now, &mut rng).expect("due");
            assert!(targets.len() <= 3);
            assert!(targets[..2]
                .iter()
                .all(|id| [NodeId(2), NodeId(3)].contains(id)));
            dead_contacts += targets.len() - 2;
        }
        // Dead peers are still contacted now and then (about 2/3 of rounds here).
        assert!((100..=300).contains(&dead_contacts), "{dead_contacts}");
    }
}
