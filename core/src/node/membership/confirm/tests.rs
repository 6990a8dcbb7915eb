//! Confirmation rules: what a node adopts from which reports.

use std::collections::BTreeMap;

use super::{confirm, is_one_change};
use crate::protocol::{Ballot, LayoutReport};
use crate::ring::{IdentityDigest, LayoutHistory, NodeId, NodeSpec, RingLayout};

fn layout(version: u64, ids: &[u64]) -> RingLayout {
    RingLayout::from_parts(
        version,
        3,
        16,
        ids.iter().map(|id| NodeSpec::new(*id, format!("z{id}"), 1)),
    )
    .expect("layout")
}

fn report(history: &LayoutHistory) -> LayoutReport {
    LayoutReport {
        history: history.clone(),
        vote: None,
    }
}

fn pending(committed: &RingLayout, next: &RingLayout) -> LayoutHistory {
    let mut history = LayoutHistory::new(committed.clone());
    history.begin(next.clone()).expect("begin");
    history
}

const ME: NodeId = NodeId(1);

#[test]
fn one_member_cannot_make_a_node_adopt_a_layout() {
    let mine = LayoutHistory::new(layout(1, &[1, 2, 3]));
    // n2 claims the ring is now {n2} at v1000 (the scenario of a forged Layout).
    let forged = LayoutHistory::new(layout(1000, &[2]));
    let reports = BTreeMap::from([(NodeId(2), report(&forged))]);
    assert_eq!(confirm(&mine, ME, None, &reports), None);
    // A forged pending change with its own synced claims: not adopted either.
    let mut pending_forgery = pending(&layout(1, &[1, 2, 3]), &layout(2, &[2, 3]));
    pending_forgery.mark_synced(NodeId(3));
    let reports = BTreeMap::from([(NodeId(2), report(&pending_forgery))]);
    assert_eq!(confirm(&mine, ME, None, &reports), None);
}

#[test]
fn a_majority_of_the_committed_layout_confirms_a_newer_committed_layout() {
    let mine = LayoutHistory::new(layout(1, &[1, 2, 3]));
    let newer = LayoutHistory::new(layout(3, &[1, 2, 3, 4, 5]));
    let mut reports = BTreeMap::from([(NodeId(2), report(&newer))]);
    assert_eq!(confirm(&mine, ME, None, &reports), None);
    // Members of the newer layout that are not in mine do not count...
    reports.insert(NodeId(4), report(&newer));
    reports.insert(NodeId(5), report(&newer));
    assert_eq!(confirm(&mine, ME, None, &reports), None);
    // ...a second member of mine does: 2 of {1, 2, 3}.
    reports.insert(NodeId(3), report(&newer));
    assert_eq!(confirm(&mine, ME, None, &reports), Some(newer));
}

#[test]
fn a_change_is_confirmed_by_same_ballot_votes_or_adopters_not_mixed_ballots() {
    let committed = layout(1, &[1, 2, 3, 4, 5]);
    let mine = LayoutHistory::new(committed.clone());
    let next = layout(2, &[1, 2, 3, 4, 5, 6]);
    let ballot = |round| Ballot {
        round,
        node: NodeId(2),
    };
    let voted = |round| LayoutReport {
        history: mine.clone(),
        vote: Some((2, ballot(round), next.clone())),
    };
    // The proposer adopted it; my own vote and n3's in ballot 1: 3 of 5.
    let mut reports = BTreeMap::from([
        (NodeId(2), report(&pending(&committed, &next))),
        (NodeId(3), voted(1)),
    ]);
    let mine_vote = (2, ballot(1), next.clone());
    let adopted = confirm(&mine, ME, Some(&mine_vote), &reports).expect("confirmed");
    assert_eq!(adopted.pending(), Some(&next));
    // Votes in different ballots do not add up (a majority holding L across ballots is
    // not "chosen": a later proposer may still choose another value).
    reports.insert(NodeId(3), voted(2));
    assert_eq!(confirm(&mine, ME, Some(&mine_vote), &reports), None);
    // Without my vote, the proposer alone is not enough either.
    reports.remove(&NodeId(3));
    assert_eq!(confirm(&mine, ME, None, &reports), None);
}

