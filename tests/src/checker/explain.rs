//! Shrinks a non-linearizable history to a small core and renders it for people.
//!
//! Shrinking only removes operations whose removal cannot turn a linearizable history
//! into a non-linearizable one, so the core is a genuine witness: the full history
//! contains it, and it is already not linearizable.
//! - Any op whose effect nothing remaining consumes can go (`effects::removable`):
//!   reads and other pure observations always.
//! - Everything that starts after the blocked op returned can go, together with every
//!   pure observation that returned after that: such writes take effect after every
//!   remaining observation. Not when an answered update straddles that point: placed
//!   before it, it must stay; placed after, its `previous` may have come from a write
//!   that went.

use std::fmt::Write as _;

use super::effects::{relevant, removable};
use super::model::{observed, prepare, step, State};
use super::search::{search, Outcome, Stuck};
use super::{CheckOptions, Condition, Op, Operation, Outcome as OpOutcome};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub key: Vec<u8>,
    /// A small sub-history that is already not linearizable, in invoke order.
    pub ops: Vec<Operation>,
    /// Operations of the key that the checker considered.
    pub ops_considered: usize,
    /// Human-readable account of `ops` and where every linearization attempt fails.
    pub explanation: String,
}

impl Violation {
    /// Earliest invoke and latest finite return among the core ops: where to look in
    /// a trace.
    pub fn window(&self) -> (u64, u64) {
        let start = self.ops.iter().map(|o| o.invoke).min().unwrap_or(0);
        let end = self
            .ops
            .iter()
            .map(|o| returned(o).unwrap_or(o.invoke))
            .max();
        (start, end.unwrap_or(start))
    }
}

fn returned(op: &Operation) -> Option<u64> {
    op.outcome.at()
}

fn stuck_of(ops: &[Operation], budget: &mut u64) -> Option<Stuck> {
    match search(&prepare(&relevant(ops)).ops, budget) {
        Outcome::Violation(stuck) => Some(stuck),
        Outcome::Linearizable | Outcome::Exhausted => None,
    }
}

/// Whether `op` only observes the register (changes nothing wherever it is placed).
fn pure_observer(op: &Operation) -> bool {
    match (&op.op, &op.outcome) {
        (Op::Read, _) | (_, OpOutcome::NotAnInteger { .. }) => true,
        (Op::Update { .. }, OpOutcome::Updated { applied, .. }) => !applied,
        _ => false,
    }
}

/// `ops` without what starts after `cut`, and without the observations that returned
/// after it; `None` if an answered update straddles `cut` (see the module docs).
fn truncate(ops: &[Operation], cut: u64) -> Option<Vec<Operation>> {
    let mut kept = Vec::new();
    for o in ops {
        let answered = observed(o).is_some() || matches!(o.outcome, OpOutcome::NotAnInteger { .. });
        let keep = if pure_observer(o) {
            returned(o).is_some_and(|at| at <= cut)
        } else if answered && !matches!(o.op, Op::Read) {
            match returned(o) {
                Some(at) if at <= cut => true,
                _ if o.invoke > cut => false,
                _ => return None,
            }
        } else {
            o.invoke <= cut
        };
        if keep {
            kept.push(o.clone());
        }
    }
    Some(kept)
}

/// `ops` (relevant, non-linearizable) shrunk within `budget` steps.
fn shrink(mut ops: Vec<Operation>, budget: &mut u64) -> Vec<Operation> {
    let Some(stuck) = stuck_of(&ops, budget) else {
        return ops;
    };
    // The search works on `relevant(ops)`, which is `ops` itself here.
    let cut = stuck.blocked.and_then(|b| returned(&ops[b]));
    if let Some(truncated) = cut.and_then(|cut| truncate(&ops, cut)) {
        let truncated = relevant(&truncated);
        if truncated.len() < ops.len() && stuck_of(&truncated, budget).is_some() {
            ops = truncated;
        }
    }
    // Greedy one-at-a-time removal until nothing more can go (or the budget is spent).
    let mut changed = true;
    while changed && *budget > 0 {
        changed = false;
        let mut i = ops.len();
        while i > 0 && *budget > 0 {
            i -= 1;
            if !removable(&ops, i) {
                continue;
            }
            let mut fewer = ops.clone();
            fewer.remove(i);
            if stuck_of(&relevant(&fewer), budget).is_some() {
                ops = relevant(&fewer);
                i = i.min(ops.len());
                changed = true;
            }
        }
    }
    ops
}

