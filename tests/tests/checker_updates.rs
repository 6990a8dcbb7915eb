//! The linearizability checker on histories with conditional sets and adds: hand-written
//! ones, and generated ones compared with a brute-force search over every order.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use ringkv_tests::checker::{check_key, CheckOptions, Condition, Op, Operation, Outcome, Verdict};

fn op(client: u64, op: Op, invoke: u64, outcome: Outcome) -> Operation {
    Operation {
        client,
        key: b"k".to_vec(),
        op,
        invoke,
        outcome,
    }
}

fn write(client: u64, v: &str, invoke: u64, ret: u64) -> Operation {
    op(client, Op::Write(v.into()), invoke, Outcome::done(ret))
}

fn read(client: u64, v: Option<&str>, invoke: u64, ret: u64) -> Operation {
    let value = v.map(str::as_bytes);
    op(client, Op::Read, invoke, Outcome::read(ret, value))
}

fn set(condition: Condition, value: Option<&str>) -> Op {
    Op::Update {
        condition,
        value: value.map(Into::into),
    }
}

fn cas(expected: &str, value: &str) -> Op {
    set(Condition::Equals(expected.into()), Some(value))
}

/// An answered update or add.
fn found(applied: bool, previous: Option<&str>, ret: u64) -> Outcome {
    Outcome::updated(ret, applied, previous.map(str::as_bytes))
}

fn check(ops: &[Operation]) -> Verdict {
    check_key(ops, &CheckOptions::default())
}

fn assert_ok(ops: &[Operation]) {
    assert_eq!(check(ops), Verdict::Linearizable, "{ops:#?}");
}

fn assert_violation(ops: &[Operation]) -> String {
    match check(ops) {
        Verdict::Violation(v) => v.explanation,
        other => panic!("expected a violation, got {other:?} for {ops:#?}"),
    }
}

#[test]
fn a_lost_increment_is_a_violation() {
    let add = Op::Add { delta: 1 };
    // Both adds found the key absent and stored 1: one of them was lost.
    let explanation = assert_violation(&[
        op(1, add.clone(), 0, found(true, None, 10)),
        op(2, add.clone(), 0, found(true, None, 10)),
    ]);
    assert!(explanation.contains("add 1"), "{explanation}");
    assert!(
        explanation.contains("applied, found absent"),
        "{explanation}"
    );
    // The same adds, one after the other: fine; and a read must see both.
    let both = [
        op(1, add.clone(), 0, found(true, None, 10)),
        op(2, add.clone(), 0, found(true, Some("1"), 10)),
    ];
    assert_ok(&both);
    assert_ok(&[both[0].clone(), both[1].clone(), read(3, Some("2"), 11, 12)]);
    assert_violation(&[both[0].clone(), both[1].clone(), read(3, Some("1"), 11, 12)]);
}

#[test]
fn adds_count_from_a_written_integer_and_refuse_other_values() {
    assert_ok(&[
        write(1, "40", 0, 1),
        op(1, Op::Add { delta: -42 }, 2, found(true, Some("40"), 3)),
        read(2, Some("-2"), 4, 5),
        write(1, "x", 6, 7),
        op(2, Op::Add { delta: 1 }, 8, Outcome::NotAnInteger { at: 9 }),
        read(2, Some("x"), 10, 11),
    ]);
    // "Not an integer" with an integer, or nothing, there.
    assert_violation(&[
        write(1, "40", 0, 1),
        op(2, Op::Add { delta: 1 }, 2, Outcome::NotAnInteger { at: 3 }),
    ]);
    assert_violation(&[op(
        2,
        Op::Add { delta: 1 },
        2,
        Outcome::NotAnInteger { at: 3 },
    )]);
    // Only canonical decimal is an integer.
    assert_ok(&[
        write(1, "040", 0, 1),
        op(2, Op::Add { delta: 1 }, 2, Outcome::NotAnInteger { at: 3 }),
    ]);
    // An overflow answers "not an integer" too.
    assert_ok(&[
        write(1, &i64::MAX.to_string(), 0, 1),
        op(2, Op::Add { delta: 1 }, 2, Outcome::NotAnInteger { at: 3 }),
    ]);
}

