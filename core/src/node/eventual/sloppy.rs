//! The sloppy quorum of an eventual key: the first N nodes believed alive on the key's
//! ring walk, preferring its preference list.
//!
//! Preference-list nodes believed alive come first (in preference order). Each one
//! believed dead is replaced by a *fallback*: the next node believed alive that the ring
//! walk from the key's position meets and that is not in the preference list. A
//! fallback never shares a process (`NodeSpec::process`) with another node of the set,
//! so each ack is from a distinct failure domain, as on the preference list. A
//! fallback stands in for one specific owner (`hint_for`): it keeps a durable hint for
//! that owner and hands it off once gossip shows the owner alive again.
//!
//! With fewer live nodes than N the set is smaller; the coordinator refuses the request
//! when it is smaller than R (get) or W (put). Every node computes the same walk from the
//! same layout, but liveness is each coordinator's own view, so two coordinators may
//! pick different fallbacks: harmless, since states only ever merge.

use crate::ring::{key_position, NodeId, NodeSpec, RingLayout};

/// One node of a key's sloppy quorum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Target {
    pub node: NodeId,
    /// The preference-list node this fallback stands in for; `None` for an owner.
    pub hint_for: Option<NodeId>,
}

/// The sloppy quorum of `key` under the liveness verdict `alive`.
pub(crate) fn sloppy_targets(
    layout: &RingLayout,
    key: &[u8],
    alive: impl Fn(NodeId) -> bool,
) -> Vec<Target> {
    let preference = layout.preference_list(key);
    let mut targets: Vec<Target> = preference
        .iter()
        .filter(|node| alive(**node))
        .map(|node| Target {
            node: *node,
            hint_for: None,
        })
        .collect();
    let mut stand_ins_needed = preference.iter().filter(|node| !alive(**node));
    let Some(mut owner) = stand_ins_needed.next() else {
        return targets;
    };
    // Walk the ring from the key's position: each physical node once, in clockwise
    // order of its first token. Bounded by the token count, and stops early once every
    // token holder has been met.
    let tokens = layout.tokens();
    let start = tokens.partition_point(|(token, _)| *token < key_position(key));
    let holders = layout.token_holder_count();
    let mut met: Vec<NodeId> = Vec::with_capacity(holders);
    for step in 0..tokens.len() {
        if met.len() >= holders {
            break;
        }
        let Some((_, node)) = tokens.get((start + step) % tokens.len()) else {
            break;
        };
        if met.contains(node) {
            continue;
        }
        met.push(*node);
        if preference.contains(node) || !alive(*node) {
            continue;
        }
        // Never a second holder of the write in one process: a stand-in that shares a
        // target's process would fall with it, and the write would count an ack twice
        // for one failure domain (W acks must mean W processes).
        let domain = layout.node(*node).map(NodeSpec::domain);
        let shares_process = targets
            .iter()
            .any(|target| layout.node(target.node).map(NodeSpec::domain) == domain);
        if domain.is_none() || shares_process {
            continue;
        }
        targets.push(Target {
            node: *node,
            hint_for: Some(*owner),
        });
        match stand_ins_needed.next() {
            Some(next) => owner = next,
            None => break,
        }
    }
    targets
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::ProcessId;

    fn layout(n: u64) -> RingLayout {
        RingLayout::from_parts(
            1,
            3,
            64,
            (1..=n).map(|i| NodeSpec::new(i, format!("z{i}"), 1)),
        )
        .expect("layout")
    }

    #[test]
    fn all_owners_alive_means_the_preference_list() {
        let ring = layout(5);
        let targets = sloppy_targets(&ring, b"k", |_| true);
        let nodes: Vec<NodeId> = targets.iter().map(|t| t.node).collect();
        assert_eq!(nodes, ring.preference_list(b"k"));
        assert!(targets.iter().all(|t| t.hint_for.is_none()));
    }

    #[test]
    fn dead_owners_get_distinct_live_fallbacks_in_walk_order() {
        let ring = layout(6);
        for key in [&b"a"[..], b"b", b"some/key", b""] {
            let preference = ring.preference_list(key);
            let dead = [preference[0], preference[2]];
            let targets = sloppy_targets(&ring, key, |node| !dead.contains(&node));
            assert_eq!(targets.len(), 3);
            assert_eq!(
                targets[0],
                Target {
                    node: preference[1],
                    hint_for: None
                }
            );
            assert_eq!(targets[1].hint_for, Some(dead[0]));
            assert_eq!(targets[2].hint_for, Some(dead[1]));
            for fallback in &targets[1..] {
                assert!(!preference.contains(&fallback.node));
            }
            assert_ne!(targets[1].node, targets[2].node);
            // The first fallback is the first non-owner the walk meets.
            let start = ring
                .tokens()
                .partition_point(|(token, _)| *token < key_position(key));
            let first_other = (0..ring.tokens().len())
                .map(|step| ring.tokens()[(start + step) % ring.tokens().len()].1)
                .find(|node| !preference.contains(node));
            assert_eq!(Some(targets[1].node), first_other);
        }
    }

    /// Three processes of two shards each: a dead owner's stand-in is never in the
    /// process of a live target (the fallback walk would otherwise often meet a shard
    /// of an owner's process first).
    #[test]
    fn fallbacks_never_share_a_live_target_process() {
        let specs = (1..=6u64).map(|i| {
            let process = i.div_ceil(2);
            NodeSpec::new(i, format!("z{process}"), 1).in_process(ProcessId(process))
        });
        let ring = RingLayout::from_parts(1, 2, 64, specs).expect("layout");
        let domain = |node: NodeId| ring.node(node).map(NodeSpec::domain);
        let mut fallbacks = 0;
        for index in 0..200u32 {
            let key = index.to_le_bytes();
            let preference = ring.preference_list(&key);
            let dead = preference[1];
            let targets = sloppy_targets(&ring, &key, |node| node != dead);
            assert_eq!(targets.len(), 2, "{targets:?}");
            assert_ne!(
                domain(targets[0].node),
                domain(targets[1].node),
                "{targets:?}"
            );
            fallbacks += usize::from(targets[1].hint_for == Some(dead));
        }
        assert_eq!(fallbacks, 200);
    }

    #[test]
    fn too_few_live_nodes_shrink_the_set() {
        let ring = layout(4);
        let preference = ring.preference_list(b"k");
        let alive_one = preference[1];
        let targets = sloppy_targets(&ring, b"k", |node| node == alive_one);
        assert_eq!(
            targets,
            vec![Target {
                node: alive_one,
                hint_for: None
            }]
        );
        assert!(sloppy_targets(&ring, b"k", |_| false).is_empty());
        assert!(sloppy_targets(&RingLayout::new(3), b"k", |_| true).is_empty());
    }
}
