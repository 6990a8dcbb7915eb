//! Lattice laws and causality guarantees of [`Siblings`] over arbitrary histories.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::super::{Dot, Siblings, VersionVector};
use super::sim::{arb_ops, node, Cluster, Op, REPLICAS};
use crate::ring::NodeId;

/// Arbitrary states, including ones no correct history produces: forged contexts,
/// colliding dots with different values across states.
fn arb_state() -> impl Strategy<Value = Siblings<u8>> {
    let context = prop::collection::btree_map(1u64..4, 0u64..5, 0..3);
    prop::collection::vec((context, 1u64..4, any::<u8>(), any::<bool>()), 0..6).prop_map(|steps| {
        let (mut state, mut other) = (Siblings::new(), Siblings::new());
        for (context, coordinator, value, merge) in steps {
            let context: VersionVector = context.into_iter().map(|(n, c)| (NodeId(n), c)).collect();
            let target = if merge { &mut other } else { &mut state };
            target
                .update(&context, NodeId(coordinator), value)
                .expect("small counters");
            if merge {
                state.merge(&other);
            }
        }
        state
    })
}

fn dots<V>(state: &Siblings<V>) -> BTreeSet<Dot> {
    state.iter().map(|(dot, _)| dot).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn merge_is_a_join_on_arbitrary_states(a in arb_state(), b in arb_state(), c in arb_state()) {
        prop_assert_eq!(a.merged(&b), b.merged(&a));
        prop_assert_eq!(a.merged(&b).merged(&c), a.merged(&b.merged(&c)));
        prop_assert_eq!(&a.merged(&a), &a);
        // The join is an upper bound: merging either side in again changes nothing.
        let ab = a.merged(&b);
        prop_assert_eq!(&ab.merged(&a), &ab);
    }

    #[test]
    fn merge_is_a_join_on_history_states(ops in arb_ops(3, true, 40)) {
        let cluster = Cluster::run(3, &ops);
        let [a, b, c] = [&cluster.replicas[0], &cluster.replicas[1], &cluster.replicas[2]];
        prop_assert_eq!(a.merged(b), b.merged(a));
        prop_assert_eq!(a.merged(b).merged(c), a.merged(&b.merged(c)));
        prop_assert_eq!(&a.merged(a), a);
    }

    #[test]
    fn a_write_with_a_reads_context_supersedes_everything_read(
        ops in arb_ops(3, true, 40), read_at in 0..REPLICAS, write_at in 0..REPLICAS,
    ) {
        let mut cluster = Cluster::run(3, &ops);
        let read = cluster.replicas[read_at].clone();
        let dot = cluster.write(write_at, &read.context());
        let converged = cluster.converged();
        prop_assert!(dots(&converged).is_disjoint(&dots(&read)));
        prop_assert!(dots(&converged).contains(&dot));
    }

    #[test]
    fn concurrent_writes_with_one_context_both_survive(
        ops in arb_ops(3, true, 40), read_at in 0..REPLICAS, first_at in 0..REPLICAS, second_at in 0..REPLICAS,
    ) {
        let mut cluster = Cluster::run(3, &ops);
        let context = cluster.replicas[read_at].context();
        let first = cluster.write(first_at, &context);
        let second = cluster.write(second_at, &context);
        prop_assert_ne!(first, second);
        let converged = cluster.converged();
        prop_assert!(dots(&converged).contains(&first) && dots(&converged).contains(&second));
    }

    #[test]
    fn siblings_are_bounded_by_concurrent_writers(clients in 1usize..5, ops in arb_ops(4, false, 80)) {
        // Clients that keep writing with the context of their last write/read (no blind
        // writes): at most one live value per client anywhere, whatever the replication.
        let ops: Vec<Op> = ops.into_iter().filter(|op| match op {
            Op::Write { client, .. } | Op::Read { client, .. } => *client < clients,
            _ => true,
        }).collect();
        let mut cluster = Cluster::new(clients);
        for op in &ops {
            cluster.apply(op);
            for state in &cluster.replicas {
                prop_assert!(state.len() <= clients, "{} siblings for {} clients", state.len(), clients);
            }
        }
        prop_assert!(cluster.converged().len() <= clients);
    }

    #[test]
    fn replicas_converge_to_exactly_the_unsuperseded_writes(
        ops in arb_ops(3, true, 60), order in Just((0..REPLICAS).collect::<Vec<_>>()).prop_shuffle(),
    ) {
        let cluster = Cluster::run(3, &ops);
        let forward = cluster.converged();
        let shuffled = order.iter().fold(Siblings::new(), |acc, i| acc.merged(&cluster.replicas[*i]));
        prop_assert_eq!(&forward, &shuffled);
        // Gossip to quiescence: every replica ends in the same state.
        let mut replicas = cluster.replicas.clone();
        for to in 0..REPLICAS {
            for from in 0..REPLICAS {
                let source = replicas[from].clone();
                replicas[to].merge(&source);
            }
        }
        for to in 0..REPLICAS {
            for from in 0..REPLICAS {
                let source = replicas[from].clone();
                replicas[to].merge(&source);
            }
        }
        for state in &replicas {
            prop_assert_eq!(state, &forward);
        }
        // No lost write, no resurrection: live = writes no other write's context saw.
        let expected: BTreeSet<Dot> = cluster.writes.iter()
            .filter(|w| !cluster.writes.iter().any(|later| later.context.contains(w.dot)))
            .map(|w| w.dot)
            .collect();
        prop_assert_eq!(dots(&forward), expected);
        // Dots are unique: each write's value sits under its own dot.
        for (dot, value) in forward.iter() {
            prop_assert_eq!(cluster.writes[*value as usize].dot, dot);
        }
        let _ = node(0);
    }
}
