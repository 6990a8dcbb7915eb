//! The register model and the conversion of a key's history to what the search needs.

use std::collections::HashMap;

use super::update::{self, Cond, Seen};
use super::{Condition, Op, Operation, Outcome};

/// Register contents. Values are interned: a canonical decimal `i64` becomes `Int` (so
/// adds are arithmetic, and the same bytes always give the same state), anything else
/// an id into [`Prepared::values`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum State {
    Absent,
    Value(u32),
    Int(i64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ModelOp {
    /// Write (a value) or delete (`Absent`).
    Write(State),
    /// A read that returned this.
    Read(State),
    /// A conditional set: `value` if `cond` holds.
    Set {
        cond: Cond,
        value: State,
        seen: Seen,
    },
    Add {
        delta: i64,
        seen: Seen,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SearchOp {
    pub op: ModelOp,
    pub invoke: u64,
    /// `None`: unknown outcome, may be placed anywhere after `invoke` or left out.
    pub ret: Option<u64>,
}

/// The register's sequential specification: the state after `op`, or `None` if `op`
/// cannot happen in `state`.
pub(crate) fn step(state: State, op: ModelOp) -> Option<State> {
    match op {
        ModelOp::Write(v) => Some(v),
        ModelOp::Read(r) if r == state => Some(state),
        ModelOp::Read(_) => None,
        ModelOp::Set { cond, value, seen } => update::set(state, cond, value, seen),
        ModelOp::Add { delta, seen } => update::add(state, delta, seen),
    }
}

/// What `op` reported the register held when it took effect: a completed read's
/// result, an answered update's or add's `previous`. `None`: it reported no value.
pub(crate) fn observed(op: &Operation) -> Option<Option<&[u8]>> {
    match (&op.op, &op.outcome) {
        (Op::Read, Outcome::Ok { read, .. }) => Some(read.as_deref()),
        (Op::Read | Op::Update { .. } | Op::Add { .. }, Outcome::Updated { previous, .. }) => {
            Some(previous.as_deref())
        }
        _ => None,
    }
}

/// The value an op that may write stores if it does (`None`: absent); `None` for ops
/// that write nothing or whose stored value is not known in advance (adds).
pub(crate) fn written(op: &Operation) -> Option<Option<&[u8]>> {
    match &op.op {
        Op::Write(v) => Some(Some(v)),
        Op::Delete => Some(None),
        Op::Update { value, .. } => Some(value.as_deref()),
        Op::Read | Op::Add { .. } => None,
    }
}

/// The search's ops and the value of each interned id.
pub(crate) struct Prepared {
    pub ops: Vec<SearchOp>,
    pub values: Vec<Vec<u8>>,
}

impl Prepared {
    /// `state` for people: `absent`, or the value's bytes.
    pub fn show(&self, state: State) -> String {
        match state {
            State::Absent => "absent".to_string(),
            State::Int(n) => format!("\"{n}\""),
            State::Value(id) => self
                .values
                .get(id as usize)
                .map_or_else(|| "?".to_string(), |v| super::show_bytes(v)),
        }
    }
}

struct Interner {
    ids: HashMap<Vec<u8>, u32>,
    values: Vec<Vec<u8>>,
}

impl Interner {
    fn state(&mut self, v: Option<&[u8]>) -> State {
        let Some(v) = v else {
            return State::Absent;
        };
        if let Some(n) = update::integer(v) {
            return State::Int(n);
        }
        let next = self.values.len() as u32;
        let id = *self.ids.entry(v.to_vec()).or_insert(next);
        if id == next {
            self.values.push(v.to_vec());
        }
        State::Value(id)
    }
}

/// Interns values and converts `ops` (already `relevant`) for the search.
///
/// An unknown write (or update) whose value is written by no other op and was observed
/// must take effect before the first observation of that value took effect, hence
/// before that observer returned: it gets that return time. Same linearizations, but
/// the search no longer carries the write as pending to the end of the history (which
/// doubled its states). Not for integers while the history has adds: an add may have
/// produced the value instead.
pub(crate) fn prepare(ops: &[Operation]) -> Prepared {
    let mut writers: HashMap<&[u8], usize> = HashMap::new();
    let mut first_seen: HashMap<&[u8], u64> = HashMap::new();
    let adds = ops.iter().any(|op| matches!(op.op, Op::Add { .. }));
    for op in ops {
        if let Some(Some(v)) = written(op) {
            *writers.entry(v).or_default() += 1;
        }
        if let (Some(at), Some(Some(v))) = (op.outcome.at(), observed(op)) {
            let first = first_seen.entry(v).or_insert(at);
            *first = (*first).min(at);
        }
    }
    let bound = |op: &Operation| match (written(op), &op.outcome) {
        (Some(Some(v)), Outcome::Unknown)
            if writers.get(v) == Some(&1) && !(adds && update::integer(v).is_some()) =>
        {
            first_seen.get(v).copied()
        }
        _ => op.outcome.at(),
    };
    let mut interner = Interner {
        ids: HashMap::new(),
        values: Vec::new(),
    };
    let search_ops = ops
        .iter()
        .map(|op| {
            let seen = match &op.outcome {
                Outcome::Updated {
                    applied, previous, ..
                } => Seen::Found {
                    applied: *applied,
                    previous: interner.state(previous.as_deref()),
                },
                Outcome::NotAnInteger { .. } => Seen::NotAnInteger,
                Outcome::Ok { .. } | Outcome::Unknown | Outcome::Failed => Seen::Unknown,
            };
            let model_op = match &op.op {
                Op::Write(v) => ModelOp::Write(interner.state(Some(v))),
                Op::Delete => ModelOp::Write(State::Absent),
                Op::Read => ModelOp::Read(interner.state(observed(op).flatten())),
                Op::Update { condition, value } => ModelOp::Set {
                    cond: match condition {
                        Condition::Always => Cond::Always,
                        Condition::Absent => Cond::Absent,
                        Condition::Present => Cond::Present,
                        Condition::Equals(v) => Cond::Equals(interner.state(Some(v))),
                    },
                    value: interner.state(value.as_deref()),
                    seen,
                },
                Op::Add { delta } => ModelOp::Add {
                    delta: *delta,
                    seen,
                },
            };
            SearchOp {
                op: model_op,
                invoke: op.invoke,
                ret: bound(op),
            }
        })
        .collect();
    Prepared {
        ops: search_ops,
        values: interner.values,
    }
}
