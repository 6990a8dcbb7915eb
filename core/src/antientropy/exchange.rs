//! The initiator's side of one exchange: a pure state machine over one range.
//!
//! Protocol (per range, initiator I, responder R, same range and depth):
//! 1. I sends `Root`; R answers whether the roots are equal. Equal: done, in sync.
//! 2. Otherwise I descends `fanout_log2` levels at a time: it sends its hashes of the
//!    children (at level `l + fanout_log2`, capped at the leaves) of every node found
//!    differing at level `l`, packed into `Level` messages of at most
//!    [`MAX_HASHES_PER_MESSAGE`] hashes; R answers each with the offsets that differ.
//! 3. When every part of the leaf level is answered, the differing leaves are the
//!    result: buckets whose keys the node must compare and stream.
//!
//! Round trips: `1 + ceil(depth / fanout_log2)` at most (1 when in sync). The trees may
//! change during the exchange (writes keep flowing); each comparison uses the trees as
//! they are at that moment, so a concurrent write can at worst be reported as one more
//! (harmless) bucket or be left for the next exchange.
//!
//! [`MAX_HASHES_PER_MESSAGE`]: super::config::MAX_HASHES_PER_MESSAGE

use std::collections::BTreeMap;

use crate::ring::TokenRange;

use super::config::MAX_FANOUT_LOG2;
use super::error::AntiEntropyError;
use super::message::{ExchangeId, ExchangeRequest, ExchangeResponse, HashRun};
use super::runs::{offsets_to_indices, pack_children};
use super::tree::MerkleTree;

/// What the node does next for this exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExchangeStep {
    /// Send all of these to the responder (they may travel concurrently).
    Send(Vec<ExchangeRequest>),
    /// Await more responses (also the answer to duplicates and stale responses).
    Wait,
    /// Finished: the differing leaf buckets, ascending; empty means in sync.
    Done(Vec<u64>),
}

#[derive(Debug, Clone)]
pub struct Exchange {
    id: ExchangeId,
    range: TokenRange,
    depth: u8,
    fanout_log2: u8,
    round_trips: u32,
    phase: Phase,
}

#[derive(Debug, Clone)]
enum Phase {
    AwaitRoot,
    AwaitLevel(LevelRound),
    Finished,
}

/// One level's outstanding requests.
#[derive(Debug, Clone)]
struct LevelRound {
    level: u8,
    parts_sent: u32,
    /// Unanswered parts: their runs as `(index_start, len)`, to map offsets to indices.
    pending: BTreeMap<u32, Vec<(u64, usize)>>,
    differing: Vec<u64>,
}

impl Exchange {
    /// Starts an exchange over `tree`'s range. `fanout_log2` (levels descended per round
    /// trip) is clamped to `1..=MAX_FANOUT_LOG2`; 4 (fanout 16) is a good default.
    pub fn start(tree: &MerkleTree, id: ExchangeId, fanout_log2: u8) -> (Self, ExchangeRequest) {
        let exchange = Exchange {
            id,
            range: tree.range(),
            depth: tree.depth(),
            fanout_log2: fanout_log2.clamp(1, MAX_FANOUT_LOG2),
            round_trips: 1,
            phase: Phase::AwaitRoot,
        };
        let request = ExchangeRequest::Root {
            id,
            range: tree.range(),
            depth: tree.depth(),
            hash: tree.root(),
        };
        (exchange, request)
    }

    /// Starts an exchange whose roots are already known to differ (a root batch said
    /// so): skips the `Root` round trip and sends the first level's hashes at once.
    /// The step is `Send` (or `Done` with the root bucket for a depth-0 tree).
    pub fn start_descent(
        tree: &MerkleTree,
        id: ExchangeId,
        fanout_log2: u8,
    ) -> Result<(Self, ExchangeStep), AntiEntropyError> {
        let mut exchange = Exchange {
            id,
            range: tree.range(),
            depth: tree.depth(),
            fanout_log2: fanout_log2.clamp(1, MAX_FANOUT_LOG2),
            // The root batch was the first round trip.
            round_trips: 1,
            phase: Phase::AwaitRoot,
        };
        let step = exchange.descend(tree, 0, vec![0])?;
        Ok((exchange, step))
    }

