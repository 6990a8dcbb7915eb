//! Choosing layout version v + 1: single-decree Paxos among the members of layout v.
//!
//! Why Paxos and not "last proposal wins": two changes chosen for the same version
//! could each run joint quorums with `Lc` and then commit different `Ln`s whose
//! quorums need not intersect. Paxos makes the layout of every version unique, so a
//! version number names one layout everywhere (what the epoch fence relies on).
//!
//! Acceptor invariant: its promise and vote are durable (`m/paxos`) before it answers.
//! Proposer: one proposal per node at a time; a chosen value other than its own (an
//! earlier proposal's, found in the promises) is still driven to the end, and the
//! admin request is then told its change was not made.

use std::collections::{BTreeMap, BTreeSet};

use crate::protocol::{Ballot, PeerMessage, RequestId};
use crate::ring::{NodeId, RingLayout};

use super::super::meta::PaxosRecord;
use super::super::mutations::{Mutation, Mutations};

/// A proposal gives up after this many higher-ballot refusals (then `Unavailable`).
pub(crate) const PROPOSAL_ATTEMPTS_MAX: u32 = 4;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Acceptor {
    pub version: u64,
    pub promised: Ballot,
    pub accepted: Option<(Ballot, RingLayout)>,
}

impl Acceptor {
    pub fn from_record(record: Option<PaxosRecord>) -> Self {
        match record {
            Some(PaxosRecord {
                version,
                promised,
                accepted,
            }) => Acceptor {
                version,
                promised,
                accepted,
            },
            None => Acceptor {
                version: 0,
                promised: Ballot::default(),
                accepted: None,
            },
        }
    }

    pub fn record(&self) -> PaxosRecord {
        PaxosRecord {
            version: self.version,
            promised: self.promised,
            accepted: self.accepted.clone(),
        }
    }

    /// Forgets an older version's promise: each version is its own instance.
    fn instance(&mut self, version: u64) {
        if self.version != version {
            *self = Acceptor {
                version,
                promised: Ballot::default(),
                accepted: None,
            };
        }
    }

    /// Phase 1 for `version` (the caller checked it is the next one). Returns the
    /// answer and whether the state changed (must be persisted before answering).
    pub fn on_prepare(&mut self, version: u64, ballot: Ballot) -> (PeerMessage, bool) {
        self.instance(version);
        if ballot < self.promised {
            return (self.nack(version, ballot), false);
        }
        let changed = ballot != self.promised;
        self.promised = ballot;
        let promise = PeerMessage::LayoutPromise {
            version,
            ballot,
            accepted: self.accepted.clone(),
        };
        (promise, changed)
    }

    /// Phase 2 for `version`; same contract as [`Acceptor::on_prepare`].
    pub fn on_accept(
        &mut self,
        version: u64,
        ballot: Ballot,
        layout: RingLayout,
    ) -> (PeerMessage, bool) {
        self.instance(version);
        if ballot < self.promised {
            return (self.nack(version, ballot), false);
        }
        let vote = Some((ballot, layout));
        let changed = ballot != self.promised || self.accepted != vote;
        self.promised = ballot;
        self.accepted = vote;
        (PeerMessage::LayoutAccepted { version, ballot }, changed)
    }

