//! The linearizability checker on hand-written histories and on generated ones.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use ringkv_tests::checker::{
    check_history, check_key, CheckOptions, Inconclusive, Op, Operation, Outcome, Verdict,
};

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

fn delete(client: u64, invoke: u64, ret: u64) -> Operation {
    op(client, Op::Delete, invoke, Outcome::done(ret))
}

fn read(client: u64, v: Option<&str>, invoke: u64, ret: u64) -> Operation {
    op(
        client,
        Op::Read,
        invoke,
        Outcome::read(ret, v.map(str::as_bytes)),
    )
}

fn unknown_write(client: u64, v: &str, invoke: u64) -> Operation {
    op(client, Op::Write(v.into()), invoke, Outcome::Unknown)
}

fn failed_write(client: u64, v: &str, invoke: u64) -> Operation {
    op(client, Op::Write(v.into()), invoke, Outcome::Failed)
}

fn check(ops: &[Operation]) -> Verdict {
    check_key(ops, &CheckOptions::default())
}

fn assert_ok(ops: &[Operation]) {
    let verdict = check(ops);
    assert_eq!(verdict, Verdict::Linearizable, "{ops:#?}");
}

/// Asserts a violation and returns its explanation.
fn assert_violation(ops: &[Operation]) -> String {
    match check(ops) {
        Verdict::Violation(v) => v.explanation,
        other => panic!("expected a violation, got {other:?} for {ops:#?}"),
    }
}

#[test]
fn empty_and_sequential_histories_pass() {
    assert_ok(&[]);
    assert_ok(&[
        read(1, None, 0, 1),
        write(1, "a", 2, 3),
        read(2, Some("a"), 4, 5),
        delete(1, 6, 7),
        read(2, None, 8, 9),
    ]);
}

#[test]
fn concurrent_read_may_see_old_or_new_value() {
    let w = write(1, "b", 10, 20);
    assert_ok(&[write(1, "a", 0, 1), w.clone(), read(2, Some("a"), 12, 18)]);
    assert_ok(&[write(1, "a", 0, 1), w, read(2, Some("b"), 12, 18)]);
}

#[test]
fn stale_read_after_acknowledged_write_is_a_violation() {
    let explanation = assert_violation(&[
        write(1, "a", 0, 1),
        write(1, "b", 2, 3),
        read(2, Some("a"), 4, 5),
    ]);
    // The explanation names the ops involved.
    assert!(explanation.contains("write \"b\""), "{explanation}");
    assert!(explanation.contains("read -> \"a\""), "{explanation}");
}

#[test]
fn stale_read_after_acknowledged_delete_is_a_violation() {
    assert_violation(&[
        write(1, "a", 0, 1),
        delete(1, 2, 3),
        read(2, Some("a"), 4, 5),
    ]);
}

#[test]
fn read_of_a_value_never_written_is_a_violation() {
    assert_violation(&[write(1, "a", 0, 10), read(2, Some("zzz"), 2, 5)]);
    assert_violation(&[read(2, Some("zzz"), 2, 5)]);
}

#[test]
fn read_from_the_future_is_a_violation() {
    assert_violation(&[read(2, Some("a"), 0, 5), write(1, "a", 6, 7)]);
}

#[test]
fn two_readers_observing_writes_in_opposite_orders_is_a_violation() {
    // Both writes overlap every read; client 3 sees a then b, client 4 b then a.
    assert_violation(&[
        write(1, "a", 0, 100),
        write(2, "b", 0, 100),
        read(3, Some("a"), 10, 20),
        read(3, Some("b"), 30, 40),
        read(4, Some("b"), 10, 20),
        read(4, Some("a"), 30, 40),
    ]);
    // The same reads in a consistent order pass.
    assert_ok(&[
        write(1, "a", 0, 100),
        write(2, "b", 0, 100),
        read(3, Some("a"), 10, 20),
        read(3, Some("b"), 30, 40),
        read(4, Some("a"), 10, 20),
        read(4, Some("b"), 30, 40),
    ]);
}

#[test]
fn indeterminate_write_read_later_is_ok() {
    assert_ok(&[
        write(1, "a", 0, 1),
        unknown_write(2, "b", 2),
        read(3, Some("a"), 50, 60),
        read(3, Some("b"), 1000, 1001),
    ]);
}

#[test]
fn indeterminate_write_never_read_is_ok() {
    assert_ok(&[
        write(1, "a", 0, 1),
        unknown_write(2, "b", 2),
        read(3, Some("a"), 50, 60),
        read(3, Some("a"), 1000, 1001),
    ]);
}

#[test]
fn indeterminate_write_cannot_be_undone() {
    // Once a read saw "b", a later read cannot go back to "a".
    assert_violation(&[
        write(1, "a", 0, 1),
        unknown_write(2, "b", 2),
        read(3, Some("b"), 50, 60),
        read(3, Some("a"), 70, 80),
    ]);
}