    pub fn id(&self) -> ExchangeId {
        self.id
    }

    pub fn range(&self) -> TokenRange {
        self.range
    }

    pub fn is_finished(&self) -> bool {
        matches!(self.phase, Phase::Finished)
    }

    /// Request rounds sent so far (the root counts as one).
    pub fn round_trips(&self) -> u32 {
        self.round_trips
    }

    /// Upper bound on round trips for a tree of `depth`: `1 + ceil(depth / fanout_log2)`.
    pub fn max_round_trips(depth: u8, fanout_log2: u8) -> u32 {
        let step = u32::from(fanout_log2.clamp(1, MAX_FANOUT_LOG2));
        1 + u32::from(depth).div_ceil(step)
    }

    /// Feeds one response. `tree` is the initiator's tree for the range as it is now
    /// (it must still have the exchange's range and depth). Any error other than a
    /// response for another exchange or range finishes the exchange.
    pub fn on_response(
        &mut self,
        tree: &MerkleTree,
        response: &ExchangeResponse,
    ) -> Result<ExchangeStep, AntiEntropyError> {
        if response.id() != self.id {
            return Err(AntiEntropyError::WrongExchange {
                expected: self.id,
                got: response.id(),
            });
        }
        if response.range() != self.range {
            return Err(AntiEntropyError::WrongRange {
                expected: self.range,
                got: response.range(),
            });
        }
        let phase = std::mem::replace(&mut self.phase, Phase::Finished);
        let result = self.advance(phase, tree, response);
        if result.is_err() {
            self.phase = Phase::Finished;
        }
        result
    }

    /// The requests still unanswered, rebuilt from `tree` as it is now: what the node
    /// re-sends when a response is overdue (the responder is stateless, so a request
    /// that was in fact delivered is merely answered twice and the copy ignored).
    pub fn unanswered(&self, tree: &MerkleTree) -> Result<Vec<ExchangeRequest>, AntiEntropyError> {
        if tree.range() != self.range || tree.depth() != self.depth {
            return Err(AntiEntropyError::TreeMismatch {
                range: self.range,
                depth: self.depth,
            });
        }
        match &self.phase {
            Phase::Finished => Ok(Vec::new()),
            Phase::AwaitRoot => Ok(vec![ExchangeRequest::Root {
                id: self.id,
                range: self.range,
                depth: self.depth,
                hash: tree.root(),
            }]),
            Phase::AwaitLevel(round) => round
                .pending
                .iter()
                .map(|(part, runs)| self.level_request(tree, round.level, *part, runs))
                .collect(),
        }
    }

    /// Consumes the current phase (already replaced by `Finished`) and sets the next.
    fn advance(
        &mut self,
        phase: Phase,
        tree: &MerkleTree,
        response: &ExchangeResponse,
    ) -> Result<ExchangeStep, AntiEntropyError> {
        if matches!(phase, Phase::Finished) {
            return Ok(ExchangeStep::Wait);
        }
        if tree.range() != self.range || tree.depth() != self.depth {
            return Err(AntiEntropyError::TreeMismatch {
                range: self.range,
                depth: self.depth,
            });
        }
        match (phase, response) {
            (Phase::Finished, _) => Ok(ExchangeStep::Wait),
            (_, ExchangeResponse::Rejected { reason, .. }) => {
                Err(AntiEntropyError::Rejected(reason.clone()))
            }
            (Phase::AwaitRoot, ExchangeResponse::Root { equal: true, .. }) => {
                Ok(ExchangeStep::Done(Vec::new()))
            }
            (Phase::AwaitRoot, ExchangeResponse::Root { equal: false, .. }) => {
                self.descend(tree, 0, vec![0])
            }
            (phase @ Phase::AwaitLevel(_), ExchangeResponse::Root { .. }) => {
                // A duplicate of the root answer: already acted on.
                self.phase = phase;
                Ok(ExchangeStep::Wait)
            }
            (
                Phase::AwaitLevel(round),
                ExchangeResponse::Level {
                    level,
                    part,
                    differing,
                    ..
                },
            ) => self.on_level(tree, round, *level, *part, differing),
            (Phase::AwaitRoot, ExchangeResponse::Level { level, part, .. }) => {
                Err(AntiEntropyError::UnrequestedPart {
                    level: *level,
                    part: *part,
                })
            }
        }
    }

