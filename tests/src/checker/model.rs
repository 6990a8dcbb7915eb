//! The register model and the reduction of a key's history to what the search needs.

use std::collections::HashMap;

use super::{Op, Operation, Outcome};

/// Register contents as an interned value id; `None` = absent.
pub(crate) type State = Option<u32>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ModelOp {
    /// Write (`Some`) or delete (`None`).
    Write(State),
    /// A read that returned this.
    Read(State),
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
    }
}

fn returned(op: &Operation) -> Option<u64> {
    match op.outcome {
        Outcome::Ok { at, .. } => Some(at),
        Outcome::Unknown | Outcome::Failed => None,
    }
}

/// The value a read returned, if `op` is a completed read.
fn read_result(op: &Operation) -> Option<Option<&[u8]>> {
    match (&op.op, &op.outcome) {
        (Op::Read, Outcome::Ok { read, .. }) => Some(read.as_deref()),
        _ => None,
    }
}

/// The operations that constrain linearizability, in input order.
///
/// Dropped, each without changing the verdict:
/// - failed ops: they did not happen;
/// - reads without a result: a read changes nothing, and one that never returned
///   constrains nothing;
/// - unknown writes whose value no read returning after the write's invoke observed:
///   if the rest is linearizable the write can be placed last (after every other op),
///   and if the whole is, removing it leaves no read between it and the next write.
///   Keeping them would make the search branch on where each of them went.
pub(crate) fn relevant(ops: &[Operation]) -> Vec<Operation> {
    let reads: Vec<(u64, Option<&[u8]>)> = ops
        .iter()
        .filter_map(|op| Some((returned(op)?, read_result(op)?)))
        .collect();
    ops.iter()
        .filter(|op| match (&op.op, &op.outcome) {
            (_, Outcome::Failed) | (Op::Read, Outcome::Unknown) => false,
            (Op::Write(v), Outcome::Unknown) => reads
                .iter()
                .any(|(at, r)| *at > op.invoke && *r == Some(v.as_slice())),
            (Op::Delete, Outcome::Unknown) => {
                reads.iter().any(|(at, r)| *at > op.invoke && r.is_none())
            }
            _ => true,
        })
        .cloned()
        .collect()
}

/// Interns values and converts `ops` (already `relevant`) for the search.
///
/// An unknown write whose value is written by no other op and was read must take
/// effect before the first read of that value took effect, hence before that read
/// returned: it gets that return time. Same linearizations, but the search no longer
/// carries the write as pending to the end of the history (which doubled its states).
pub(crate) fn prepare(ops: &[Operation]) -> Vec<SearchOp> {
    let mut writers: HashMap<&[u8], usize> = HashMap::new();
    let mut first_read: HashMap<&[u8], u64> = HashMap::new();
    for op in ops {
        if let Op::Write(v) = &op.op {
            *writers.entry(v).or_default() += 1;
        }
        if let (Some(at), Some(Some(v))) = (returned(op), read_result(op)) {
            let first = first_read.entry(v).or_insert(at);
            *first = (*first).min(at);
        }
    }
    let bound = |op: &Operation| match (&op.op, &op.outcome) {
        (Op::Write(v), Outcome::Unknown) if writers.get(v.as_slice()) == Some(&1) => {
            first_read.get(v.as_slice()).copied()
        }
        _ => returned(op),
    };
    let mut ids: HashMap<Vec<u8>, u32> = HashMap::new();
    let mut intern = |v: Option<&[u8]>| -> State {
        let next = ids.len() as u32;
        Some(*ids.entry(v?.to_vec()).or_insert(next))
    };
    ops.iter()
        .map(|op| {
            let model_op = match &op.op {
                Op::Write(v) => ModelOp::Write(intern(Some(v))),
                Op::Delete => ModelOp::Write(None),
                Op::Read => ModelOp::Read(intern(read_result(op).flatten())),
            };
            SearchOp {
                op: model_op,
                invoke: op.invoke,
                ret: bound(op),
            }
        })
        .collect()
}
