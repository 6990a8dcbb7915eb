//! Ranges of the ring and who owns them: for anti-entropy (which ranges do two replicas
//! share) and streaming (which ranges change hands between two layouts).
//!
//! Model: the distinct token positions cut the ring into arcs `(previous token, token]`.
//! Every position of an arc has the same preference list (the walk from its end token),
//! so ownership is computed once per arc, and adjacent arcs with the same label are
//! coalesced. Results are listed clockwise, starting with the arc that contains
//! position 0 (or right after it); a range that would span position 0 is one wrapping
//! [`TokenRange`], never split.

use std::collections::BTreeSet;

use super::layout::RingLayout;
use super::node::NodeId;
use super::range::TokenRange;
use super::token::Position;

/// A range whose replica set differs between two layouts: `(range, old owners, new
/// owners)`, owners in preference order.
pub type MovedRange = (TokenRange, Vec<NodeId>, Vec<NodeId>);

impl RingLayout {
    /// The whole ring as ranges with their preference lists (adjacent arcs with the same
    /// list coalesced). Empty layout: no ranges.
    pub fn segments(&self) -> Vec<(TokenRange, Vec<NodeId>)> {
        let arcs = arcs_between(&distinct_positions(self.tokens()));
        coalesce(
            arcs.into_iter()
                .map(|arc| (arc, self.owners_at(arc.end_inclusive)))
                .collect(),
        )
    }

    /// The ranges whose preference list includes `node` (as any replica, not only as
    /// primary): what `node` must store, and what it runs anti-entropy over. Adjacent
    /// ranges are coalesced, so they can differ in their other replicas; use
    /// [`RingLayout::owners_of_range`] to split one by replica set. Together, the
    /// results for all nodes cover every position exactly `min(N, nodes)` times.
    pub fn primary_ranges(&self, node: NodeId) -> Vec<TokenRange> {
        let labelled = self
            .segments()
            .into_iter()
            .map(|(range, owners)| (range, owners.contains(&node)))
            .collect();
        coalesce(labelled)
            .into_iter()
            .filter_map(|(range, owned)| owned.then_some(range))
            .collect()
    }

    /// `range` split where its preference list changes, each piece with its owners,
    /// clockwise from `range.start_exclusive`. Empty layout: `range` with no owners.
    pub fn owners_of_range(&self, range: &TokenRange) -> Vec<(TokenRange, Vec<NodeId>)> {
        if range.is_full() {
            let segments = self.segments();
            return if segments.is_empty() {
                vec![(*range, Vec::new())]
            } else {
                segments
            };
        }
        let mut cuts = distinct_positions(self.tokens());
        cuts.extend([range.start_exclusive, range.end_inclusive]);
        let cuts: Vec<Position> = cuts
            .into_iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut pieces: Vec<TokenRange> = arcs_between(&cuts)
            .into_iter()
            .filter(|arc| range.contains(arc.end_inclusive))
            .collect();
        // Clockwise from the range's start: arcs wrapping past 0 come after the others.
        pieces.sort_by_key(|arc| arc.end_inclusive.wrapping_sub(range.start_exclusive));
        let mut out: Vec<(TokenRange, Vec<NodeId>)> = Vec::new();
        for piece in pieces {
            let owners = self.owners_at(piece.end_inclusive);
            match out.last_mut() {
                Some((last, last_owners)) if *last_owners == owners => {
                    last.end_inclusive = piece.end_inclusive;
                }
                _ => out.push((piece, owners)),
            }
        }
        out
    }
}

/// The ranges whose replica *set* differs between `old` and `new` (a reordering of the
/// same nodes moves no data and is not reported), with old and new owners. A node in
/// `new owners` but not in `old owners` must receive the range from one of `old owners`.
pub fn ranges_moved(old: &RingLayout, new: &RingLayout) -> Vec<MovedRange> {
    let mut cuts = distinct_positions(old.tokens());
    cuts.extend(new.tokens().iter().map(|(position, _)| *position));
    let cuts: Vec<Position> = cuts
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let labelled = arcs_between(&cuts)
        .into_iter()
        .map(|arc| {
            (
                arc,
                (
                    old.owners_at(arc.end_inclusive),
                    new.owners_at(arc.end_inclusive),
                ),
            )
        })
        .collect();
    coalesce(labelled)
        .into_iter()
        .filter(|(_, (old_owners, new_owners))| !same_set(old_owners, new_owners))
        .map(|(range, (old_owners, new_owners))| (range, old_owners, new_owners))
        .collect()
}

fn same_set(a: &[NodeId], b: &[NodeId]) -> bool {
    a.len() == b.len() && a.iter().all(|node| b.contains(node))
}

/// Sorted distinct positions of `tokens` (which are sorted).
fn distinct_positions(tokens: &[(Position, NodeId)]) -> Vec<Position> {
    let mut positions: Vec<Position> = tokens.iter().map(|(position, _)| *position).collect();
    positions.dedup();
    positions
}

/// The arcs cut by sorted distinct `cuts`, the wrapping arc `(last, first]` first. One
/// cut: the full ring. None: nothing.
fn arcs_between(cuts: &[Position]) -> Vec<TokenRange> {
    let (Some(&first), Some(&last)) = (cuts.first(), cuts.last()) else {
        return Vec::new();
    };
    let mut arcs = Vec::with_capacity(cuts.len());
    arcs.push(TokenRange::new(last, first));
    arcs.extend(
        cuts.windows(2)
            .map(|pair| TokenRange::new(pair[0], pair[1])),
    );
    arcs
}

/// Merges adjacent arcs (which must tile the ring in clockwise order, as
/// [`arcs_between`] makes them) that carry equal labels, including across the wrap.
fn coalesce<L: PartialEq>(arcs: Vec<(TokenRange, L)>) -> Vec<(TokenRange, L)> {
    let mut out: Vec<(TokenRange, L)> = Vec::with_capacity(arcs.len());
    for (arc, label) in arcs {
        match out.last_mut() {
            Some((last, last_label)) if *last_label == label => {
                last.end_inclusive = arc.end_inclusive
            }
            _ => out.push((arc, label)),
        }
    }
    if out.len() > 1 {
        // The last run ends where the first begins: join them if they carry one label.
        let wrap_joins = match (out.first(), out.last()) {
            (Some((_, first)), Some((_, last))) => first == last,
            _ => false,
        };
        if wrap_joins {
            if let Some((last, _)) = out.pop() {
                out[0].0.start_exclusive = last.start_exclusive;
            }
        }
    }
    if let [(only, _)] = out.as_mut_slice() {
        // A single run covers the whole ring: make that explicit (start == end).
        only.start_exclusive = only.end_inclusive;
    }
    out
}
