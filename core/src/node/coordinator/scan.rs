//! SCAN: pages of the linearizable keyspace in ring order (`ClientRequest::Scan`).
//!
//! A page starts at its cursor (a ring position) and covers a span of up to
//! [`ARCS_PER_PAGE_MAX`] arcs. An arc is the run of positions with the same replicas in
//! every layout in play (`LayoutHistory::scan_arc`). One `ScanRange` for the whole span
//! goes to every replica of any of its arcs, in one round; each answers from its
//! position index (`ae/index.rs`, `scan_positions`) with at most `count` entries, never
//! splitting a position, so a replica's answer **covers** the span up to its last entry
//! (or to the span's end if complete). For each arc, only answers of that arc's
//! replicas count: a position of the arc is read once a majority of every replica set
//! of the arc covers it. The page ends at the first position that is not (the `q`-th
//! largest coverage among the arc's replicas); per key the highest tag wins and a
//! tombstone hides the key. The reply's cursor is the position after the page (`0`:
//! done). The page waits until every arc of the span has a majority of answers, or
//! the deadline; then it answers as far as it got, `Unavailable` if not even its first
//! position (a scan changes nothing, so nothing is ever indeterminate). Arcs without a
//! majority believed alive end the span before them.
//!
//! Why a key present for the whole scan is returned: its latest write is on a majority
//! of its replicas, which meets every majority that covered its position, so some
//! answer lists it with its latest tag or a later one, which is a value (a later
//! delete would make it not present for the whole scan). Why a key deleted before the
//! scan began is not: the delete's tombstone is on a majority, which meets the covering
//! majority, and outranks any older value a replica still holds (a purged tombstone was
//! first on every replica, so no older value is left anywhere). Keys written or deleted
//! during the scan may appear or not. A cursor is a position, not a layout: the next
//! page computes its arcs from the layouts of its own time, so a scan continues
//! correctly across membership changes (during one, both layouts' majorities count).

use std::collections::BTreeMap;

use crate::protocol::{ClientError, ClientReply, OpId, PeerMessage, RequestId, ScanEntry};
use crate::ring::{key_position, LayoutHistory, NodeId, Position};
use crate::versioning::Tag;

use super::super::op::{describe_sets, quorum_of};
use super::{Coordinator, Ctx, RESTARTS_MAX};

/// Keys a page asks each replica for at most (`COUNT` beyond is capped).
pub const SCAN_COUNT_MAX: u32 = 1_000;
/// Arcs one page spans at most (one round trip for all of them).
pub const ARCS_PER_PAGE_MAX: usize = 256;

/// What starting or restarting a scan page needs from the node: layouts, liveness.
pub(crate) struct ScanEnv<'a> {
    pub history: &'a LayoutHistory,
    pub believed_alive: &'a dyn Fn(NodeId) -> bool,
}

/// One arc of a page's span: its last position and replica sets.
#[derive(Debug)]
struct Arc {
    end: Position,
    sets: Vec<Vec<NodeId>>,
}

#[derive(Debug)]
pub(crate) struct ScanOp {
    id: OpId,
    client: RequestId,
    count: u32,
    epoch: u64,
    /// The span: `from ..= arcs.last().end`.
    from: Position,
    arcs: Vec<Arc>,
    /// Every node of every arc's sets, once: the only nodes whose answers count.
    replicas: Vec<NodeId>,
    /// Answers: the entries, and the last position they cover.
    answered: BTreeMap<NodeId, (Vec<ScanEntry>, Position)>,
    restarts: u32,
    deadline_ms: u64,
    next_resend_ms: u64,
}

impl ScanOp {
    fn to(&self) -> Position {
        self.arcs.last().map_or(self.from, |arc| arc.end)
    }

    fn message(&self) -> PeerMessage {
        PeerMessage::ScanRange {
            req: self.id,
            epoch: self.epoch,
            from: self.from,
            to: self.to(),
            limit: self.count,
        }
    }

    fn pending(&self) -> Vec<NodeId> {
        self.replicas
            .iter()
            .copied()
            .filter(|id| !self.answered.contains_key(id))
            .collect()
    }

    /// Whether every arc of the span has a majority of answers in every set.
    fn all_answered(&self) -> bool {
        self.arcs.iter().all(|arc| {
            arc.sets.iter().all(|set| {
                set.iter()
                    .filter(|id| self.answered.contains_key(id))
                    .count()
                    >= quorum_of(set.len())
            })
        })
    }

    fn wake_ms(&self) -> u64 {
        self.deadline_ms.min(self.next_resend_ms)
    }

    fn describe_progress(&self) -> String {
        match self.arcs.first() {
            Some(arc) => describe_sets(&arc.sets, |id| self.answered.contains_key(id)),
            None => "no replica".into(),
        }
    }

