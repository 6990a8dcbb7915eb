//! The update mix (`SimConfig::updates_every`): conditional sets and adds on the
//! register workload's own keys, mixed with its gets, puts and deletes, so the checker
//! sees every kind of op race on one register. What each kind is for:
//!
//! - compare-and-set on the value the client last saw of the key (a read's result or
//!   an update's `current`): stale expectations race fresh ones;
//! - set-if-absent, set-if-present, get-and-set, get-and-delete, delete-if-equals;
//! - adds of small deltas (negative ones too) on the integers that puts and sets
//!   sometimes write, and on the other values (answered "not an integer").
//!
//! Values the mix writes are unique like the puts' (`Workload::fresh_value`); integers
//! are multiples of 1000, so adds rarely make one that a write also wrote.

use ringkv_core::rand::SplitMix64;

use super::api::{Condition, Reply, Update};
use crate::checker::{self, Op, Outcome};

/// Per mille of the values written in the mix that are decimal integers.
pub const INTEGER_PERMILLE: u64 = 400;

/// The update a client sends: `seen` is the value it last saw of the key (`None`: it
/// saw nothing yet; `Some(None)`: absent), `fresh` makes a new unique value.
pub fn choose(
    rng: &mut SplitMix64,
    seen: Option<Option<&[u8]>>,
    fresh: &mut dyn FnMut(&mut SplitMix64) -> Vec<u8>,
) -> Update {
    let roll = rng.below(100);
    let set = |condition, value| Update::Set { condition, value };
    match roll {
        0..=34 => Update::Add {
            // -3..=5: mostly up, sometimes down through zero.
            delta: rng.below(9) as i64 - 3,
        },
        35..=59 => match seen {
            Some(Some(v)) => set(Condition::Equals(v.to_vec()), Some(fresh(rng))),
            _ => set(Condition::Absent, Some(fresh(rng))),
        },
        60..=69 => set(Condition::Absent, Some(fresh(rng))),
        70..=79 => set(Condition::Present, Some(fresh(rng))),
        80..=89 => set(Condition::Always, Some(fresh(rng))),
        90..=94 => set(Condition::Always, None),
        _ => match seen {
            Some(Some(v)) => set(Condition::Equals(v.to_vec()), None),
            _ => set(Condition::Present, None),
        },
    }
}

/// The checker's op for `update`.
pub fn op_of(update: &Update) -> Op {
    match update {
        Update::Add { delta } => Op::Add { delta: *delta },
        Update::Set { condition, value } => Op::Update {
            condition: match condition {
                Condition::Always => checker::Condition::Always,
                Condition::Absent => checker::Condition::Absent,
                Condition::Present => checker::Condition::Present,
                Condition::Equals(v) => checker::Condition::Equals(v.clone()),
            },
            value: value.clone(),
        },
    }
}

/// What a reply to update `op` says, if it is an answer of the right kind and
/// consistent in itself: `current` must be the new value if applied (for an add, the
/// sum of `previous` and the delta; an add always applies), else `previous`. Whether
/// `applied` and `previous` fit the register is the checker's question.
pub fn outcome_of(op: &Op, reply: &Reply, at: u64) -> Option<Outcome> {
    match (op, reply) {
        (
            Op::Update { value, .. },
            Reply::Updated {
                applied,
                previous,
                current,
            },
        ) => {
            let expected = if *applied { value } else { previous };
            (current == expected).then(|| Outcome::updated(at, *applied, previous.as_deref()))
        }
        (
            Op::Add { delta },
            Reply::Updated {
                applied,
                previous,
                current,
            },
        ) => {
            let base = match previous.as_deref() {
                None => Some(0),
                Some(p) => checker::integer(p),
            };
            let sum = base.and_then(|b| b.checked_add(*delta))?;
            let consistent = *applied && current.as_deref() == Some(sum.to_string().as_bytes());
            consistent.then(|| Outcome::updated(at, true, previous.as_deref()))
        }
        (Op::Add { .. }, Reply::NotAnInteger) => Some(Outcome::NotAnInteger { at }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inconsistent_answers_are_not_outcomes() {
        let cas = Op::Update {
            condition: checker::Condition::Equals(b"a".to_vec()),
            value: Some(b"b".to_vec()),
        };
        let updated = |applied, previous: &[u8], current: &[u8]| Reply::Updated {
            applied,
            previous: Some(previous.to_vec()),
            current: Some(current.to_vec()),
        };
        assert_eq!(
            outcome_of(&cas, &updated(true, b"a", b"b"), 7),
            Some(Outcome::updated(7, true, Some(b"a")))
        );
        assert!(outcome_of(&cas, &updated(false, b"c", b"c"), 7).is_some());
        assert_eq!(outcome_of(&cas, &updated(true, b"a", b"a"), 7), None);
        assert_eq!(outcome_of(&cas, &Reply::NotAnInteger, 7), None);
        let add = Op::Add { delta: -3 };
        assert_eq!(
            outcome_of(&add, &updated(true, b"5", b"2"), 7),
            Some(Outcome::updated(7, true, Some(b"5")))
        );
        assert_eq!(outcome_of(&add, &updated(true, b"5", b"8"), 7), None);
        assert_eq!(outcome_of(&add, &updated(false, b"5", b"2"), 7), None);
        assert_eq!(outcome_of(&add, &updated(true, b"x", b"2"), 7), None);
        let from_absent = Reply::Updated {
            applied: true,
            previous: None,
            current: Some(b"-3".to_vec()),
        };
        assert!(outcome_of(&add, &from_absent, 7).is_some());
        assert_eq!(
            outcome_of(&add, &Reply::NotAnInteger, 7),
            Some(Outcome::NotAnInteger { at: 7 })
        );
    }
}