#[test]
fn members_vouch_for_their_own_sync_only_and_the_commit_follows() {
    let committed = layout(1, &[1, 2, 3]);
    let next = layout(2, &[1, 2, 3, 4]);
    let mine = pending(&committed, &next);
    let claiming = |ids: &[u64]| {
        let mut history = mine.clone();
        for id in ids {
            history.hold_claim(NodeId(ids[0]), NodeId(*id));
        }
        report(&history)
    };
    // n2 says n2 and n4 synced: only its own claim is taken (held here), and it counts
    // only once held by a majority of the other old members {n1, n3}: not yet.
    let mut reports = BTreeMap::from([(NodeId(2), claiming(&[2, 4]))]);
    let after = confirm(&mine, ME, None, &reports).expect("n2's own claim");
    assert_eq!(
        after.claims().iter().copied().collect::<Vec<_>>(),
        [NodeId(2)]
    );
    assert!(after.synced().is_empty(), "{after:?}");
    // Each member's own claim, held by enough others: the change commits once the
    // synced set completes it.
    reports.insert(NodeId(2), claiming(&[2, 3, 4]));
    reports.insert(NodeId(3), claiming(&[3, 2]));
    reports.insert(NodeId(4), claiming(&[4]));
    let after = confirm(&mine, ME, None, &reports).expect("claims");
    assert_eq!(after.committed(), &next, "{after:?}");
}

#[test]
fn a_joining_node_needs_a_majority_of_the_layouts_own_members() {
    let mine = LayoutHistory::new(RingLayout::new(3));
    let real = pending(&layout(1, &[1, 2, 3]), &layout(2, &[1, 2, 3, 9]));
    let me = NodeId(9);
    let mut reports = BTreeMap::from([(NodeId(1), report(&real))]);
    assert_eq!(confirm(&mine, me, None, &reports), None);
    reports.insert(NodeId(2), report(&real));
    let learned = confirm(&mine, me, None, &reports).expect("majority of {1,2,3}");
    assert_eq!(learned, real);
}

#[test]
fn only_one_member_changes_and_bound_identities_never_change() {
    let base = layout(1, &[1, 2, 3]);
    assert!(is_one_change(&base, &layout(2, &[1, 2, 3, 4])));
    assert!(is_one_change(&base, &layout(2, &[1, 2])));
    assert!(!is_one_change(&base, &layout(2, &[1, 4, 5])));
    assert!(!is_one_change(&base, &layout(3, &[1, 2, 3, 4])));
    assert!(!is_one_change(&base, &layout(2, &[1, 2, 3])));
    let bound = base
        .with_node(NodeSpec::new(4, "z4", 1).with_identity(IdentityDigest::of(b"secret")))
        .expect("bound");
    let rebound = RingLayout::from_parts(
        3,
        3,
        16,
        bound.nodes().values().cloned().map(|mut spec| {
            if spec.id == NodeId(4) {
                spec.identity = Some(IdentityDigest::of(b"another"));
            }
            spec
        }),
    )
    .expect("layout");
    assert!(!is_one_change(&bound, &rebound));
}

#[test]
fn a_member_that_committed_still_vouches_for_its_own_sync() {
    // n2 and n4 synced and committed before this node heard their claims; their
    // reports now show the committed layout with their own sync among those that
    // completed it, which is enough to complete the commit here too.
    let committed = layout(1, &[1, 2, 3]);
    let next = layout(2, &[1, 2, 3, 4]);
    let mut mine = pending(&committed, &next);
    mine.hold_claim(ME, ME);
    let mut done = pending(&committed, &next);
    for id in [1, 2, 3, 4] {
        if done.pending().is_some() {
            done.hold_claim(NodeId(2), NodeId(id));
            done.mark_synced(NodeId(id));
        }
    }
    assert_eq!(done.committed(), &next);
    let reports: BTreeMap<NodeId, LayoutReport> = done
        .committed_by()
        .iter()
        .map(|id| (*id, report(&done)))
        .collect();
    let after = confirm(&mine, ME, None, &reports).expect("their claims");
    assert_eq!(after.committed(), &next);
    // A committed report does not vouch for members that synced (only for its sender).
    let lone = BTreeMap::from([(NodeId(4), report(&LayoutHistory::new(next.clone())))]);
    assert_eq!(confirm(&mine, ME, None, &lone), None);
}