#[test]
fn indeterminate_write_cannot_take_effect_before_invoke() {
    assert_violation(&[read(3, Some("b"), 0, 5), unknown_write(2, "b", 10)]);
}

#[test]
fn failed_write_read_is_a_violation() {
    assert_violation(&[
        write(1, "a", 0, 1),
        failed_write(2, "b", 2),
        read(3, Some("b"), 50, 60),
    ]);
}

#[test]
fn failed_and_unanswered_reads_are_ignored() {
    assert_ok(&[
        write(1, "a", 0, 1),
        op(2, Op::Read, 2, Outcome::Failed),
        op(3, Op::Read, 2, Outcome::Unknown),
        read(3, Some("a"), 50, 60),
    ]);
}

#[test]
fn equal_times_count_as_concurrent() {
    // The write returns at 5 and the read is invoked at 5: either order is allowed.
    assert_ok(&[
        write(1, "a", 0, 1),
        write(1, "b", 2, 5),
        read(2, Some("a"), 5, 6),
    ]);
}

#[test]
fn keys_are_checked_independently() {
    let mut history = vec![write(1, "a", 0, 1), read(2, Some("a"), 2, 3)];
    let mut other = vec![
        write(1, "x", 0, 1),
        write(1, "y", 2, 3),
        read(2, Some("x"), 4, 5),
    ];
    for o in &mut other {
        o.key = b"other".to_vec();
    }
    history.append(&mut other);
    let verdicts = check_history(&history, &CheckOptions::default());
    assert_eq!(verdicts.len(), 2);
    assert_eq!(verdicts[0], (b"k".to_vec(), Verdict::Linearizable));
    assert_eq!(verdicts[1].0, b"other".to_vec());
    assert!(verdicts[1].1.is_violation());
}

#[test]
fn oversized_history_or_spent_budget_is_unknown_not_a_pass() {
    let ops: Vec<Operation> = (0..30)
        .map(|i| write(i, &format!("v{i}"), 0, 1000))
        .chain([read(99, Some("v3"), 2000, 2001)])
        .collect();
    let small = CheckOptions {
        max_ops_per_key: 10,
        ..CheckOptions::default()
    };
    assert!(matches!(
        check_key(&ops, &small),
        Verdict::Unknown(Inconclusive::TooManyOps { ops: 31, max: 10 })
    ));
    let tiny_budget = CheckOptions {
        step_budget: 5,
        ..CheckOptions::default()
    };
    assert!(matches!(
        check_key(&ops, &tiny_budget),
        Verdict::Unknown(Inconclusive::BudgetExceeded { .. })
    ));
}

#[test]
fn long_overlapping_histories_stay_tractable() {
    // 200 ops, each overlapping ~8 others (as 5 busy clients would make): the memo
    // keeps the search near-linear. (Dozens of *fully* concurrent ops would not be:
    // the search is exponential in the width of concurrency, as in every such checker.)
    let mut ops = Vec::new();
    for i in 0..100u64 {
        ops.push(write(i % 5, &format!("v{i}"), 10 * i, 10 * i + 40));
        ops.push(read(
            5 + i % 5,
            Some(&format!("v{i}")),
            10 * i + 41,
            10 * i + 80,
        ));
    }
    assert_ok(&ops);
    // A read of a value overwritten long before is caught at the end.
    ops.pop();
    ops.push(read(99, Some("v3"), 2000, 2001));
    assert_violation(&ops);
}

#[test]
fn many_indeterminate_writes_stay_tractable() {
    // 60 timed-out writes, each later read once: every one stays possible "forever",
    // which without bounding it by its first read would double the search per write.
    let mut ops = Vec::new();
    for i in 0..60u64 {
        ops.push(unknown_write(i, &format!("v{i}"), 10 * i));
        ops.push(read(
            100 + i,
            Some(&format!("v{i}")),
            10 * i + 5,
            10 * i + 9,
        ));
    }
    assert_ok(&ops);
    ops.push(read(99, Some("v3"), 1000, 1001));
    assert_violation(&ops);
}

#[test]
fn explanation_is_shrunk_to_the_ops_involved() {
    // 40 irrelevant sequential ops, then a stale read.
    let mut ops = Vec::new();
    for i in 0..40u64 {
        ops.push(write(1, &format!("v{i}"), 10 * i, 10 * i + 1));
        ops.push(read(2, Some(&format!("v{i}")), 10 * i + 2, 10 * i + 3));
    }
    ops.push(read(3, Some("v38"), 1000, 1001));
    let Verdict::Violation(v) = check(&ops) else {
        panic!("expected a violation");
    };
    assert!(v.ops.len() <= 3, "{}", v.explanation);
    assert_eq!(v.ops_considered, 81);
    assert!(
        v.explanation.contains("read -> \"v38\""),
        "{}",
        v.explanation
    );
    assert!(v.explanation.contains("write \"v39\""), "{}", v.explanation);
}

// ---------------------------------------------------------------------------------------
// Generated histories: a real sequential execution of a register, observed through
// random invoke/return windows around each op's linearization point.