    fn nack(&self, version: u64, ballot: Ballot) -> PeerMessage {
        PeerMessage::LayoutNack {
            version,
            ballot,
            promised: self.promised,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ProposalPhase {
    Prepare {
        promises: BTreeMap<NodeId, Option<(Ballot, RingLayout)>>,
    },
    Accept {
        value: RingLayout,
        accepted: BTreeSet<NodeId>,
    },
}

/// What a proposal step asks the node to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// Keep waiting.
    Wait,
    /// Send `message` to every acceptor that has not answered the current phase.
    Send(PeerMessage),
    /// `value` is chosen for the proposal's version.
    Chosen(RingLayout),
    /// Give up: no majority would promise.
    GiveUp,
}

#[derive(Debug, Clone)]
pub(crate) struct Proposal {
    /// Who asked (`None`: the node itself, for a purge change).
    pub client: Option<RequestId>,
    pub version: u64,
    /// The change the admin asked for.
    pub desired: RingLayout,
    pub ballot: Ballot,
    pub acceptors: Vec<NodeId>,
    pub phase: ProposalPhase,
    pub deadline_ms: u64,
    pub next_resend_ms: u64,
    pub attempts: u32,
    /// Whether any `LayoutAccept` went out (a timeout is then `Indeterminate`).
    pub accept_sent: bool,
    /// Deliberate bugs (`node/mutations.rs`; none outside the mutation tests).
    pub mutations: Mutations,
}

impl Proposal {
    pub fn majority(&self) -> usize {
        self.acceptors.len() / 2 + 1
    }

    /// The message of the current phase.
    pub fn message(&self) -> PeerMessage {
        match &self.phase {
            ProposalPhase::Prepare { .. } => PeerMessage::LayoutPrepare {
                version: self.version,
                ballot: self.ballot,
            },
            ProposalPhase::Accept { value, .. } => PeerMessage::LayoutAccept {
                version: self.version,
                ballot: self.ballot,
                layout: value.clone(),
            },
        }
    }

    /// Acceptors that have not answered the current phase.
    pub fn pending(&self) -> Vec<NodeId> {
        self.acceptors
            .iter()
            .copied()
            .filter(|id| match &self.phase {
                ProposalPhase::Prepare { promises } => !promises.contains_key(id),
                ProposalPhase::Accept { accepted, .. } => !accepted.contains(id),
            })
            .collect()
    }

    /// An acceptor's answer for this proposal's version and ballot.
    pub fn on_answer(&mut self, from: NodeId, message: PeerMessage) -> Step {
        if !self.acceptors.contains(&from) {
            return Step::Wait;
        }
        let majority = self.majority();
        match (message, &mut self.phase) {
            (
                PeerMessage::LayoutPromise {
                    ballot, accepted, ..
                },
                ProposalPhase::Prepare { promises },
            ) if ballot == self.ballot => {
                promises.insert(from, accepted);
                if promises.len() < majority {
                    return Step::Wait;
                }
                // The highest-ballot vote among a majority may already be chosen: it
                // must be proposed again, whatever this proposal wanted.
                let value = promises
                    .values()
                    .flatten()
                    .max_by_key(|(ballot, _)| *ballot)
                    .map(|(_, layout)| layout.clone())
                    .unwrap_or_else(|| self.desired.clone());
                self.phase = ProposalPhase::Accept {
                    value,
                    accepted: BTreeSet::new(),
                };
                self.accept_sent = true;
                Step::Send(self.message())
            }
            (
                PeerMessage::LayoutAccepted { ballot, .. },
                ProposalPhase::Accept { value, accepted },
            ) if ballot == self.ballot => {
                accepted.insert(from);
                // Chosen only once a majority voted: every later prepare majority then
                // meets a vote for it. (Mutation: one vote is taken as enough.)
                let needed = if self.mutations.has(Mutation::LayoutWithoutQuorum) {
                    1
                } else {
                    majority
                };
                if accepted.len() >= needed {
                    Step::Chosen(value.clone())
                } else {
                    Step::Wait
                }
            }
            (
                PeerMessage::LayoutNack {
                    ballot, promised, ..
                },
                _,
            ) if ballot == self.ballot && promised > self.ballot => {
                self.attempts += 1;
                if self.attempts >= PROPOSAL_ATTEMPTS_MAX {
                    return Step::GiveUp;
                }
                self.ballot = Ballot {
                    round: promised.round.saturating_add(1),
                    node: self.ballot.node,
                };
                self.phase = ProposalPhase::Prepare {
                    promises: BTreeMap::new(),
                };
                Step::Send(self.message())
            }
            _ => Step::Wait,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::NodeSpec;

    fn layout(version: u64, ids: &[u64]) -> RingLayout {
        RingLayout::from_parts(
            version,
            3,
            4,
            ids.iter().map(|id| NodeSpec::new(*id, "z", 1)),
        )
        .expect("layout")
    }

    fn ballot(round: u64, node: u64) -> Ballot {
        Ballot {
            round,
            node: NodeId(node),
        }
    }

    fn proposal(desired: RingLayout, node: u64) -> Proposal {
        Proposal {
            client: Some(RequestId(1)),
            version: 2,
            desired,
            ballot: ballot(1, node),
            acceptors: vec![NodeId(1), NodeId(2), NodeId(3)],
            phase: ProposalPhase::Prepare {
                promises: BTreeMap::new(),
            },
            deadline_ms: 0,
            next_resend_ms: 0,
            attempts: 0,
            accept_sent: false,
            mutations: Mutations::NONE,
        }
    }

    #[test]
    fn acceptors_refuse_lower_ballots_and_report_their_vote() {
        let mut acceptor = Acceptor::from_record(None);
        let (answer, changed) = acceptor.on_prepare(2, ballot(2, 1));
        assert!(changed && matches!(answer, PeerMessage::LayoutPromise { accepted: None, .. }));
        let (answer, _) = acceptor.on_accept(2, ballot(1, 9), layout(2, &[1, 2]));
        assert!(
            matches!(answer, PeerMessage::LayoutNack { promised, .. } if promised == ballot(2, 1))
        );
        let (answer, changed) = acceptor.on_accept(2, ballot(2, 1), layout(2, &[1, 2]));
        assert!(changed && matches!(answer, PeerMessage::LayoutAccepted { .. }));
        let (answer, _) = acceptor.on_prepare(2, ballot(3, 2));
        assert!(
            matches!(answer, PeerMessage::LayoutPromise { accepted: Some((b, _)), .. } if b == ballot(2, 1))
        );
        // A new version is a new instance.
        let (answer, _) = acceptor.on_prepare(3, ballot(1, 1));
        assert!(matches!(
            answer,
            PeerMessage::LayoutPromise { accepted: None, .. }
        ));
        assert_eq!(Acceptor::from_record(Some(acceptor.record())), acceptor);
    }

    #[test]
    fn a_proposer_adopts_the_highest_earlier_vote() {
        let mine = layout(2, &[1, 2, 3, 4]);
        let earlier = layout(2, &[1, 2]);
        let mut p = proposal(mine.clone(), 1);
        let promise = |accepted| PeerMessage::LayoutPromise {
            version: 2,
            ballot: ballot(1, 1),
            accepted,
        };
        assert_eq!(
            p.on_answer(NodeId(2), promise(Some((ballot(0, 2), earlier.clone())))),
            Step::Wait
        );
        assert_eq!(p.on_answer(NodeId(9), promise(None)), Step::Wait);
        let Step::Send(PeerMessage::LayoutAccept { layout, .. }) =
            p.on_answer(NodeId(3), promise(None))
        else {
            panic!("expected phase 2");
        };
        assert_eq!(layout, earlier);
        let accepted = PeerMessage::LayoutAccepted {
            version: 2,
            ballot: ballot(1, 1),
        };
        assert_eq!(p.on_answer(NodeId(1), accepted.clone()), Step::Wait);
        assert_eq!(p.on_answer(NodeId(3), accepted), Step::Chosen(earlier));
    }

    /// Mutation `layout-without-quorum`: the first vote already counts as chosen.
    #[cfg(feature = "mutations")]
    #[test]
    fn the_mutated_proposer_takes_one_accept_for_a_choice() {
        let mine = layout(2, &[1, 2, 3, 4]);
        let promise = PeerMessage::LayoutPromise {
            version: 2,
            ballot: ballot(1, 1),
            accepted: None,
        };
        let accepted = PeerMessage::LayoutAccepted {
            version: 2,
            ballot: ballot(1, 1),
        };
        for (mutations, first_vote) in [
            (Mutations::NONE, Step::Wait),
            (
                Mutations::only(Mutation::LayoutWithoutQuorum),
                Step::Chosen(mine.clone()),
            ),
        ] {
            let mut p = proposal(mine.clone(), 1);
            p.mutations = mutations;
            assert_eq!(p.on_answer(NodeId(1), promise.clone()), Step::Wait);
            assert!(matches!(
                p.on_answer(NodeId(2), promise.clone()),
                Step::Send(PeerMessage::LayoutAccept { .. })
            ));
            assert_eq!(p.on_answer(NodeId(1), accepted.clone()), first_vote);
        }
    }

    #[test]
    fn nacks_raise_the_ballot_then_give_up() {
        let mut p = proposal(layout(2, &[1, 2, 3, 4]), 1);
        for attempt in 1..=PROPOSAL_ATTEMPTS_MAX {
            let nack = PeerMessage::LayoutNack {
                version: 2,
                ballot: p.ballot,
                promised: ballot(p.ballot.round + 5, 7),
            };
            let step = p.on_answer(NodeId(2), nack);
            if attempt < PROPOSAL_ATTEMPTS_MAX {
                assert!(matches!(
                    step,
                    Step::Send(PeerMessage::LayoutPrepare { .. })
                ));
                assert!(p.ballot.node == NodeId(1) && p.ballot.round > 5);
            } else {
                assert_eq!(step, Step::GiveUp);
            }
        }
    }
}
