//! Depth-first search for a linearization (Wing & Gong with Lowe's memo, as Porcupine).
//!
//! Entries (calls and returns) sit in a doubly linked list in time order. Linearizing an
//! op unlinks its call and return ("lift"); backtracking relinks them in reverse order
//! ("unlift", dancing links). Reaching a return entry means its op was not placed before
//! it returned: backtrack. Reaching the end means every op with a known return has been
//! placed; ops with unknown outcome still in the list are left out (equivalently: they
//! took effect after everything else, unobserved).

use std::collections::HashSet;

use super::model::{step, SearchOp, State};

/// Ops per search: the linearized set is a fixed-size bitset.
pub(crate) const OPS_MAX: usize = 256;
const WORDS: usize = OPS_MAX / 64;
type Bits = [u64; WORDS];

pub(crate) enum Outcome {
    Linearizable,
    Violation(Stuck),
    Exhausted,
}

/// Where the search got furthest before failing.
pub(crate) struct Stuck {
    /// The longest valid prefix of a linearization found, as op indices.
    pub prefix: Vec<usize>,
    /// The op whose return was reached after `prefix` before it could be placed.
    pub blocked: Option<usize>,
}

#[derive(Clone, Copy)]
enum Kind {
    Call(usize),
    Return(usize),
}

struct List {
    kind: Vec<Kind>,
    next: Vec<usize>,
    prev: Vec<usize>,
    call_of: Vec<usize>,
    ret_of: Vec<Option<usize>>,
}

const HEAD: usize = 0;

impl List {
    fn new(ops: &[SearchOp]) -> List {
        // Sort key: time, then calls before returns (ties are concurrent), then op index.
        let mut entries: Vec<(u64, u8, usize)> = Vec::with_capacity(ops.len() * 2);
        for (i, op) in ops.iter().enumerate() {
            entries.push((op.invoke, 0, i));
            if let Some(ret) = op.ret {
                entries.push((ret, 1, i));
            }
        }
        entries.sort_unstable();
        let tail = entries.len() + 1;
        // Slot 0 is the head sentinel, `tail` the tail sentinel; their kinds are unused.
        let mut kind = vec![Kind::Call(usize::MAX); tail + 1];
        let mut call_of = vec![0; ops.len()];
        let mut ret_of = vec![None; ops.len()];
        for (slot, &(_, is_ret, i)) in entries.iter().enumerate() {
            let slot = slot + 1;
            if is_ret == 0 {
                kind[slot] = Kind::Call(i);
                call_of[i] = slot;
            } else {
                kind[slot] = Kind::Return(i);
                ret_of[i] = Some(slot);
            }
        }
        List {
            kind,
            next: (1..=tail + 1).collect(),
            prev: (0..=tail).map(|s| s.saturating_sub(1)).collect(),
            call_of,
            ret_of,
        }
    }

    fn tail(&self) -> usize {
        self.kind.len() - 1
    }

    fn unlink(&mut self, slot: usize) {
        let (p, n) = (self.prev[slot], self.next[slot]);
        self.next[p] = n;
        self.prev[n] = p;
    }

    fn relink(&mut self, slot: usize) {
        let (p, n) = (self.prev[slot], self.next[slot]);
        self.next[p] = slot;
        self.prev[n] = slot;
    }

    fn lift(&mut self, op: usize) {
        self.unlink(self.call_of[op]);
        if let Some(r) = self.ret_of[op] {
            self.unlink(r);
        }
    }

    fn unlift(&mut self, op: usize) {
        if let Some(r) = self.ret_of[op] {
            self.relink(r);
        }
        self.relink(self.call_of[op]);
    }
}

fn flip(bits: &mut Bits, i: usize) {
    bits[i / 64] ^= 1 << (i % 64);
}

/// Searches for a linearization of `ops` (at most [`OPS_MAX`]), spending steps from
/// `budget` (shared by callers that run several searches).
pub(crate) fn search(ops: &[SearchOp], budget: &mut u64) -> Outcome {
    if ops.len() > OPS_MAX {
        return Outcome::Exhausted;
    }
    let mut list = List::new(ops);
    let tail = list.tail();
    let mut memo: HashSet<(Bits, State)> = HashSet::new();
    let mut linearized: Bits = [0; WORDS];
    let mut state = State::Absent;
    // Ops placed so far, with the state before each.
    let mut stack: Vec<(usize, State)> = Vec::new();
    let mut best = Stuck {
        prefix: Vec::new(),
        blocked: None,
    };
    let mut entry = list.next[HEAD];
    loop {
        if *budget == 0 {
            return Outcome::Exhausted;
        }
        *budget -= 1;
        if entry == tail {
            return Outcome::Linearizable;
        }
        match list.kind[entry] {
            Kind::Call(i) => {
                let placed = step(state, ops[i].op).and_then(|after| {
                    let mut bits = linearized;
                    flip(&mut bits, i);
                    memo.insert((bits, after)).then_some((bits, after))
                });
                let Some((bits, after)) = placed else {
                    entry = list.next[entry];
                    continue;
                };
                stack.push((i, state));
                state = after;
                linearized = bits;
                list.lift(i);
                entry = list.next[HEAD];
            }
            Kind::Return(i) => {
                // Remember the deepest dead end, prefix and blocker from the same branch.
                if best.blocked.is_none() || stack.len() > best.prefix.len() {
                    best.prefix = stack.iter().map(|&(op, _)| op).collect();
                    best.blocked = Some(i);
                }
                let Some((j, before)) = stack.pop() else {
                    return Outcome::Violation(best);
                };
                state = before;
                flip(&mut linearized, j);
                list.unlift(j);
                entry = list.next[list.call_of[j]];
            }
        }
    }
}
