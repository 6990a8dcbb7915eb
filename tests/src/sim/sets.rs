//! The set workload (eventual mode): clients add unique elements to a few set keys by
//! read-merge-write, and every element whose write was acknowledged must be in the set
//! once the cluster has healed and handed its hints off.
//!
//! A client's add: an eventual get of the key (every sibling and a causal context), the
//! union of the siblings' sets, plus one fresh element, written back with the read's
//! context (it supersedes exactly the siblings the read saw; concurrent writes stay
//! siblings, and the next reader unions them). A few adds are blind writes (no context,
//! just the new element): a sibling of everything. Nothing is ever removed, so the
//! union of all siblings only grows by the elements of writes that took effect.
//!
//! Set value encoding: the elements (`u64`, unique within a run) in ascending order as
//! ASCII decimal, separated by commas: `"3,17,42"` (the empty set is the empty value).
//! Text, so traces show sets readably.
//!
//! Request ids are [`SET_REQUEST_BASE`] and up, apart from the register workload's.

use std::collections::{BTreeMap, BTreeSet};

use ringkv_core::rand::SplitMix64;

use super::api::{NodeIndex, Reply, Request, RequestId};

/// Set request ids start here (register requests count from 1), so a reply or deadline
/// names its workload by its id.
pub const SET_REQUEST_BASE: RequestId = 1_000_000_000;

pub fn is_set_request(id: RequestId) -> bool {
    id >= SET_REQUEST_BASE
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetConfig {
    /// Set clients (besides the register workload's); 0 turns the workload off.
    pub clients: usize,
    pub keys: usize,
    /// Elements each client tries to add (each a read and a write, or a blind write).
    pub adds_per_client: u64,
    /// Adds written blind (no read, no context).
    pub blind_pct: u64,
    pub think_ms_max: u64,
    /// Post-run: the longest wait for every node to hold no hints and see every peer
    /// alive before reading the sets.
    pub settle_cap_ms: u64,
}

impl Default for SetConfig {
    fn default() -> Self {
        SetConfig {
            clients: 3,
            keys: 2,
            adds_per_client: 12,
            blind_pct: 10,
            think_ms_max: 30,
            settle_cap_ms: 10_000,
        }
    }
}

/// The set keys: readable, distinct from the register keys (`key-N`).
pub fn set_key(i: usize) -> Vec<u8> {
    format!("set-{i}").into_bytes()
}

pub fn encode_set(elements: &BTreeSet<u64>) -> Vec<u8> {
    let parts: Vec<String> = elements.iter().map(u64::to_string).collect();
    parts.join(",").into_bytes()
}

/// `None` if `value` is not an encoding [`encode_set`] produces.
pub fn decode_set(value: &[u8]) -> Option<BTreeSet<u64>> {
    if value.is_empty() {
        return Some(BTreeSet::new());
    }
    let text = std::str::from_utf8(value).ok()?;
    let mut out = BTreeSet::new();
    for part in text.split(',') {
        let canonical = !part.is_empty() && (part == "0" || !part.starts_with('0'));
        if !canonical || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        out.insert(part.parse().ok()?);
    }
    Some(out)
}

/// What a sibling list holds: the union of the sets, and what is not a set of ours.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Merged {
    pub elements: BTreeSet<u64>,
    /// Siblings that are tombstones or do not decode as sets (nobody writes those).
    pub foreign: Vec<String>,
}

pub fn merge_siblings(values: &[Option<Vec<u8>>]) -> Merged {
    let mut merged = Merged::default();
    for value in values {
        match value.as_deref().map(decode_set) {
            Some(Some(set)) => merged.elements.extend(set),
            Some(None) => merged.foreign.push(format!(
                "value {:?}",
                String::from_utf8_lossy(value.as_deref().unwrap_or_default())
            )),
            None => merged.foreign.push("a tombstone".into()),
        }
    }
    merged
}

