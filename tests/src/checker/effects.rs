//! Which operations of a key's history can be removed without changing whether it is
//! linearizable: before the search (`relevant`) and while shrinking an explanation
//! (`removable`).
//!
//! The argument for an op `o` that may leave value `w` in the register: take a
//! linearization of the history and remove `o` from it. Only the ops placed after `o`
//! and before the next op that overwrites `w` see a different state. If none of them
//! *consumes* `w` — reports it (a read's result, an update's `previous`), answers "not
//! an integer" about it, or is an unanswered add or conditional set whose effect on `w`
//! differs from a no-op — then those ops are unanswered no-ops on `w`, which may be
//! left out too, and the rest is still a linearization. An op placed after `o` returned
//! at or after `o`'s invoke, so observers that returned earlier cannot consume `w`.

use super::model::{observed, written};
use super::update::integer;
use super::{Condition, Op, Operation, Outcome};

/// What an op may leave in the register.
enum Effect<'a> {
    /// Nothing: it only observes, or did not take effect.
    None,
    /// This value (`None`: absent).
    Value(Option<std::borrow::Cow<'a, [u8]>>),
    /// Some integer: an unanswered add (its sum depends on where it is placed).
    AnyInteger,
}

fn effect(op: &Operation) -> Effect<'_> {
    match (&op.op, &op.outcome) {
        (_, Outcome::Failed) | (Op::Read, _) | (_, Outcome::NotAnInteger { .. }) => Effect::None,
        (Op::Update { .. }, Outcome::Updated { applied: false, .. }) => Effect::None,
        (Op::Add { delta }, Outcome::Updated { previous, .. }) => {
            let base = match previous.as_deref() {
                None => Some(0),
                Some(p) => integer(p),
            };
            // An impossible answer: any history with it is not linearizable anyway.
            match base.and_then(|b| b.checked_add(*delta)) {
                Some(n) => Effect::Value(Some(n.to_string().into_bytes().into())),
                None => Effect::None,
            }
        }
        (Op::Add { .. }, _) => Effect::AnyInteger,
        _ => match written(op) {
            Some(w) => Effect::Value(w.map(Into::into)),
            None => Effect::None,
        },
    }
}

/// Whether `o`, answered or not, may take effect with a result nobody saw.
fn unanswered(o: &Operation) -> bool {
    matches!(o.outcome, Outcome::Unknown | Outcome::Ok { .. })
}

/// Whether `other` consumes value `w` (`None`: absent) left by an op invoked at `since`.
fn consumes(other: &Operation, w: Option<&[u8]>, since: u64) -> bool {
    let after = other.outcome.at().is_some_and(|at| at >= since);
    match (&other.op, &other.outcome) {
        (_, Outcome::Failed) => false,
        (Op::Add { delta }, Outcome::NotAnInteger { .. }) => {
            after && w.is_some_and(|v| integer(v).is_none_or(|n| n.checked_add(*delta).is_none()))
        }
        (Op::Add { .. }, _) if unanswered(other) => w.is_none_or(|v| integer(v).is_some()),
        (Op::Update { condition, .. }, _) if unanswered(other) => match condition {
            Condition::Always => false,
            Condition::Absent => w.is_none(),
            Condition::Present => w.is_some(),
            Condition::Equals(e) => w == Some(e.as_slice()),
        },
        _ => after && observed(other) == Some(w),
    }
}

/// Whether `other` consumes some integer left by an unanswered add invoked at `since`.
fn consumes_integer(other: &Operation, since: u64) -> bool {
    let after = other.outcome.at().is_some_and(|at| at >= since);
    match (&other.op, &other.outcome) {
        (_, Outcome::Failed) => false,
        // Any integer: an overflowing sum too.
        (Op::Add { .. }, Outcome::NotAnInteger { .. }) => after,
        (Op::Add { .. }, _) if unanswered(other) => true,
        (Op::Update { condition, .. }, _) if unanswered(other) => match condition {
            Condition::Always | Condition::Absent => false,
            Condition::Present => true,
            Condition::Equals(e) => integer(e).is_some(),
        },
        _ => {
            after
                && observed(other)
                    .flatten()
                    .is_some_and(|v| integer(v).is_some())
        }
    }
}

/// Whether removing `ops[i]` keeps every linearizable history linearizable.
pub(crate) fn removable(ops: &[Operation], i: usize) -> bool {
    let since = ops[i].invoke;
    let others = || ops.iter().enumerate().filter(move |&(j, _)| j != i);
    match effect(&ops[i]) {
        Effect::None => true,
        Effect::Value(w) => !others().any(|(_, o)| consumes(o, w.as_deref(), since)),
        Effect::AnyInteger => !others().any(|(_, o)| consumes_integer(o, since)),
    }
}

/// The operations that constrain linearizability, in input order.
///
/// Dropped, each without changing the verdict:
/// - failed ops: they did not happen;
/// - reads without a result: a read changes nothing, and one that never returned
///   constrains nothing;
/// - unknown-outcome ops whose effect nothing consumes (`removable`): if the rest is
///   linearizable they can be placed last (after every other op), and if the whole is,
///   the rest is by the argument above. Keeping them would make the search branch on
///   where each of them went.
pub(crate) fn relevant(ops: &[Operation]) -> Vec<Operation> {
    (0..ops.len())
        .filter(|&i| match (&ops[i].op, &ops[i].outcome) {
            (_, Outcome::Failed) | (Op::Read, Outcome::Unknown) => false,
            (_, Outcome::Unknown) => !removable(ops, i),
            _ => true,
        })
        .map(|i| ops[i].clone())
        .collect()
}