#[derive(Debug, Clone)]
enum GenKind {
    Write,
    Delete,
    Read,
    UnknownWrite,
    /// Never applied; its value must never be read.
    FailedWrite,
}

fn gen_kind() -> impl Strategy<Value = GenKind> {
    prop_oneof![
        4 => Just(GenKind::Write),
        1 => Just(GenKind::Delete),
        5 => Just(GenKind::Read),
        1 => Just(GenKind::UnknownWrite),
        1 => Just(GenKind::FailedWrite),
    ]
}

/// Ops at linearization points 100, 200, ...; windows up to `w` either side. Unknown
/// writes take effect (at their point) or not, as `applied` says.
fn execute(plan: &[(GenKind, u64, u64, bool)]) -> Vec<Operation> {
    let mut state: Option<String> = None;
    let mut ops = Vec::new();
    for (i, (kind, before, after, applied)) in plan.iter().enumerate() {
        let point = 100 * (i as u64 + 1);
        let (invoke, ret) = (point - before, point + after);
        let value = format!("v{i}");
        let client = i as u64;
        ops.push(match kind {
            GenKind::Write => {
                state = Some(value.clone());
                write(client, &value, invoke, ret)
            }
            GenKind::Delete => {
                state = None;
                delete(client, invoke, ret)
            }
            GenKind::Read => read(client, state.as_deref(), invoke, ret),
            GenKind::UnknownWrite => {
                if *applied {
                    state = Some(value.clone());
                }
                unknown_write(client, &value, invoke)
            }
            GenKind::FailedWrite => failed_write(client, &value, invoke),
        });
    }
    ops
}

fn gen_plan() -> impl Strategy<Value = Vec<(GenKind, u64, u64, bool)>> {
    // Windows up to 250 around points 100 apart: each op overlaps up to ~5 others.
    prop::collection::vec((gen_kind(), 0..99u64, 0..250u64, any::<bool>()), 1..60)
}

fn returned(op: &Operation) -> Option<u64> {
    match op.outcome {
        Outcome::Ok { at, .. } => Some(at),
        _ => None,
    }
}

/// Values a read `r` cannot possibly have returned, given the rest of `ops`: never
/// written, written only by failed writes, written after `r` returned, or overwritten
/// by a write that lies entirely between the value's write and `r`.
fn impossible_values(ops: &[Operation], r: &Operation) -> Vec<Option<String>> {
    let r_ret = returned(r).unwrap();
    let mut out = vec![Some("never-written".to_string())];
    let writes: Vec<&Operation> = ops
        .iter()
        .filter(|o| matches!(o.op, Op::Write(_) | Op::Delete))
        .collect();
    // Between `w`'s return and `r`'s invoke lies a whole acknowledged write.
    let shadowed = |w_end: u64| {
        writes
            .iter()
            .any(|x| returned(x).is_some_and(|x_ret| x.invoke > w_end && x_ret < r.invoke))
    };
    for w in &writes {
        // "Absent" can come from any delete or the initial state: handled below.
        let Op::Write(v) = &w.op else { continue };
        let impossible = match w.outcome {
            Outcome::Failed => true,
            _ if w.invoke > r_ret => true,
            Outcome::Ok { at, .. } | Outcome::Updated { at, .. } | Outcome::NotAnInteger { at } => {
                shadowed(at)
            }
            Outcome::Unknown => false,
        };
        if impossible {
            out.push(Some(String::from_utf8(v.clone()).unwrap()));
        }
    }
    // "Absent" is impossible once some acknowledged write finished before `r` started
    // and no delete could have followed it.
    let delete_possible = writes
        .iter()
        .any(|w| matches!(w.op, Op::Delete) && w.outcome != Outcome::Failed && w.invoke < r_ret);
    let written_before = writes
        .iter()
        .any(|w| matches!(w.op, Op::Write(_)) && returned(w).is_some_and(|at| at < r.invoke));
    if written_before && !delete_possible {
        out.push(None);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn real_executions_are_linearizable(plan in gen_plan()) {
        let ops = execute(&plan);
        prop_assert_eq!(check(&ops), Verdict::Linearizable);
    }

    #[test]
    fn an_impossible_read_result_is_flagged(plan in gen_plan(), pick in any::<prop::sample::Index>(), which in any::<prop::sample::Index>()) {
        let mut ops = execute(&plan);
        let reads: Vec<usize> = (0..ops.len()).filter(|&i| ops[i].op == Op::Read).collect();
        prop_assume!(!reads.is_empty());
        let victim = reads[pick.index(reads.len())];
        let choices = impossible_values(&ops, &ops[victim]);
        let bad = choices[which.index(choices.len())].clone();
        ops[victim].outcome = Outcome::read(returned(&ops[victim]).unwrap(), bad.as_deref().map(str::as_bytes));
        let verdict = check(&ops);
        prop_assert!(verdict.is_violation(), "{:?} -> {:?}", bad, verdict);
    }
}