#[test]
fn a_compare_and_set_on_a_stale_expectation_is_a_violation() {
    // "b" replaced "a" before the CAS began, yet it found "a" and applied.
    let explanation = assert_violation(&[
        write(1, "a", 0, 1),
        write(1, "b", 2, 3),
        op(2, cas("a", "c"), 4, found(true, Some("a"), 5)),
    ]);
    assert!(explanation.contains("set \"c\" if \"a\""), "{explanation}");
    // Had the write of "b" overlapped it, the CAS could have gone first.
    assert_ok(&[
        write(1, "a", 0, 1),
        write(1, "b", 2, 10),
        op(2, cas("a", "c"), 4, found(true, Some("a"), 5)),
        read(3, Some("b"), 11, 12),
    ]);
    // Two CASes on one expectation cannot both apply.
    assert_violation(&[
        write(1, "a", 0, 1),
        op(2, cas("a", "c"), 4, found(true, Some("a"), 10)),
        op(3, cas("a", "d"), 4, found(true, Some("a"), 10)),
    ]);
    // A refusal must be right about the value and the condition.
    assert_ok(&[
        write(1, "a", 0, 1),
        op(2, cas("z", "c"), 2, found(false, Some("a"), 3)),
    ]);
    assert_violation(&[
        write(1, "a", 0, 1),
        op(2, cas("a", "c"), 2, found(false, Some("a"), 3)),
    ]);
    assert_violation(&[
        write(1, "a", 0, 1),
        op(
            2,
            set(Condition::Absent, Some("c")),
            2,
            found(true, Some("a"), 3),
        ),
    ]);
}

#[test]
fn concurrent_updates_puts_and_deletes_are_accepted() {
    assert_ok(&[
        // Two set-if-absent race; one wins.
        op(
            1,
            set(Condition::Absent, Some("a")),
            0,
            found(true, None, 10),
        ),
        op(
            2,
            set(Condition::Absent, Some("b")),
            1,
            found(false, Some("a"), 9),
        ),
        read(3, Some("a"), 2, 8),
        // A get-and-delete and a put overlap; the put went first.
        op(
            1,
            set(Condition::Always, None),
            11,
            found(true, Some("p"), 20),
        ),
        write(2, "p", 11, 15),
        read(3, None, 21, 22),
        // Set-if-present on an absent key does nothing; an add starts from 0.
        op(
            1,
            set(Condition::Present, Some("q")),
            23,
            found(false, None, 24),
        ),
        op(2, Op::Add { delta: 3 }, 25, found(true, None, 30)),
        op(3, Op::Add { delta: -1 }, 26, found(true, Some("3"), 31)),
        op(1, cas("2", "r"), 32, found(true, Some("2"), 33)),
        read(2, Some("r"), 34, 35),
    ]);
}

#[test]
fn an_unanswered_add_is_placed_or_left_out() {
    let base = [
        write(1, "5", 0, 1),
        op(2, Op::Add { delta: 2 }, 2, Outcome::Unknown),
    ];
    let with = |more: &[Operation]| [&base[..], more].concat();
    assert_ok(&with(&[read(3, Some("7"), 10, 11)]));
    assert_ok(&with(&[read(3, Some("5"), 10, 11)]));
    // Taken effect once, it cannot be undone, nor happen twice.
    assert_violation(&with(&[
        read(3, Some("7"), 10, 11),
        read(3, Some("5"), 12, 13),
    ]));
    assert_violation(&with(&[read(3, Some("9"), 10, 11)]));
    // Nor take effect before it was asked for.
    assert_violation(&[
        write(1, "5", 0, 1),
        read(3, Some("7"), 2, 3),
        op(2, Op::Add { delta: 2 }, 4, Outcome::Unknown),
    ]);
    // Its sum is observed by another add's `previous`.
    assert_ok(&with(&[op(
        3,
        Op::Add { delta: 1 },
        10,
        found(true, Some("7"), 11),
    )]));
}

#[test]
fn an_unanswered_set_applies_iff_its_condition_holds_where_placed() {
    let unknown_if_absent = op(2, set(Condition::Absent, Some("b")), 2, Outcome::Unknown);
    assert_violation(&[
        write(1, "a", 0, 1),
        unknown_if_absent.clone(),
        read(3, Some("b"), 10, 11),
    ]);
    // A concurrent delete makes room for it.
    assert_ok(&[
        write(1, "a", 0, 1),
        unknown_if_absent.clone(),
        op(1, Op::Delete, 2, Outcome::done(5)),
        read(3, Some("b"), 10, 11),
    ]);
}

/// Ops that do not leave a value some other op saw may be dropped before the search;
/// with updates, an update's `previous` or an add's input can be what saw it.
#[test]
fn values_seen_only_by_updates_keep_their_unanswered_writers() {
    let unknown = |v: &str, invoke| op(1, Op::Write(v.into()), invoke, Outcome::Unknown);
    assert_ok(&[
        unknown("a", 0),
        op(2, cas("a", "b"), 5, found(true, Some("a"), 6)),
    ]);
    assert_ok(&[
        unknown("5", 0),
        op(2, Op::Add { delta: 1 }, 1, Outcome::Unknown),
        read(3, Some("6"), 5, 6),
    ]);
    assert_ok(&[
        unknown("x", 0),
        op(2, Op::Add { delta: 1 }, 5, Outcome::NotAnInteger { at: 6 }),
    ]);
    assert_ok(&[
        unknown("a", 0),
        op(2, cas("a", "b"), 1, Outcome::Unknown),
        read(3, Some("b"), 5, 6),
    ]);
}

