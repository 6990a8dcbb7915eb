//! Linearizability checker for a per-key register (put / get / delete, conditional
//! set, add).
//!
//! Design after Porcupine (Athalye) and Lowe's refinement of Wing & Gong: a history is
//! partitioned by key (linearizability is compositional, so each register is checked
//! on its own), turned into a time-ordered list of call and return entries, and searched
//! depth-first for a linearization: repeatedly pick a pending call, apply it to the
//! model, and backtrack when a return is reached whose operation has not been placed.
//! A memo of `(set of linearized ops, model state)` prunes states already explored.
//!
//! Outcomes of client operations:
//! - `Ok`: the op took effect between its invoke and return time.
//! - `Unknown` (timed out, `Indeterminate`): it may have taken effect at any point after
//!   its invoke, or never. Modelled as a return time of +∞ that may be left out.
//! - `Failed` (`Unavailable`, `Contention`): it did not take effect; dropped before the
//!   search.
//! - `Updated`, `NotAnInteger`: a conditional set or add answered; like a read, the
//!   answer says what the register held when the op took effect (`update.rs`).

mod effects;
mod explain;
mod model;
mod search;
mod update;

use std::collections::BTreeMap;

pub use explain::{show_bytes, show_op, Violation};
pub use update::integer;

/// A register value. `None` in reads means "absent" (never written or deleted).
pub type Value = Vec<u8>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Write(Value),
    Delete,
    Read,
    /// Store `value` (`None`: delete) iff `condition` holds for the current value.
    Update {
        condition: Condition,
        value: Option<Value>,
    },
    /// Read the value as a decimal `i64` (absent: 0), store the sum with `delta` in
    /// decimal; "not an integer" (nothing changed) for any other value or an overflow.
    /// Only canonical decimal (what `i64::to_string` prints) counts as an integer.
    Add {
        delta: i64,
    },
}

/// The condition of an [`Op::Update`] on the register's current value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    Always,
    Absent,
    Present,
    Equals(Value),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Returned at `at`. `read` is what a `Read` returned; ignored for writes. For an
    /// update or add, a return without its result (it took effect, result unknown).
    Ok { at: u64, read: Option<Value> },
    /// An update or add answered at `at`: whether it applied (an add always does) and
    /// the value it found (`None`: absent).
    Updated {
        at: u64,
        applied: bool,
        previous: Option<Value>,
    },
    /// An add answered at `at` that the value was not an integer (or the sum would
    /// overflow): nothing changed.
    NotAnInteger { at: u64 },
    /// No answer or `Indeterminate`: may have taken effect after invoke, or never.
    Unknown,
    /// Definitely not applied (`Unavailable`, rejected).
    Failed,
}

impl Outcome {
    /// A completed write or delete.
    pub fn done(at: u64) -> Self {
        Outcome::Ok { at, read: None }
    }

    /// When the op returned, if it did.
    pub fn at(&self) -> Option<u64> {
        match self {
            Outcome::Ok { at, .. } | Outcome::Updated { at, .. } | Outcome::NotAnInteger { at } => {
                Some(*at)
            }
            Outcome::Unknown | Outcome::Failed => None,
        }
    }

    /// An answered update or add.
    pub fn updated(at: u64, applied: bool, previous: Option<&[u8]>) -> Self {
        Outcome::Updated {
            at,
            applied,
            previous: previous.map(<[u8]>::to_vec),
        }
    }

    /// A completed read that returned `value`.
    pub fn read(at: u64, value: Option<&[u8]>) -> Self {
        Outcome::Ok {
            at,
            read: value.map(<[u8]>::to_vec),
        }
    }
}

/// One client operation. Times are any monotone clock where a smaller value means
/// "earlier in real time"; equal times are treated as concurrent (the permissive
/// choice: it can hide a violation, never invent one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    pub client: u64,
    pub key: Vec<u8>,
    pub op: Op,
    pub invoke: u64,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckOptions {
    /// Histories of one key larger than this are not searched (`Unknown`). The search is
    /// exponential in the worst case; the simulator keeps per-key histories small.
    pub max_ops_per_key: usize,
    /// Search steps per key before giving up with `Unknown`.
    pub step_budget: u64,
    /// Steps spent shrinking a violation to a small explanation.
    pub explain_budget: u64,
    /// Explanations print a time `t` as `t / time_scale` (`.` the remainder) when > 1:
    /// the simulator's stamps are `ms * 1000 + n`.
    pub time_scale: u64,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            max_ops_per_key: 200,
            step_budget: 2_000_000,
            explain_budget: 4_000_000,
            time_scale: 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inconclusive {
    TooManyOps { ops: usize, max: usize },
    BudgetExceeded { steps: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Linearizable,
    Violation(Box<Violation>),
    /// The search could not decide: never to be read as a pass.
    Unknown(Inconclusive),
}

impl Verdict {
    pub fn is_violation(&self) -> bool {
        matches!(self, Verdict::Violation(_))
    }
}

/// Checks every key of `history` on its own; results in key order.
pub fn check_history(history: &[Operation], options: &CheckOptions) -> Vec<(Vec<u8>, Verdict)> {
    let mut by_key: BTreeMap<&[u8], Vec<Operation>> = BTreeMap::new();
    for op in history {
        by_key.entry(&op.key).or_default().push(op.clone());
    }
    by_key
        .into_iter()
        .map(|(key, ops)| (key.to_vec(), check_key(&ops, options)))
        .collect()
}

/// Checks the history of one register (all `ops` must share a key).
pub fn check_key(ops: &[Operation], options: &CheckOptions) -> Verdict {
    let relevant = effects::relevant(ops);
    let max = options.max_ops_per_key.min(search::OPS_MAX);
    if relevant.len() > max {
        return Verdict::Unknown(Inconclusive::TooManyOps {
            ops: relevant.len(),
            max,
        });
    }
    let prepared = model::prepare(&relevant);
    let mut budget = options.step_budget;
    match search::search(&prepared.ops, &mut budget) {
        search::Outcome::Linearizable => Verdict::Linearizable,
        search::Outcome::Exhausted => Verdict::Unknown(Inconclusive::BudgetExceeded {
            steps: options.step_budget,
        }),
        search::Outcome::Violation(_) => {
            Verdict::Violation(Box::new(explain::explain(relevant, options)))
        }
    }
}