/// The fate of one attempted element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElementOutcome {
    Pending,
    /// The write was acknowledged (`Done`) at this time (ms).
    Acked(u64),
    /// Refused: it did not take effect.
    Failed,
    /// Timed out or `Indeterminate`: it may or may not take effect.
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Element {
    pub key: usize,
    /// When the write adding it was issued (ms).
    pub invoke_ms: u64,
    pub request: RequestId,
    pub outcome: ElementOutcome,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SetCounts {
    pub reads: u64,
    pub reads_ok: u64,
    /// Writes issued (one element each).
    pub writes: u64,
    pub acked: u64,
    pub failed: u64,
    pub unknown: u64,
    /// Replies of the wrong kind (counted as failures of the node).
    pub protocol_errors: u64,
}

impl SetCounts {
    pub fn add(&mut self, o: &SetCounts) {
        self.reads += o.reads;
        self.reads_ok += o.reads_ok;
        self.writes += o.writes;
        self.acked += o.acked;
        self.failed += o.failed;
        self.unknown += o.unknown;
        self.protocol_errors += o.protocol_errors;
    }
}

/// Something a read returned that no client attempted to write to that key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unattempted {
    pub key: usize,
    pub at_ms: u64,
    pub what: String,
}

#[derive(Debug, Clone, Copy)]
enum Step {
    Read,
    Write { element: u64 },
    Verify,
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    client: usize,
    key: usize,
    step: Step,
}

/// A read's result a client writes back next: key, union of the siblings, context.
#[derive(Debug, Clone)]
struct ReadResult {
    key: usize,
    elements: BTreeSet<u64>,
    context: Vec<u8>,
}

#[derive(Debug, Clone, Default)]
struct Client {
    adds: u64,
    read: Option<ReadResult>,
}

#[derive(Debug)]
pub struct SetWorkload {
    config: SetConfig,
    nodes: usize,
    rng: SplitMix64,
    clients: Vec<Client>,
    pending: BTreeMap<RequestId, Pending>,
    next_request: RequestId,
    next_element: u64,
    /// Every attempted element, by element.
    pub elements: BTreeMap<u64, Element>,
    pub counts: SetCounts,
    pub unattempted: Vec<Unattempted>,
    /// The latest verification read: `Some(merged)` if it answered with siblings.
    last_verify: Option<Merged>,
}

impl SetWorkload {
    pub fn new(config: SetConfig, nodes: usize, rng: SplitMix64) -> Self {
        SetWorkload {
            config,
            nodes,
            rng,
            clients: vec![Client::default(); config.clients],
            pending: BTreeMap::new(),
            next_request: SET_REQUEST_BASE,
            next_element: 0,
            elements: BTreeMap::new(),
            counts: SetCounts::default(),
            unattempted: Vec::new(),
            last_verify: None,
        }
    }

    pub fn config(&self) -> &SetConfig {
        &self.config
    }

    pub fn clients(&self) -> usize {
        self.clients.len()
    }

    pub fn think_ms(&mut self) -> u64 {
        self.rng.below(self.config.think_ms_max + 1)
    }

    fn start(&mut self, client: usize, key: usize, step: Step) -> RequestId {
        let id = self.next_request;
        self.next_request += 1;
        self.pending.insert(id, Pending { client, key, step });
        id
    }

    fn fresh_element(&mut self, key: usize, now_ms: u64) -> u64 {
        self.next_element += 1;
        let element = self.next_element;
        self.elements.insert(
            element,
            Element {
                key,
                invoke_ms: now_ms,
                request: self.next_request,
                outcome: ElementOutcome::Pending,
            },
        );
        element
    }

    /// Client `client`'s next request (target node, id, request): the write-back of its
    /// last read, else a new add (a read, or a blind write); `None` once it has made all
    /// of its adds.
    pub fn next(&mut self, client: usize, now_ms: u64) -> Option<(NodeIndex, RequestId, Request)> {
        if client >= self.clients.len() {
            return None;
        }
        let node = self.rng.below(self.nodes as u64) as usize;
        if let Some(read) = self.clients[client].read.take() {
            let ReadResult {
                key,
                mut elements,
                context,
            } = read;
            elements.insert(self.fresh_element(key, now_ms));
            return Some(self.write(client, node, key, &elements, Some(context)));
        }
        let c = &mut self.clients[client];
        if c.adds >= self.config.adds_per_client {
            return None;
        }
        c.adds += 1;
        let key = self.rng.below(self.config.keys as u64) as usize;
        if self.rng.below(100) < self.config.blind_pct {
            let elements = BTreeSet::from([self.fresh_element(key, now_ms)]);
            return Some(self.write(client, node, key, &elements, None));
        }
        self.counts.reads += 1;
        let id = self.start(client, key, Step::Read);
        Some((node, id, Request::GetEventual { key: set_key(key) }))
    }

