//! Conditional writes on real `Node`s (the shared harness of `common/`): conditions,
//! counters from every coordinator at once, plain puts and gets racing updates on the
//! same key, a coordinator that crashes between its accept and its reply, and the
//! errors without a quorum.
#![cfg(not(target_arch = "wasm32"))]

use ringkv_core::node::{ClientError, ClientReply, ClientRequest, Condition, Update};

mod common;
use common::*;

fn set(key: &str, condition: Condition, value: Option<&str>) -> ClientRequest {
    ClientRequest::Update {
        key: key.as_bytes().to_vec(),
        update: Update::Set {
            condition,
            value: value.map(|v| v.as_bytes().to_vec()),
        },
    }
}

fn add(key: &str, delta: i64) -> ClientRequest {
    ClientRequest::Update {
        key: key.as_bytes().to_vec(),
        update: Update::Add { delta },
    }
}

fn updated(applied: bool, previous: Option<&str>, current: Option<&str>) -> ClientReply {
    let bytes = |v: Option<&str>| v.map(|v| v.as_bytes().to_vec());
    ClientReply::Updated {
        applied,
        previous: bytes(previous),
        current: bytes(current),
    }
}

fn value(v: &str) -> ClientReply {
    ClientReply::Value(Some(v.as_bytes().to_vec()))
}

#[test]
fn conditions_apply_only_when_they_hold_whichever_node_coordinates() {
    let mut cluster = Cluster::new(3);
    cluster.run_for(300);
    let nx = |v| set("k", Condition::Absent, Some(v));
    assert_eq!(cluster.call(0, nx("a")), updated(true, None, Some("a")));
    assert_eq!(
        cluster.call(1, nx("b")),
        updated(false, Some("a"), Some("a"))
    );
    let xx = set("k", Condition::Present, Some("c"));
    assert_eq!(cluster.call(2, xx), updated(true, Some("a"), Some("c")));
    let cas = |expected: &str, v| set("k", Condition::Equals(expected.into()), Some(v));
    assert_eq!(
        cluster.call(0, cas("a", "d")),
        updated(false, Some("c"), Some("c"))
    );
    assert_eq!(
        cluster.call(1, cas("c", "d")),
        updated(true, Some("c"), Some("d"))
    );
    assert_eq!(cluster.get_linearizable(2, b"k"), value("d"));
    // Get-and-delete, then a present-only set finds nothing.
    let getdel = set("k", Condition::Always, None);
    assert_eq!(cluster.call(2, getdel), updated(true, Some("d"), None));
    let xx = set("k", Condition::Present, Some("e"));
    assert_eq!(cluster.call(0, xx), updated(false, None, None));
    assert_eq!(cluster.get_linearizable(1, b"k"), ClientReply::Value(None));
    // Plain puts and updates share the register.
    cluster.put_ok(1, b"k", b"7");
    assert_eq!(
        cluster.call(2, add("k", 5)),
        updated(true, Some("7"), Some("12"))
    );
    assert_eq!(cluster.get_linearizable(0, b"k"), value("12"));
    cluster.put_ok(0, b"k", b"seven");
    assert_eq!(
        cluster.call(1, add("k", 1)),
        ClientReply::Error(ClientError::NotAnInteger)
    );
    assert_eq!(cluster.get_linearizable(2, b"k"), value("seven"));
}