    fn on_level(
        &mut self,
        tree: &MerkleTree,
        mut round: LevelRound,
        level: u8,
        part: u32,
        differing: &[u16],
    ) -> Result<ExchangeStep, AntiEntropyError> {
        let pending = if level == round.level {
            round.pending.remove(&part)
        } else {
            None
        };
        let Some(runs) = pending else {
            let stale = level < round.level || (level == round.level && part < round.parts_sent);
            if !stale {
                return Err(AntiEntropyError::UnrequestedPart { level, part });
            }
            // Duplicate of an answered part, or a late answer to an earlier level.
            self.phase = Phase::AwaitLevel(round);
            return Ok(ExchangeStep::Wait);
        };
        round
            .differing
            .extend(offsets_to_indices(&runs, differing)?);
        if !round.pending.is_empty() {
            self.phase = Phase::AwaitLevel(round);
            return Ok(ExchangeStep::Wait);
        }
        let mut found = round.differing;
        found.sort_unstable();
        found.dedup();
        self.descend(tree, round.level, found)
    }

    /// Next step from the nodes of `level` found differing (`frontier`, ascending).
    fn descend(
        &mut self,
        tree: &MerkleTree,
        level: u8,
        frontier: Vec<u64>,
    ) -> Result<ExchangeStep, AntiEntropyError> {
        if level >= self.depth || frontier.is_empty() {
            // Leaves reached, or the difference vanished meanwhile (concurrent writes).
            self.phase = Phase::Finished;
            return Ok(ExchangeStep::Done(frontier));
        }
        let next = level.saturating_add(self.fanout_log2).min(self.depth);
        let parts = pack_children(&frontier, next - level);
        let mut requests = Vec::with_capacity(parts.len());
        let mut pending = BTreeMap::new();
        for (part, runs) in (0u32..).zip(parts) {
            requests.push(self.level_request(tree, next, part, &runs)?);
            pending.insert(part, runs);
        }
        self.round_trips = self.round_trips.saturating_add(1);
        self.phase = Phase::AwaitLevel(LevelRound {
            level: next,
            parts_sent: u32::try_from(requests.len()).unwrap_or(u32::MAX),
            pending,
            differing: Vec::new(),
        });
        Ok(ExchangeStep::Send(requests))
    }
    /// `Level` request for `part`: this tree's hashes of `runs` at `level`.
    fn level_request(
        &self,
        tree: &MerkleTree,
        level: u8,
        part: u32,
        runs: &[(u64, usize)],
    ) -> Result<ExchangeRequest, AntiEntropyError> {
        let mut hash_runs = Vec::with_capacity(runs.len());
        for &(index_start, len) in runs {
            let hashes = tree.level_hashes(level, index_start, len).ok_or(
                AntiEntropyError::TreeMismatch {
                    range: self.range,
                    depth: self.depth,
                },
            )?;
            hash_runs.push(HashRun {
                index_start,
                hashes: hashes.to_vec(),
            });
        }
        Ok(ExchangeRequest::Level {
            id: self.id,
            range: self.range,
            depth: self.depth,
            level,
            part,
            runs: hash_runs,
        })
    }
}