    /// How far a majority of every arc's replica sets covers the span, arc by arc:
    /// the last position read (`None`: not even `from`).
    fn bound(&self) -> Option<Position> {
        let mut bound: Option<Position> = None;
        let mut start = self.from;
        for arc in &self.arcs {
            let mut arc_bound = arc.end;
            for set in &arc.sets {
                let mut covered: Vec<Position> = set
                    .iter()
                    .filter_map(|id| self.answered.get(id).map(|(_, cover)| *cover))
                    .collect();
                let quorum = quorum_of(set.len());
                if covered.len() < quorum {
                    return bound;
                }
                // The `quorum`-th largest: a majority covers up to there.
                covered.sort_unstable_by(|a, b| b.cmp(a));
                arc_bound = arc_bound.min(covered[quorum - 1]);
            }
            if arc_bound < start {
                return bound;
            }
            bound = Some(arc_bound);
            if arc_bound < arc.end {
                return bound;
            }
            match arc.end.checked_add(1) {
                Some(next) => start = next,
                None => return bound,
            }
        }
        bound
    }

    /// The keys of the span up to `bound`: per key the highest tag among the answers
    /// of its arc's replicas, tombstones hidden, in ring order.
    fn keys_until(&self, bound: Position) -> Vec<Vec<u8>> {
        let mut best: BTreeMap<(Position, &[u8]), (Tag, bool)> = BTreeMap::new();
        let mut start = self.from;
        for arc in &self.arcs {
            if start > bound {
                break;
            }
            let last = arc.end.min(bound);
            for id in arc.sets.iter().flatten() {
                let Some((entries, _)) = self.answered.get(id) else {
                    continue;
                };
                for entry in entries {
                    let position = key_position(&entry.key);
                    if position < start || position > last {
                        continue;
                    }
                    let slot = best
                        .entry((position, entry.key.as_slice()))
                        .or_insert((Tag::ZERO, true));
                    if entry.tag >= slot.0 {
                        *slot = (entry.tag, entry.tombstone);
                    }
                }
            }
            match arc.end.checked_add(1) {
                Some(next) => start = next,
                None => break,
            }
        }
        best.into_iter()
            .filter(|(_, (_, tombstone))| !tombstone)
            .map(|((_, key), _)| key.to_vec())
            .collect()
    }
}

impl Coordinator {
    /// Starts a scan page at `cursor` for about `count` keys.
    pub(crate) fn start_scan(
        &mut self,
        ctx: &mut Ctx<'_>,
        env: &ScanEnv<'_>,
        client: RequestId,
        cursor: u64,
        count: u32,
    ) {
        if self.in_flight() >= self.settings.in_flight_requests_max {
            ctx.counters.overloaded += 1;
            ctx.out
                .reply(client, ClientReply::Error(ClientError::Overloaded));
            return;
        }
        let op = ScanOp {
            id: self.fresh_id(),
            client,
            count: count.clamp(1, SCAN_COUNT_MAX),
            epoch: 0,
            from: cursor,
            arcs: Vec::new(),
            replicas: Vec::new(),
            answered: BTreeMap::new(),
            restarts: 0,
            deadline_ms: 0,
            next_resend_ms: 0,
        };
        self.begin_page(ctx, env, op);
    }

    /// Computes the page's span from its cursor in the current layouts and asks every
    /// replica of it (or answers `Unavailable` if not even the first arc has a
    /// majority believed alive).
    fn begin_page(&mut self, ctx: &mut Ctx<'_>, env: &ScanEnv<'_>, mut op: ScanOp) {
        op.arcs.clear();
        op.answered.clear();
        let mut position = op.from;
        let mut refusal = None;
        while op.arcs.len() < ARCS_PER_PAGE_MAX {
            let (end, sets) = env.history.scan_arc(position);
            let short = sets.iter().find_map(|set| {
                let alive = set.iter().filter(|id| (env.believed_alive)(**id)).count();
                let quorum = quorum_of(set.len());
                (set.is_empty() || alive < quorum).then_some((alive, set.len(), quorum))
            });
            if let Some((alive, replicas, quorum)) = short {
                refusal = Some(format!(
                    "only {alive} of the {replicas} replicas of ring positions \
                     {position}..={end} are believed alive, {quorum} needed"
                ));
                break;
            }
            op.arcs.push(Arc { end, sets });
            match end.checked_add(1) {
                Some(next) => position = next,
                None => break,
            }
        }
        if op.arcs.is_empty() {
            let reason = refusal.unwrap_or_else(|| "no replica to scan".into());
            self.refuse_scan(ctx, &op, reason);
            return;
        }
        op.replicas = union(op.arcs.iter().flat_map(|arc| arc.sets.iter()));
        op.epoch = env.history.epoch();
        op.deadline_ms = ctx.now_ms.saturating_add(self.settings.request_timeout_ms);
        op.next_resend_ms = ctx.now_ms.saturating_add(self.settings.resend_interval_ms);
        let message = op.message();
        for to in op.pending() {
            ctx.out.send(to, message.clone());
        }
        self.timers.schedule(op.id.seq, op.wake_ms());
        self.scans.insert(op.id.seq, op);
    }