/// Every coordinator increments the same counter at once, with plain gets in between:
/// no acknowledged increment is lost and none counts twice. Contention answers are
/// allowed (they did not take effect); indeterminate ones may or may not count.
#[test]
fn concurrent_increments_from_every_node_all_count_exactly_once() {
    let mut cluster = Cluster::new(3);
    cluster.run_for(300);
    let mut requests = Vec::new();
    for round in 0..20 {
        for at in 0..3 {
            requests.push(cluster.request(at, add("counter", 1)));
        }
        if round % 5 == 0 {
            requests.push(cluster.request(round % 3, get("counter")));
        }
    }
    let (mut acked, mut indeterminate, mut contention) = (0i64, 0i64, 0);
    let mut seen = std::collections::BTreeSet::new();
    for id in requests {
        match cluster.wait(id, 60_000) {
            ClientReply::Updated { current, .. } => {
                acked += 1;
                let n = String::from_utf8(current.expect("a sum")).expect("utf-8");
                assert!(seen.insert(n.clone()), "two increments both returned {n}");
            }
            ClientReply::Value(_) => {}
            ClientReply::Error(ClientError::Indeterminate { .. }) => indeterminate += 1,
            ClientReply::Error(ClientError::Contention { .. }) => contention += 1,
            other => panic!("unexpected reply {other:?}"),
        }
    }
    let total = match cluster.get_linearizable(0, b"counter") {
        ClientReply::Value(Some(v)) => String::from_utf8(v)
            .expect("utf-8")
            .parse::<i64>()
            .expect("integer"),
        other => panic!("counter: {other:?}"),
    };
    assert!(
        total >= acked && total <= acked + indeterminate,
        "total {total}, acknowledged {acked}, indeterminate {indeterminate}, contention {contention}"
    );
    assert!(acked >= 30, "most increments complete ({acked} of 60)");
}

/// Puts, deletes and updates of one key from all nodes at once: afterwards every
/// node reads the same value, and an update's reported result is a value some write
/// produced.
#[test]
fn puts_and_updates_racing_on_one_key_leave_one_agreed_value() {
    let mut cluster = Cluster::new(3);
    cluster.run_for(300);
    let mut requests = Vec::new();
    for i in 0..30 {
        let at = i % 3;
        let request = match i % 4 {
            0 => put("k", &format!("{i}")),
            1 => add("k", 1),
            2 => set("k", Condition::Present, Some(&format!("{}", 1000 + i))),
            _ => get("k"),
        };
        requests.push(cluster.request(at, request));
    }
    for id in requests {
        let reply = cluster.wait(id, 60_000);
        assert!(
            !matches!(reply, ClientReply::Error(ClientError::Unavailable { .. })),
            "{reply:?}"
        );
    }
    cluster.run_for(1000);
    let first = cluster.get_linearizable(0, b"k");
    for at in 1..3 {
        assert_eq!(cluster.get_linearizable(at, b"k"), first);
    }
}

/// Without a majority of replicas believed alive nothing is sent: `Unavailable`.
#[test]
fn an_update_without_a_quorum_is_unavailable_and_changes_nothing() {
    let mut cluster = Cluster::new(3);
    cluster.run_for(300);
    cluster.put_ok(0, b"k", b"1");
    cluster.crash(1);
    cluster.crash(2);
    cluster.run_for(5_000);
    match cluster.call(0, add("k", 1)) {
        ClientReply::Error(ClientError::Unavailable { .. }) => {}
        other => panic!("expected Unavailable, got {other:?}"),
    }
    cluster.restart(1);
    cluster.restart(2);
    cluster.run_for(5_000);
    assert_eq!(cluster.get_linearizable(0, b"k"), value("1"));
}

/// A coordinator crashes right after sending its accepts; the next update on the key
/// (another coordinator) finishes or fences that round, and the counter never goes
/// backwards or double-counts.
#[test]
fn an_update_whose_coordinator_crashed_mid_round_is_completed_or_fenced() {
    let mut cluster = Cluster::new(3);
    cluster.run_for(300);
    assert_eq!(
        cluster.call(0, add("c", 10)),
        updated(true, None, Some("10"))
    );
    let _lost = cluster.request(0, add("c", 1));
    // Deliver the prepares and promises, then the accepts, then crash the coordinator.
    for _ in 0..3 {
        cluster.step();
    }
    cluster.crash(0);
    cluster.run_for(2_000);
    let after = match cluster.call(1, add("c", 100)) {
        ClientReply::Updated { current, .. } => String::from_utf8(current.expect("sum"))
            .expect("utf-8")
            .parse::<i64>()
            .expect("integer"),
        other => panic!("{other:?}"),
    };
    assert!(after == 110 || after == 111, "got {after}");
    cluster.restart(0);
    cluster.run_for(2_000);
    let again = cluster.get_linearizable(0, b"c");
    assert_eq!(again, value(&after.to_string()));
}
