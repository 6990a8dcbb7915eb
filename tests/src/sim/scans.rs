//! The scan mix (`SimConfig::scans_every`): one scanner client walks the whole keyspace
//! with `Request::Scan` pages during the workload, over and over, each page to a random
//! node; a page that fails (no quorum, a timeout) is asked again from the same cursor.
//! Every completed scan (the cursor back at 0) is checked against the register
//! workload's history (`check`): a key present for the whole scan must be in it, and a
//! key whose delete completed before it began must not be.
//!
//! Request ids are [`SCAN_REQUEST_BASE`] and up, apart from the other workloads'. The
//! scanner draws from a stream of its own, so seeds outside the mix run as before.

use std::collections::BTreeSet;

use ringkv_core::rand::SplitMix64;

use super::api::{NodeIndex, Reply, Request, RequestId};
use crate::checker::{show_bytes, Op, Operation, Outcome};

pub const SCAN_REQUEST_BASE: RequestId = 2_000_000_000;

pub fn is_scan_request(id: RequestId) -> bool {
    id >= SCAN_REQUEST_BASE
}

/// Pages one scan may fail before the scanner gives it up (and starts another).
const PAGE_FAILURES_MAX: u32 = 200;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanCounts {
    pub pages: u64,
    pub pages_failed: u64,
    pub completed: u64,
    /// Scans given up after [`PAGE_FAILURES_MAX`] failed pages.
    pub abandoned: u64,
    /// Replies of the wrong kind (a node bug).
    pub protocol_errors: u64,
}

/// A scan from its first request to the reply that ended it (history stamps).
#[derive(Debug, Clone)]
pub struct CompletedScan {
    pub start: u64,
    pub end: u64,
    pub keys: BTreeSet<Vec<u8>>,
}

#[derive(Debug)]
struct Current {
    start: u64,
    cursor: u64,
    keys: BTreeSet<Vec<u8>>,
    failures: u32,
}

#[derive(Debug)]
pub struct ScanWorkload {
    enabled: bool,
    nodes: usize,
    rng: SplitMix64,
    next_request: RequestId,
    pending: Option<RequestId>,
    current: Option<Current>,
    pub completed: Vec<CompletedScan>,
    pub counts: ScanCounts,
}