/// An integer first seen before its only writer was asked for may have come from an
/// add: the writer is not bound to come before that observation.
#[test]
fn integers_may_come_from_adds() {
    assert_ok(&[
        op(1, Op::Add { delta: 5 }, 0, found(true, None, 1)),
        read(2, Some("5"), 3, 4),
        op(3, Op::Write(b"5".to_vec()), 10, Outcome::Unknown),
        op(1, Op::Add { delta: 1 }, 20, found(true, Some("5"), 21)),
    ]);
}

// ---------------------------------------------------------------------------------------
// Generated histories, checked against a brute-force search: every order of the ops
// that respects real time, every subset of the unanswered ones left out.

/// The spec, written again independently of the checker's model.
fn integer(v: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(v).ok()?;
    s.parse::<i64>().ok().filter(|n| n.to_string() == s)
}

fn apply(state: &Option<Vec<u8>>, o: &Operation) -> Option<Option<Vec<u8>>> {
    let previous_is = |p: &Option<Vec<u8>>| p == state;
    match (&o.op, &o.outcome) {
        (Op::Read, Outcome::Ok { read, .. }) => (read == state).then(|| state.clone()),
        (Op::Read, _) => Some(state.clone()),
        (Op::Write(v), _) => Some(Some(v.clone())),
        (Op::Delete, _) => Some(None),
        (Op::Update { condition, value }, outcome) => {
            let holds = match condition {
                Condition::Always => true,
                Condition::Absent => state.is_none(),
                Condition::Present => state.is_some(),
                Condition::Equals(e) => state.as_ref() == Some(e),
            };
            let after = if holds { value.clone() } else { state.clone() };
            match outcome {
                Outcome::Updated {
                    applied, previous, ..
                } => (previous_is(previous) && *applied == holds).then_some(after),
                Outcome::NotAnInteger { .. } => None,
                _ => Some(after),
            }
        }
        (Op::Add { delta }, outcome) => {
            let sum = match state {
                None => Some(*delta),
                Some(v) => integer(v).and_then(|n| n.checked_add(*delta)),
            };
            let stored = sum.map(|n| Some(n.to_string().into_bytes()));
            match outcome {
                Outcome::Updated {
                    applied, previous, ..
                } => stored.filter(|_| *applied && previous_is(previous)),
                Outcome::NotAnInteger { .. } => sum.is_none().then(|| state.clone()),
                _ => Some(stored.unwrap_or_else(|| state.clone())),
            }
        }
    }
}

fn brute_force(ops: &[Operation]) -> bool {
    let ops: Vec<&Operation> = ops
        .iter()
        .filter(|o| o.outcome != Outcome::Failed)
        .collect();
    fn go(ops: &[&Operation], placed: &mut Vec<bool>, state: Option<Vec<u8>>) -> bool {
        let pending = |placed: &[bool], i: usize| !placed[i] && ops[i].outcome.at().is_some();
        if !(0..ops.len()).any(|i| pending(placed, i)) {
            return true;
        }
        for i in 0..ops.len() {
            // `i` may go next unless an unplaced op returned before it was invoked.
            let blocked = (0..ops.len()).any(|j| {
                pending(placed, j) && ops[j].outcome.at().is_some_and(|at| at < ops[i].invoke)
            });
            if placed[i] || blocked {
                continue;
            }
            if let Some(after) = apply(&state, ops[i]) {
                placed[i] = true;
                let ok = go(ops, placed, after);
                placed[i] = false;
                if ok {
                    return true;
                }
            }
        }
        false
    }
    go(&ops, &mut vec![false; ops.len()], None)
}

const VALUES: [&str; 4] = ["a", "b", "1", "2"];

#[derive(Debug, Clone)]
struct Gen {
    kind: u8,
    value: usize,
    delta: i64,
    before: u64,
    after: u64,
    /// Unanswered (0), failed (1) or answered (else); for unanswered ops, whether it
    /// took effect.
    answer: u8,
    took_effect: bool,
}