pub(crate) fn explain(ops: Vec<Operation>, options: &CheckOptions) -> Violation {
    let key = ops.first().map(|o| o.key.clone()).unwrap_or_default();
    let ops_considered = ops.len();
    let mut budget = options.explain_budget;
    let mut core = shrink(ops, &mut budget);
    core.sort_by_key(|o| o.invoke);
    // Indices in the search's answer refer to `relevant(core)`; make that `core` itself.
    let core = relevant(&core);
    let mut budget = options.step_budget;
    let stuck = stuck_of(&core, &mut budget);
    let explanation = render(
        &key,
        &core,
        ops_considered,
        stuck.as_ref(),
        options.time_scale,
    );
    Violation {
        key,
        ops: core,
        ops_considered,
        explanation,
    }
}

/// `"text"` for printable ASCII, hex otherwise.
pub fn show_bytes(bytes: &[u8]) -> String {
    if bytes.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        format!("{:?}", String::from_utf8_lossy(bytes))
    } else {
        bytes.iter().fold(String::from("0x"), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    }
}

fn show_value(v: Option<&[u8]>) -> String {
    v.map_or_else(|| "absent".to_string(), show_bytes)
}

fn show_time(t: u64, scale: u64) -> String {
    if scale > 1 {
        let digits = scale.ilog10() as usize;
        format!("{}.{:0digits$}", t / scale, t % scale)
    } else {
        t.to_string()
    }
}

/// One line per op: `client c [invoke, return] op -> result`, times divided by `scale`.
pub fn show_op(op: &Operation, scale: u64) -> String {
    let what = match &op.op {
        Op::Write(v) => format!("write {}", show_bytes(v)),
        Op::Delete => "delete".to_string(),
        Op::Read => "read".to_string(),
        Op::Update { condition, value } => {
            let when = match condition {
                Condition::Always => "always".to_string(),
                Condition::Absent => "if absent".to_string(),
                Condition::Present => "if present".to_string(),
                Condition::Equals(e) => format!("if {}", show_bytes(e)),
            };
            match value {
                Some(v) => format!("set {} {when}", show_bytes(v)),
                None => format!("delete {when}"),
            }
        }
        Op::Add { delta } => format!("add {delta}"),
    };
    let (end, result) = match (&op.op, &op.outcome) {
        (Op::Read, OpOutcome::Ok { at, read }) => {
            (show_time(*at, scale), show_value(read.as_deref()))
        }
        (_, OpOutcome::Ok { at, .. }) => (show_time(*at, scale), "ok".to_string()),
        (
            _,
            OpOutcome::Updated {
                at,
                applied,
                previous,
            },
        ) => (
            show_time(*at, scale),
            format!(
                "{}, found {}",
                if *applied { "applied" } else { "not applied" },
                show_value(previous.as_deref())
            ),
        ),
        (_, OpOutcome::NotAnInteger { at }) => {
            (show_time(*at, scale), "not an integer".to_string())
        }
        (_, OpOutcome::Unknown) => ("?".to_string(), "unknown".to_string()),
        (_, OpOutcome::Failed) => ("-".to_string(), "failed".to_string()),
    };
    format!(
        "client {} [{}, {}] {} -> {}",
        op.client,
        show_time(op.invoke, scale),
        end,
        what,
        result
    )
}

fn render(
    key: &[u8],
    core: &[Operation],
    considered: usize,
    stuck: Option<&Stuck>,
    scale: u64,
) -> String {
    let mut out = format!(
        "key {}: not linearizable; these {} of {} ops already are not:\n",
        show_bytes(key),
        core.len(),
        considered
    );
    for (i, op) in core.iter().enumerate() {
        let _ = writeln!(out, "  #{i} {}", show_op(op, scale));
    }
    let Some(stuck) = stuck else {
        return out;
    };
    let prefix: Vec<String> = stuck.prefix.iter().map(|i| format!("#{i}")).collect();
    let _ = write!(
        out,
        "  furthest linearization: [{}]",
        if prefix.is_empty() {
            "nothing".to_string()
        } else {
            prefix.join(", ")
        }
    );
    if let Some(b) = stuck.blocked {
        // Replay the prefix (valid by construction) for the state it leaves.
        let prepared = prepare(core);
        let state = stuck.prefix.iter().try_fold(State::Absent, |state, &i| {
            step(state, prepared.ops.get(i)?.op)
        });
        let _ = write!(
            out,
            "; then #{b} must take effect before it returns, but no remaining op can \
             (the register would hold {})",
            state.map_or_else(|| "?".to_string(), |s| prepared.show(s))
        );
    }
    out.push('\n');
    out
}