    /// A `ScanRangeAck` from `from`.
    pub(crate) fn on_scan_reply(&mut self, ctx: &mut Ctx<'_>, from: NodeId, message: PeerMessage) {
        let PeerMessage::ScanRangeAck {
            req,
            entries,
            complete,
        } = message
        else {
            return;
        };
        let mine = req.coordinator == self.me && req.incarnation == self.incarnation;
        let Some(mut op) = mine.then(|| self.scans.remove(&req.seq)).flatten() else {
            ctx.counters.stale_replies += 1;
            return;
        };
        let (first, last) = (op.from, op.to());
        let inside = |entry: &ScanEntry| (first..=last).contains(&key_position(&entry.key));
        let ordered = entries
            .windows(2)
            .all(|w| key_position(&w[0].key) <= key_position(&w[1].key));
        // Counted only from the span's replicas, once, and only if well-formed: every
        // entry inside the span in ring order, and a page that stopped early with
        // entries (its last position is where its cover ends).
        let cover = match entries.last() {
            _ if complete => Some(last),
            Some(entry) => Some(key_position(&entry.key)),
            None => None,
        };
        let Some(cover) = cover.filter(|_| {
            op.replicas.contains(&from)
                && !op.answered.contains_key(&from)
                && ordered
                && entries.iter().all(inside)
        }) else {
            ctx.counters.stale_replies += 1;
            self.scans.insert(req.seq, op);
            return;
        };
        op.answered.insert(from, (entries, cover));
        if op.all_answered() {
            self.timers.cancel(req.seq);
            self.finish_page(ctx, &op);
        } else {
            self.scans.insert(req.seq, op);
        }
    }

    /// Answers the page as far as its answers cover it.
    fn finish_page(&mut self, ctx: &mut Ctx<'_>, op: &ScanOp) {
        match op.bound() {
            Some(bound) => {
                let keys = op.keys_until(bound);
                ctx.counters.succeeded += 1;
                ctx.out.reply(
                    op.client,
                    ClientReply::Keys {
                        keys,
                        cursor: bound.checked_add(1).unwrap_or(0),
                    },
                );
            }
            None => {
                let reason = format!(
                    "the scan of ring positions from {} was answered by {} within {} ms",
                    op.from,
                    op.describe_progress(),
                    self.settings.request_timeout_ms
                );
                self.refuse_scan(ctx, op, reason);
            }
        }
    }

    /// A replica refused scan `req` for layout epoch `epoch`, newer than the page's:
    /// the page starts again in the new layouts (bounded, like a key operation's phase
    /// 1). `false` if `req` is not a scan of this node's.
    pub(crate) fn on_scan_stale(
        &mut self,
        ctx: &mut Ctx<'_>,
        env: &ScanEnv<'_>,
        req: OpId,
        epoch: u64,
    ) -> bool {
        let mine = req.coordinator == self.me && req.incarnation == self.incarnation;
        let Some(mut op) = mine.then(|| self.scans.remove(&req.seq)).flatten() else {
            return false;
        };
        if op.epoch >= epoch {
            self.scans.insert(req.seq, op);
            return true;
        }
        self.timers.cancel(req.seq);
        if op.restarts >= RESTARTS_MAX {
            let reason = format!("the cluster layout changed (epoch {} to {epoch})", op.epoch);
            self.refuse_scan(ctx, &op, reason);
            return true;
        }
        op.restarts += 1;
        // A fresh id: answers for the earlier attempt never count.
        op.id = self.fresh_id();
        self.begin_page(ctx, env, op);
        true
    }

    /// Resends or ends scan `seq`, if it is one; `false` if it is not a scan.
    pub(crate) fn on_scan_timer(&mut self, ctx: &mut Ctx<'_>, seq: u64) -> bool {
        let Some(mut op) = self.scans.remove(&seq) else {
            return false;
        };
        if ctx.now_ms >= op.deadline_ms {
            self.finish_page(ctx, &op);
            return true;
        }
        let message = op.message();
        for to in op.pending() {
            ctx.counters.retransmissions += 1;
            ctx.out.send(to, message.clone());
        }
        op.next_resend_ms = ctx.now_ms.saturating_add(self.settings.resend_interval_ms);
        self.timers.schedule(seq, op.wake_ms());
        self.scans.insert(seq, op);
        true
    }

    /// Not even the page's first position could be read: `Unavailable` (a scan changes
    /// nothing).
    fn refuse_scan(&mut self, ctx: &mut Ctx<'_>, op: &ScanOp, reason: String) {
        ctx.counters.unavailable += 1;
        ctx.counters.refused_unreachable += 1;
        ctx.out.reply(
            op.client,
            ClientReply::Error(ClientError::Unavailable { reason }),
        );
    }
}

fn union<'a>(sets: impl Iterator<Item = &'a Vec<NodeId>>) -> Vec<NodeId> {
    let mut all: Vec<NodeId> = sets.flatten().copied().collect();
    all.sort_unstable();
    all.dedup();
    all
}