fn gen_op() -> impl Strategy<Value = Gen> {
    (
        0..9u8,
        0..4usize,
        -1..3i64,
        0..30u64,
        0..30u64,
        0..8u8,
        any::<bool>(),
    )
        .prop_map(
            |(kind, value, delta, before, after, answer, took_effect)| Gen {
                kind,
                value,
                delta,
                before,
                after,
                answer,
                took_effect,
            },
        )
}

fn gen_kind(g: &Gen) -> Op {
    let value = || VALUES[g.value].as_bytes().to_vec();
    match g.kind {
        0 => Op::Read,
        1 => Op::Write(value()),
        2 => Op::Delete,
        3 => set(Condition::Equals(value()), Some(VALUES[(g.value + 1) % 4])),
        4 => set(Condition::Absent, Some(VALUES[g.value])),
        5 => set(Condition::Present, None),
        6 => set(Condition::Always, Some(VALUES[g.value])),
        _ => Op::Add { delta: g.delta },
    }
}

/// A real execution at points 20 apart, windows around them, answers from the state.
fn execute(plan: &[Gen]) -> Vec<Operation> {
    let mut state: Option<Vec<u8>> = None;
    let mut ops = Vec::new();
    for (i, g) in plan.iter().enumerate() {
        let point = 20 * (i as u64 + 1);
        let mut o = op(
            i as u64,
            gen_kind(g),
            point - g.before.min(19),
            Outcome::Unknown,
        );
        let at = point + g.after;
        // Unanswered, `apply` never refuses.
        let after = apply(&state, &o).unwrap();
        o.outcome = match g.answer {
            0 => Outcome::Unknown,
            1 if !matches!(o.op, Op::Read) => Outcome::Failed,
            _ => match &o.op {
                Op::Read => Outcome::read(at, state.as_deref()),
                Op::Write(_) | Op::Delete => Outcome::done(at),
                Op::Update { condition, .. } => {
                    let holds = match condition {
                        Condition::Always => true,
                        Condition::Absent => state.is_none(),
                        Condition::Present => state.is_some(),
                        Condition::Equals(e) => state.as_ref() == Some(e),
                    };
                    Outcome::updated(at, holds, state.as_deref())
                }
                Op::Add { delta } => {
                    let sum = match &state {
                        None => Some(*delta),
                        Some(v) => integer(v).and_then(|n| n.checked_add(*delta)),
                    };
                    match sum {
                        Some(_) => Outcome::updated(at, true, state.as_deref()),
                        None => Outcome::NotAnInteger { at },
                    }
                }
            },
        };
        let took_effect = match o.outcome {
            Outcome::Unknown => g.took_effect,
            Outcome::Failed => false,
            _ => true,
        };
        if took_effect {
            state = after;
        }
        ops.push(o);
    }
    ops
}

/// `ops[pick]` reporting `value` (`None`: absent) instead, and the opposite `applied`.
fn perturb(ops: &mut [Operation], pick: usize, value: Option<usize>) {
    let value = value.map(|v| VALUES[v].as_bytes().to_vec());
    let o = &mut ops[pick];
    o.outcome = match &o.outcome {
        Outcome::Ok { at, .. } if o.op == Op::Read => Outcome::Ok {
            at: *at,
            read: value,
        },
        Outcome::Updated { at, applied, .. } => Outcome::Updated {
            at: *at,
            applied: !applied,
            previous: value,
        },
        Outcome::NotAnInteger { at } => Outcome::Updated {
            at: *at,
            applied: true,
            previous: value,
        },
        other => other.clone(),
    };
}

fn gen_plan(max: usize) -> impl Strategy<Value = Vec<Gen>> {
    prop::collection::vec(gen_op(), 1..max)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn real_executions_with_updates_are_linearizable(plan in gen_plan(40)) {
        let ops = execute(&plan);
        prop_assert_eq!(check(&ops), Verdict::Linearizable, "{:#?}", ops);
    }

}

proptest! {
    // Cheap (at most 9 ops each) and the strongest check of what the checker drops
    // before its search: run many.
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn the_checker_agrees_with_brute_force(
        plan in gen_plan(10),
        change in prop::option::of((any::<prop::sample::Index>(), prop::option::of(0..4usize))),
    ) {
        let mut ops = execute(&plan);
        if let Some((pick, value)) = change {
            let pick = pick.index(ops.len());
            perturb(&mut ops, pick, value);
        }
        let verdict = check(&ops);
        prop_assert_eq!(verdict == Verdict::Linearizable, brute_force(&ops), "{:?} for {:#?}", verdict, ops);
        // An explanation's core is part of the history and already not linearizable.
        if let Verdict::Violation(v) = verdict {
            prop_assert!(v.ops.iter().all(|o| ops.contains(o)));
            prop_assert!(!brute_force(&v.ops), "{}", v.explanation);
        }
    }
}