    fn write(
        &mut self,
        client: usize,
        node: NodeIndex,
        key: usize,
        elements: &BTreeSet<u64>,
        context: Option<Vec<u8>>,
    ) -> (NodeIndex, RequestId, Request) {
        self.counts.writes += 1;
        let element = self.next_element;
        let id = self.start(client, key, Step::Write { element });
        let request = Request::PutEventual {
            key: set_key(key),
            value: encode_set(elements),
            context,
        };
        (node, id, request)
    }

    /// A post-run read of set `key` (by the verifier, not a client).
    pub fn verify_read(&mut self, key: usize) -> (RequestId, Request) {
        self.last_verify = None;
        let id = self.start(usize::MAX, key, Step::Verify);
        (id, Request::GetEventual { key: set_key(key) })
    }

    /// What the latest verification read returned, if it succeeded.
    pub fn last_verify(&self) -> Option<&Merged> {
        self.last_verify.as_ref()
    }

    pub fn is_pending(&self, id: RequestId) -> bool {
        self.pending.contains_key(&id)
    }

    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The user key of request `id` while it is pending.
    pub fn key_of(&self, id: RequestId) -> Option<Vec<u8>> {
        self.pending.get(&id).map(|p| set_key(p.key))
    }

    /// Whether every element of `merged` was attempted on `key`; records what was not.
    fn check_attempted(&mut self, key: usize, merged: &Merged, now_ms: u64) {
        for what in &merged.foreign {
            self.unattempted.push(Unattempted {
                key,
                at_ms: now_ms,
                what: what.clone(),
            });
        }
        for &e in &merged.elements {
            if self.elements.get(&e).is_none_or(|el| el.key != key) {
                self.unattempted.push(Unattempted {
                    key,
                    at_ms: now_ms,
                    what: format!("element {e}"),
                });
            }
        }
    }

    fn settle(&mut self, element: u64, outcome: ElementOutcome) {
        if let Some(e) = self.elements.get_mut(&element) {
            e.outcome = outcome;
        }
        match outcome {
            ElementOutcome::Acked(_) => self.counts.acked += 1,
            ElementOutcome::Failed => self.counts.failed += 1,
            ElementOutcome::Unknown => self.counts.unknown += 1,
            ElementOutcome::Pending => {}
        }
    }

    /// Records a reply. Returns the client, now free (`None` for a late reply or the
    /// verifier's).
    pub fn reply(&mut self, id: RequestId, reply: &Reply, now_ms: u64) -> Option<usize> {
        let p = self.pending.remove(&id)?;
        match (p.step, reply) {
            (Step::Read | Step::Verify, Reply::Siblings { values, context }) => {
                let merged = merge_siblings(values);
                self.check_attempted(p.key, &merged, now_ms);
                if let Step::Read = p.step {
                    self.counts.reads_ok += 1;
                    if let Some(c) = self.clients.get_mut(p.client) {
                        c.read = Some(ReadResult {
                            key: p.key,
                            elements: merged.elements,
                            context: context.clone(),
                        });
                    }
                } else {
                    self.last_verify = Some(merged);
                }
            }
            (Step::Write { element }, Reply::Done) => {
                self.settle(element, ElementOutcome::Acked(now_ms));
            }
            (Step::Write { element }, Reply::Unavailable | Reply::Rejected(_)) => {
                self.settle(element, ElementOutcome::Failed);
            }
            (Step::Write { element }, Reply::Indeterminate) => {
                self.settle(element, ElementOutcome::Unknown);
            }
            // A failed read: the client starts over.
            (Step::Read | Step::Verify, Reply::Unavailable | Reply::Rejected(_)) => {}
            (Step::Read | Step::Verify, Reply::Indeterminate) => {}
            // A reply of the wrong kind: a node bug; the write may have happened.
            (
                step,
                Reply::Value(_)
                | Reply::Done
                | Reply::Siblings { .. }
                | Reply::Keys { .. }
                | Reply::Updated { .. }
                | Reply::NotAnInteger
                | Reply::Contention,
            ) => {
                self.counts.protocol_errors += 1;
                if let Step::Write { element } = step {
                    self.settle(element, ElementOutcome::Unknown);
                }
            }
        }
        (p.client < self.clients.len()).then_some(p.client)
    }