impl ScanWorkload {
    pub fn new(enabled: bool, nodes: usize, seed: u64) -> Self {
        ScanWorkload {
            enabled,
            nodes,
            rng: SplitMix64::new(seed ^ 0x5343_414e_5321),
            next_request: SCAN_REQUEST_BASE,
            pending: None,
            current: None,
            completed: Vec::new(),
            counts: ScanCounts::default(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn think_ms(&mut self) -> u64 {
        self.rng.below(20)
    }

    /// The scanner's next page (target node, id, request) at history stamp `stamp`.
    pub fn next(&mut self, stamp: u64) -> Option<(NodeIndex, RequestId, Request)> {
        if !self.enabled || self.pending.is_some() {
            return None;
        }
        let current = self.current.get_or_insert_with(|| Current {
            start: stamp,
            cursor: 0,
            keys: BTreeSet::new(),
            failures: 0,
        });
        let cursor = current.cursor;
        let count = 1 + self.rng.below(4) as u32;
        let node = self.rng.below(self.nodes as u64) as usize;
        let id = self.next_request;
        self.next_request += 1;
        self.pending = Some(id);
        self.counts.pages += 1;
        Some((node, id, Request::Scan { cursor, count }))
    }

    pub fn is_pending(&self, id: RequestId) -> bool {
        self.pending == Some(id)
    }

    pub fn has_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// The answer to page `id` at stamp `stamp`; `true` if the scanner may go on.
    pub fn reply(&mut self, id: RequestId, reply: &Reply, stamp: u64) -> bool {
        if self.pending != Some(id) {
            return false;
        }
        self.pending = None;
        let Some(current) = self.current.as_mut() else {
            return true;
        };
        match reply {
            Reply::Keys { keys, cursor } => {
                current.keys.extend(keys.iter().cloned());
                if *cursor == 0 {
                    let done = self.current.take();
                    if let Some(done) = done {
                        self.counts.completed += 1;
                        self.completed.push(CompletedScan {
                            start: done.start,
                            end: stamp,
                            keys: done.keys,
                        });
                    }
                } else if *cursor <= current.cursor {
                    // A cursor must move forward.
                    self.counts.protocol_errors += 1;
                    self.current = None;
                } else {
                    current.cursor = *cursor;
                }
            }
            Reply::Unavailable | Reply::Rejected(_) | Reply::Indeterminate => self.page_failed(),
            Reply::Value(_)
            | Reply::Done
            | Reply::Siblings { .. }
            | Reply::Updated { .. }
            | Reply::NotAnInteger
            | Reply::Contention => {
                self.counts.protocol_errors += 1;
                self.page_failed();
            }
        }
        true
    }

    /// The client's deadline for page `id` passed; `true` if it was still pending.
    pub fn expire(&mut self, id: RequestId) -> bool {
        if self.pending != Some(id) {
            return false;
        }
        self.pending = None;
        self.page_failed();
        true
    }

    fn page_failed(&mut self) {
        self.counts.pages_failed += 1;
        if let Some(current) = self.current.as_mut() {
            current.failures += 1;
            if current.failures > PAGE_FAILURES_MAX {
                self.counts.abandoned += 1;
                self.current = None;
            }
        }
    }
}

/// The end of `op` (`u64::MAX` if it may still take effect at any time).
fn end_of(op: &Operation) -> u64 {
    op.outcome.at().unwrap_or(u64::MAX)
}

/// Whether `op` may have changed the register (an update answered "not applied" or
/// "not an integer" did not).
fn may_apply(op: &Operation) -> bool {
    !matches!(
        op.outcome,
        Outcome::Failed | Outcome::Updated { applied: false, .. } | Outcome::NotAnInteger { .. }
    )
}

/// What a completed scan must show of `key`, from the key's register history:
/// `Some(true)` present for the whole scan, `Some(false)` deleted before it began,
/// `None` either may be right.
///
/// Present: a put acknowledged before the scan began, and every delete that may apply
/// ended before that put was invoked (so the put's tag is above it) or was invoked after
/// the scan ended. Deleted: the same with a delete and puts. Updates count as puts (an
/// add, a set of a value) or deletes (a set of `None`), never as the settling write.
fn must_show(history: &[&Operation], scan: &CompletedScan) -> Option<bool> {
    let settled = |write: &Operation, others: &dyn Fn(&Operation) -> bool| {
        matches!(write.outcome, Outcome::Ok { at, .. } if at < scan.start)
            && history
                .iter()
                .filter(|op| others(op) && may_apply(op))
                .all(|op| end_of(op) < write.invoke || op.invoke > scan.end)
    };
    let is_put = |op: &Operation| matches!(op.op, Op::Write(_));
    let is_delete = |op: &Operation| matches!(op.op, Op::Delete);
    let may_create = |op: &Operation| {
        matches!(
            op.op,
            Op::Write(_) | Op::Add { .. } | Op::Update { value: Some(_), .. }
        )
    };
    let may_delete = |op: &Operation| matches!(op.op, Op::Delete | Op::Update { value: None, .. });
    if history
        .iter()
        .any(|op| is_put(op) && settled(op, &may_delete))
    {
        return Some(true);
    }
    if history
        .iter()
        .any(|op| is_delete(op) && settled(op, &may_create))
    {
        return Some(false);
    }
    None
}

/// Every completed scan against the register history: one line per key a scan should
/// have shown and did not, or showed and should not have.
pub fn check(history: &[Operation], keys: &[Vec<u8>], scans: &[CompletedScan]) -> Vec<String> {
    let mut findings = Vec::new();
    for key in keys {
        let of_key: Vec<&Operation> = history.iter().filter(|op| &op.key == key).collect();
        for scan in scans {
            let shown = scan.keys.contains(key);
            match must_show(&of_key, scan) {
                Some(true) if !shown => findings.push(format!(
                    "scan {}..{} missed {}, present for the whole scan",
                    scan.start,
                    scan.end,
                    show_bytes(key)
                )),
                Some(false) if shown => findings.push(format!(
                    "scan {}..{} returned {}, deleted before it began",
                    scan.start,
                    scan.end,
                    show_bytes(key)
                )),
                _ => {}
            }
        }
    }
    // A scan may only return keys the workload wrote.
    for scan in scans {
        for key in scan.keys.iter().filter(|k| !keys.contains(k)) {
            findings.push(format!("scan returned {}, never written", show_bytes(key)));
        }
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(key: &str, op: Op, invoke: u64, outcome: Outcome) -> Operation {
        Operation {
            client: 1,
            key: key.as_bytes().to_vec(),
            op,
            invoke,
            outcome,
        }
    }

    fn scan(start: u64, end: u64, keys: &[&str]) -> CompletedScan {
        CompletedScan {
            start,
            end,
            keys: keys.iter().map(|k| k.as_bytes().to_vec()).collect(),
        }
    }

    #[test]
    fn present_and_deleted_keys_are_judged_conservatively() {
        let put = |invoke, at| op("a", Op::Write(b"v".to_vec()), invoke, Outcome::done(at));
        let delete = |invoke, outcome| op("a", Op::Delete, invoke, outcome);
        let keys = vec![b"a".to_vec()];
        // Put acknowledged before the scan: it must be shown.
        let history = vec![put(10, 20)];
        assert!(!check(&history, &keys, &[scan(30, 40, &[])]).is_empty());
        assert!(check(&history, &keys, &[scan(30, 40, &["a"])]).is_empty());
        // A delete that may apply during the scan: anything goes.
        let history = vec![put(10, 20), delete(35, Outcome::Unknown)];
        assert!(check(&history, &keys, &[scan(30, 40, &[])]).is_empty());
        // ... but not one invoked after the scan ended.
        let history = vec![put(10, 20), delete(45, Outcome::Unknown)];
        assert!(!check(&history, &keys, &[scan(30, 40, &[])]).is_empty());
        // A failed delete never applies.
        let history = vec![put(10, 20), delete(35, Outcome::Failed)];
        assert!(!check(&history, &keys, &[scan(30, 40, &[])]).is_empty());
        // Deleted before the scan began: it must not be shown.
        let history = vec![put(10, 20), delete(21, Outcome::done(25))];
        assert!(!check(&history, &keys, &[scan(30, 40, &["a"])]).is_empty());
        assert!(check(&history, &keys, &[scan(30, 40, &[])]).is_empty());
        // An update that may delete it during the scan: anything goes; not if it did
        // not apply.
        let get_and_delete = |outcome| {
            let update = Op::Update {
                condition: crate::checker::Condition::Always,
                value: None,
            };
            op("a", update, 35, outcome)
        };
        let history = vec![put(10, 20), get_and_delete(Outcome::Unknown)];
        assert!(check(&history, &keys, &[scan(30, 40, &[])]).is_empty());
        let refused = Outcome::updated(36, false, Some(b"v"));
        let history = vec![put(10, 20), get_and_delete(refused)];
        assert!(!check(&history, &keys, &[scan(30, 40, &[])]).is_empty());
        // An add during the scan may bring a deleted key back.
        let add = op("a", Op::Add { delta: 1 }, 35, Outcome::Unknown);
        let history = vec![delete(5, Outcome::done(8)), add];
        assert!(check(&history, &keys, &[scan(30, 40, &["a"])]).is_empty());
        // A put concurrent with the delete may win: anything goes.
        let history = vec![put(10, 22), delete(21, Outcome::done(25))];
        assert!(check(&history, &keys, &[scan(30, 40, &["a"])]).is_empty());
        // A key nobody wrote is never shown.
        assert!(!check(&[], &keys, &[scan(30, 40, &["b"])]).is_empty());
    }
}
