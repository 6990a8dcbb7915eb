//! Hand-written causality scenarios (the DVV paper's examples and the edge cases).

use super::super::{Dot, Siblings, VersionError, VersionVector};
use crate::ring::NodeId;

const A: NodeId = NodeId(1);
const B: NodeId = NodeId(2);

fn values<V: Clone>(state: &Siblings<V>) -> Vec<V> {
    state.values().cloned().collect()
}

#[test]
fn read_modify_write_replaces_and_blind_writes_are_siblings() {
    let mut state = Siblings::new();
    let first = state
        .update(&VersionVector::new(), A, "v1")
        .expect("counter");
    assert_eq!(first, Dot::new(A, 1));
    let read = state.context();
    state.update(&read, A, "v2").expect("counter");
    assert_eq!(values(&state), vec!["v2"]);
    // A blind write (no context) is concurrent with what is stored.
    state
        .update(&VersionVector::new(), A, "blind")
        .expect("counter");
    assert_eq!(values(&state), vec!["v2", "blind"]);
    // Writing with the latest context resolves both.
    state
        .update(&state.context(), A, "resolved")
        .expect("counter");
    assert_eq!(values(&state), vec!["resolved"]);
}

#[test]
fn same_coordinator_keeps_concurrent_writes_apart() {
    // The case plain per-server version vectors get wrong (Riak's sibling explosion /
    // lost update): two clients read the same state and write through the same node.
    let mut state = Siblings::new();
    state
        .update(&VersionVector::new(), A, "base")
        .expect("counter");
    let read = state.context();
    state.update(&read, A, "client-1").expect("counter");
    state.update(&read, A, "client-2").expect("counter");
    assert_eq!(values(&state), vec!["client-1", "client-2"]);
    // Client 1 writes again with the context its previous write returned ({A: 2}): it
    // supersedes its own earlier value but not client 2's.
    let after_first: VersionVector = [(A, 2)].into_iter().collect();
    state.update(&after_first, A, "client-1b").expect("counter");
    assert_eq!(values(&state), vec!["client-2", "client-1b"]);
}

#[test]
fn replicas_converge_and_superseded_values_stay_dead() {
    let (mut a, mut b) = (Siblings::new(), Siblings::new());
    a.update(&VersionVector::new(), A, 1).expect("counter");
    b.merge(&a);
    // Client reads from b, writes through b; a has not heard of it yet.
    b.update(&b.context(), B, 2).expect("counter");
    // Concurrently, a blind write at a.
    a.update(&VersionVector::new(), A, 3).expect("counter");
    let ab = a.merged(&b);
    assert_eq!(ab, b.merged(&a));
    assert_eq!(values(&ab), vec![3, 2]);
    // Old value 1 never resurrects, even merged from a stale copy.
    let mut stale = Siblings::new();
    stale.update(&VersionVector::new(), A, 1).expect("counter");
    assert_eq!(values(&ab.merged(&stale)), vec![3, 2]);
}

#[test]
fn context_from_another_replica_supersedes_values_not_yet_received() {
    let (mut a, mut b) = (Siblings::new(), Siblings::new());
    a.update(&VersionVector::new(), A, "x").expect("counter");
    let read_at_a = a.context();
    // The client writes through b, which never received "x".
    b.update(&read_at_a, B, "y").expect("counter");
    a.merge(&b);
    assert_eq!(values(&a), vec!["y"]);
}

#[test]
fn tombstones_are_ordinary_values() {
    let mut state: Siblings<Option<Vec<u8>>> = Siblings::new();
    state
        .update(&VersionVector::new(), A, Some(b"v".to_vec()))
        .expect("counter");
    state.update(&state.context(), B, None).expect("counter");
    assert_eq!(values(&state), vec![None]);
}

#[test]
fn a_coordinator_behind_its_context_still_issues_a_fresh_dot() {
    let mut state: Siblings<u8> = Siblings::new();
    let context: VersionVector = [(A, 7)].into_iter().collect();
    assert_eq!(state.update(&context, A, 1), Ok(Dot::new(A, 8)));
}

#[test]
fn exhausted_counter_is_refused_not_wrapped() {
    let mut state: Siblings<u8> = Siblings::new();
    let forged: VersionVector = [(A, u64::MAX)].into_iter().collect();
    assert_eq!(
        state.update(&forged, A, 1),
        Err(VersionError::CounterExhausted(A))
    );
    assert!(state.is_empty() && state.context().is_empty());
}

#[test]
fn same_dot_with_different_values_still_converges() {
    let (mut a, mut b) = (Siblings::new(), Siblings::new());
    a.update(&VersionVector::new(), A, 1).expect("counter");
    b.update(&VersionVector::new(), A, 2).expect("counter");
    assert_eq!(a.merged(&b), b.merged(&a));
    assert_eq!(values(&a.merged(&b)), vec![2]);
}