    /// The client's deadline for `id` passed: a write's element stays maybe-applied.
    /// Returns the client if the request was still pending.
    pub fn expire(&mut self, id: RequestId) -> Option<usize> {
        let p = self.pending.remove(&id)?;
        if let Step::Write { element } = p.step {
            self.settle(element, ElementOutcome::Unknown);
        }
        (p.client < self.clients.len()).then_some(p.client)
    }

    /// Acknowledged elements of `key`, ascending.
    pub fn acked(&self, key: usize) -> Vec<(u64, Element)> {
        self.elements
            .iter()
            .filter(|(_, e)| e.key == key && matches!(e.outcome, ElementOutcome::Acked(_)))
            .map(|(&n, &e)| (n, e))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn set_encoding_round_trips_and_rejects_foreign_values() {
        let set = BTreeSet::from([42, 3, 17]);
        assert_eq!(encode_set(&set), b"3,17,42");
        assert_eq!(decode_set(b"3,17,42"), Some(set));
        assert_eq!(decode_set(b""), Some(BTreeSet::new()));
        assert_eq!(decode_set(b"0"), Some(BTreeSet::from([0])));
        for bad in [
            &b"3,,4"[..],
            b"03",
            b"x",
            b"3,",
            b"-1",
            b"99999999999999999999",
        ] {
            assert_eq!(decode_set(bad), None, "{bad:?}");
        }
        let merged = merge_siblings(&[Some(b"1,2".to_vec()), Some(b"2,5".to_vec()), None]);
        assert_eq!(merged.elements, BTreeSet::from([1, 2, 5]));
        assert_eq!(merged.foreign, ["a tombstone"]);
    }

    #[test]
    fn clients_read_merge_and_write_back_fresh_elements() {
        let config = SetConfig {
            clients: 1,
            keys: 1,
            adds_per_client: 2,
            blind_pct: 0,
            ..SetConfig::default()
        };
        let mut w = SetWorkload::new(config, 3, SplitMix64::new(5));
        let (_, read, req) = w.next(0, 10).unwrap();
        assert!(is_set_request(read));
        assert_eq!(req, Request::GetEventual { key: set_key(0) });
        let siblings = Reply::Siblings {
            values: vec![],
            context: vec![1],
        };
        assert_eq!(w.reply(read, &siblings, 12), Some(0));
        let (_, write, req) = w.next(0, 15).unwrap();
        let expected = Request::PutEventual {
            key: set_key(0),
            value: b"1".to_vec(),
            context: Some(vec![1]),
        };
        assert_eq!(req, expected);
        assert_eq!(w.key_of(write), Some(set_key(0)));
        assert_eq!(w.reply(write, &Reply::Done, 20), Some(0));
        assert_eq!(w.acked(0).len(), 1);

        // Second add: a read sees element 1 and a sibling with an element nobody wrote.
        let (_, read, _) = w.next(0, 30).unwrap();
        let siblings = Reply::Siblings {
            values: vec![Some(b"1".to_vec()), Some(b"9".to_vec())],
            context: vec![2],
        };
        w.reply(read, &siblings, 31);
        assert_eq!(w.unattempted.len(), 1);
        let (_, write, req) = w.next(0, 35).unwrap();
        let Request::PutEventual { value, .. } = req else {
            panic!("write expected");
        };
        assert_eq!(value, b"1,2,9");
        assert_eq!(w.expire(write), Some(0));
        assert_eq!(w.elements[&2].outcome, ElementOutcome::Unknown);
        assert!(w.next(0, 40).is_none(), "two adds made");
        assert_eq!(
            (
                w.counts.reads,
                w.counts.writes,
                w.counts.acked,
                w.counts.unknown
            ),
            (2, 2, 1, 1)
        );
        let (v, req) = w.verify_read(0);
        assert_eq!(req, Request::GetEventual { key: set_key(0) });
        assert_eq!(w.reply(v, &Reply::Unavailable, 50), None);
        assert!(w.last_verify().is_none());
        assert!(!w.has_pending());
    }
}
