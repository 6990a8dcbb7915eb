//! Clients and their history: each client issues one request at a time (get, put or
//! delete of a small key set, unique values; in the update mix also conditional sets
//! and adds, `updates.rs`) to a random node, and the outcome of every request is
//! recorded for the checker.
//!
//! A client that gets no answer by its deadline records `Unknown` and continues under a
//! fresh identity (its old request may still take effect later; the checker allows it).

use std::collections::BTreeMap;

use ringkv_core::rand::SplitMix64;

use super::api::{NodeIndex, Reply, Request, RequestId, Update};
use super::updates;
use crate::checker::{Op, Operation, Outcome};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkloadConfig {
    pub clients: usize,
    pub keys: usize,
    /// Requests per client; bounds each key's history for the checker.
    pub ops_per_client: u64,
    pub think_ms_max: u64,
    /// Client-side deadline; longer than a node's whole request (two phases).
    pub client_timeout_ms: u64,
    pub get_pct: u64,
    pub delete_pct: u64,
    /// Puts and deletes of a key go to the node the key's previous write went to with
    /// this probability (else to a random node, as reads always do): a key keeps one
    /// coordinator for its writes for a while, as with key-affine client routing. 0 in
    /// the default runs; the hot profile uses it, so a coordinator's next
    /// write of a key follows its crash mid-write.
    pub write_sticky_pct: u64,
    /// A client whose connection breaks during a put or delete (the node crashed,
    /// `SimConfig::clients_see_crashes`) reconnects to the same node and writes the key
    /// again (a fresh value), as client libraries retry after an ambiguous failure: so
    /// a coordinator that restarts soon after a crash is asked to write that key again
    /// at once. Off in the default runs; the hot profile uses it.
    pub retry_broken_writes: bool,
    /// The update mix (`updates.rs`): this % of requests are conditional sets and adds,
    /// and some written values are decimal integers. 0 (default): none, and no random
    /// draw for them, so runs without the mix keep their streams.
    pub update_pct: u64,
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        WorkloadConfig {
            clients: 5,
            keys: 4,
            ops_per_client: 60,
            think_ms_max: 30,
            client_timeout_ms: 2_000,
            get_pct: 45,
            delete_pct: 15,
            write_sticky_pct: 0,
            retry_broken_writes: false,
            update_pct: 0,
        }
    }
}

/// The workload's keys: readable, so traces and explanations show them as text.
pub fn key(i: usize) -> Vec<u8> {
    format!("key-{i}").into_bytes()
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpCounts {
    pub issued: u64,
    pub ok: u64,
    pub unavailable: u64,
    /// `Indeterminate` replies.
    pub indeterminate: u64,
    /// No reply before the client's deadline.
    pub timed_out: u64,
    pub rejected: u64,
    /// Replies that arrived after the client gave up (ignored).
    pub late_replies: u64,
    /// Replies of the wrong kind (a value for a put, `Done` for a get): node bugs.
    pub protocol_errors: u64,
    /// The update mix: conditional sets and adds issued; answers that applied (adds
    /// always do) or did not; adds answered "not an integer"; updates that lost to
    /// contention (not applied, also counted `unavailable`).
    pub updates: u64,
    pub adds: u64,
    pub applied: u64,
    pub not_applied: u64,
    pub not_an_integer: u64,
    pub contention: u64,
}

impl OpCounts {
    pub fn add(&mut self, o: &OpCounts) {
        self.issued += o.issued;
        self.ok += o.ok;
        self.unavailable += o.unavailable;
        self.indeterminate += o.indeterminate;
        self.timed_out += o.timed_out;
        self.rejected += o.rejected;
        self.late_replies += o.late_replies;
        self.protocol_errors += o.protocol_errors;
        self.updates += o.updates;
        self.adds += o.adds;
        self.applied += o.applied;
        self.not_applied += o.not_applied;
        self.not_an_integer += o.not_an_integer;
        self.contention += o.contention;
    }
}

#[derive(Debug, Clone)]
struct Pending {
    client: usize,
    op: usize,
}

#[derive(Debug, Clone, Default)]
struct Client {
    incarnation: u64,
    issued: u64,
    /// A write to retry (key index, node) after a broken connection.
    retry: Option<(usize, NodeIndex)>,
    /// Per key, the value this client last saw (`None`: absent): what its
    /// compare-and-sets expect.
    seen: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

#[derive(Debug)]
pub struct Workload {
    config: WorkloadConfig,
    nodes: usize,
    rng: SplitMix64,
    clients: Vec<Client>,
    pending: BTreeMap<RequestId, Pending>,
    next_request: RequestId,
    /// History index of request `id` at `id - 1`.
    op_of_request: Vec<usize>,
    next_value: u64,
    /// Per key, the node its latest write went to (`write_sticky_pct`).
    last_writer: Vec<Option<NodeIndex>>,
    pub history: Vec<Operation>,
    /// History indices of the post-run verification reads.
    pub verify_reads: Vec<usize>,
    /// Counts of the workload's requests (verification reads excluded).
    pub counts: OpCounts,
}

impl Workload {
    pub fn new(config: WorkloadConfig, nodes: usize, rng: SplitMix64) -> Self {
        Workload {
            config,
            nodes,
            rng,
            // The last slot is the verifier, which issues the post-run reads.
            clients: vec![Client::default(); config.clients + 1],
            pending: BTreeMap::new(),
            next_request: 1,
            op_of_request: Vec::new(),
            next_value: 0,
            last_writer: vec![None; config.keys],
            history: Vec::new(),
            verify_reads: Vec::new(),
            counts: OpCounts::default(),
        }
    }

    pub fn config(&self) -> &WorkloadConfig {
        &self.config
    }

    fn verifier(&self) -> usize {
        self.config.clients
    }

    /// A readable client identity that changes when the client gives up on a request.
    fn identity(&self, client: usize) -> u64 {
        client as u64 * 1000 + self.clients[client].incarnation
    }

    pub fn think_ms(&mut self) -> u64 {
        self.rng.below(self.config.think_ms_max + 1)
    }

    fn start(&mut self, client: usize, request: &Request, stamp: u64) -> RequestId {
        let id = self.next_request;
        self.next_request += 1;
        // Register requests only: eventual ones belong to the set workload (`sets`),
        // which this workload never issues; were one recorded, it would read as a
        // register op of a key the checker never looks at.
        let op = match request {
            Request::Get { .. } | Request::GetEventual { .. } => Op::Read,
            Request::Put { value, .. } | Request::PutEventual { value, .. } => {
                Op::Write(value.clone())
            }
            Request::Delete { .. } => Op::Delete,
            Request::Update { update, .. } => updates::op_of(update),
            // The scan workload's (`scans.rs`), never this one's.
            Request::Scan { .. } => Op::Read,
        };
        self.op_of_request.push(self.history.len());
        self.pending.insert(
            id,
            Pending {
                client,
                op: self.history.len(),
            },
        );
        self.history.push(Operation {
            client: self.identity(client),
            key: request.key().to_vec(),
            op,
            invoke: stamp,
            outcome: Outcome::Unknown,
        });
        id
    }

    /// The next request of workload client `client` (target node, id, request), or
    /// `None` once it has issued all of its requests.
    pub fn next(&mut self, client: usize, stamp: u64) -> Option<(NodeIndex, RequestId, Request)> {
        let c = self.clients.get_mut(client)?;
        if client >= self.config.clients || c.issued >= self.config.ops_per_client {
            return None;
        }
        c.issued += 1;
        if let Some((k, node)) = c.retry.take() {
            let value = self.fresh_value(client);
            let request = Request::Put { key: key(k), value };
            self.last_writer[k] = Some(node);
            self.counts.issued += 1;
            let id = self.start(client, &request, stamp);
            return Some((node, id, request));
        }
        let k = self.rng.below(self.config.keys as u64) as usize;
        let key = key(k);
        // Short-circuits: no draw without the mix.
        let request = if self.config.update_pct > 0 && self.rng.chance(self.config.update_pct) {
            self.update_request(client, key)
        } else {
            self.plain_request(client, key)
        };
        let node = match (&request, self.last_writer[k]) {
            // No draw unless asked for: runs without it keep their streams.
            (Request::Put { .. } | Request::Delete { .. }, Some(last))
                if self.config.write_sticky_pct > 0
                    && self.rng.chance(self.config.write_sticky_pct) =>
            {
                last
            }
            _ => self.rng.below(self.nodes as u64) as usize,
        };
        if matches!(request, Request::Put { .. } | Request::Delete { .. }) {
            self.last_writer[k] = Some(node);
        }
        self.counts.issued += 1;
        let id = self.start(client, &request, stamp);
        Some((node, id, request))
    }

    /// A new value, unique in the run (`fresh`).
    fn fresh_value(&mut self, client: usize) -> Vec<u8> {
        let integers = self.config.update_pct > 0;
        fresh(&mut self.next_value, &mut self.rng, client, integers)
    }

    fn plain_request(&mut self, client: usize, key: Vec<u8>) -> Request {
        let roll = self.rng.below(100);
        if roll < self.config.get_pct {
            Request::Get { key }
        } else if roll < self.config.get_pct + self.config.delete_pct {
            Request::Delete { key }
        } else {
            let value = self.fresh_value(client);
            Request::Put { key, value }
        }
    }

    fn update_request(&mut self, client: usize, key: Vec<u8>) -> Request {
        let seen = self.clients[client].seen.get(&key).cloned();
        let next_value = &mut self.next_value;
        let mut value = |rng: &mut SplitMix64| fresh(next_value, rng, client, true);
        let seen = seen.as_ref().map(Option::as_deref);
        let update = updates::choose(&mut self.rng, seen, &mut value);
        match update {
            Update::Add { .. } => self.counts.adds += 1,
            Update::Set { .. } => self.counts.updates += 1,
        }
        Request::Update { key, update }
    }

    /// A verification read of `key`; its result joins the history.
    pub fn verify_read(&mut self, key: &[u8], stamp: u64) -> RequestId {
        let request = Request::Get { key: key.to_vec() };
        let id = self.start(self.verifier(), &request, stamp);
        self.verify_reads.push(self.history.len() - 1);
        id
    }

    pub fn is_pending(&self, id: RequestId) -> bool {
        self.pending.contains_key(&id)
    }

    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The key of request `id`, answered or not.
    pub fn key_of(&self, id: RequestId) -> Option<Vec<u8>> {
        let index = usize::try_from(id.checked_sub(1)?).ok()?;
        let &op = self.op_of_request.get(index)?;
        Some(self.history[op].key.clone())
    }

    /// Outcome of the latest verification read.
    pub fn outcome_of_last_verify(&self) -> Option<&Outcome> {
        let &i = self.verify_reads.last()?;
        Some(&self.history[i].outcome)
    }

    /// Records a reply. Returns the client, now free, or `None` for a late reply.
    pub fn reply(&mut self, id: RequestId, reply: &Reply, stamp: u64) -> Option<usize> {
        let Some(p) = self.pending.remove(&id) else {
            self.counts.late_replies += 1;
            return None;
        };
        let is_workload = p.client != self.verifier();
        let entry = &mut self.history[p.op];
        // What the client now knows the key held: what its compare-and-sets expect.
        match reply {
            Reply::Value(v) => {
                self.clients[p.client]
                    .seen
                    .insert(entry.key.clone(), v.clone());
            }
            Reply::Updated { current, .. } => {
                self.clients[p.client]
                    .seen
                    .insert(entry.key.clone(), current.clone());
            }
            _ => {}
        }
        let counts = &mut self.counts;
        let mut count = |f: fn(&mut OpCounts)| {
            if is_workload {
                f(counts);
            }
        };
        entry.outcome = match (&entry.op, reply) {
            (Op::Read, Reply::Value(v)) => {
                count(|c| c.ok += 1);
                Outcome::read(stamp, v.as_deref())
            }
            (Op::Write(_) | Op::Delete, Reply::Done) => {
                count(|c| c.ok += 1);
                Outcome::done(stamp)
            }
            (_, Reply::Unavailable) => {
                count(|c| c.unavailable += 1);
                Outcome::Failed
            }
            (_, Reply::Rejected(_)) => {
                count(|c| c.rejected += 1);
                Outcome::Failed
            }
            (_, Reply::Indeterminate) => {
                count(|c| c.indeterminate += 1);
                Outcome::Unknown
            }
            (_, Reply::Contention) => {
                count(|c| c.unavailable += 1);
                count(|c| c.contention += 1);
                Outcome::Failed
            }
            (Op::Update { .. } | Op::Add { .. }, Reply::Updated { .. } | Reply::NotAnInteger) => {
                let outcome = updates::outcome_of(&entry.op, reply, stamp);
                match &outcome {
                    Some(Outcome::Updated { applied: true, .. }) => count(|c| c.applied += 1),
                    Some(Outcome::Updated { applied: false, .. }) => count(|c| c.not_applied += 1),
                    Some(_) => count(|c| c.not_an_integer += 1),
                    // Inconsistent in itself: a node bug (`Unknown` keeps the checker sound).
                    None => count(|c| c.protocol_errors += 1),
                }
                if outcome.is_some() {
                    count(|c| c.ok += 1);
                }
                outcome.unwrap_or(Outcome::Unknown)
            }
            // A reply of the wrong kind: count it; `Unknown` keeps the checker sound.
            (
                _,
                Reply::Value(_)
                | Reply::Done
                | Reply::Siblings { .. }
                | Reply::Keys { .. }
                | Reply::Updated { .. }
                | Reply::NotAnInteger,
            ) => {
                self.counts.protocol_errors += 1;
                Outcome::Unknown
            }
        };
        Some(p.client)
    }

    /// The connection request `id` went over, to `node`, broke before its answer:
    /// `in_flight`, the node crashed while it had the request; else it was down when
    /// the request arrived (call before ending the request with [`Workload::expire`]).
    /// A write to a node found down moves the key's writes elsewhere
    /// (`write_sticky_pct`); with `retry_broken_writes`, a write whose node crashed under
    /// it is retried: the client's next request writes the same key through the same
    /// node, once it is back.
    pub fn connection_lost(&mut self, id: RequestId, node: NodeIndex, in_flight: bool) {
        let Some(p) = self.pending.get(&id) else {
            return;
        };
        let entry = &self.history[p.op];
        if p.client >= self.config.clients || matches!(entry.op, Op::Read) {
            return;
        }
        let Some(k) = (0..self.config.keys).find(|&k| key(k) == entry.key) else {
            return;
        };
        if !in_flight {
            if self.last_writer[k] == Some(node) {
                self.last_writer[k] = None;
            }
        } else if self.config.retry_broken_writes {
            self.clients[p.client].retry = Some((k, node));
        }
    }

    /// The client's deadline for request `id` passed: if still unanswered, it stays
    /// `Unknown` and the client continues under a fresh identity. Returns the client.
    pub fn expire(&mut self, id: RequestId) -> Option<usize> {
        let p = self.pending.remove(&id)?;
        if p.client != self.verifier() {
            self.counts.timed_out += 1;
        }
        self.clients[p.client].incarnation += 1;
        Some(p.client)
    }
}

/// The next unique value: `c{client}-{n}`, or with `integers` sometimes a decimal
/// integer (a multiple of 1000: adds of small deltas rarely reach another one).
fn fresh(next_value: &mut u64, rng: &mut SplitMix64, client: usize, integers: bool) -> Vec<u8> {
    *next_value += 1;
    if integers && rng.below(1000) < updates::INTEGER_PERMILLE {
        return (*next_value * 1000).to_string().into_bytes();
    }
    format!("c{client}-{next_value}").into_bytes()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn records_outcomes_and_renews_identity_on_timeout() {
        let config = WorkloadConfig {
            clients: 2,
            ops_per_client: 3,
            ..WorkloadConfig::default()
        };
        let mut w = Workload::new(config, 5, SplitMix64::new(1));
        let (node, a, req) = w.next(0, 10).unwrap();
        assert!(node < 5);
        let reply = match req {
            Request::Get { .. } => Reply::Value(None),
            _ => Reply::Done,
        };
        assert_eq!(w.reply(a, &reply, 20), Some(0));
        assert_eq!(w.reply(a, &reply, 21), None, "a second reply is late");
        assert_eq!(w.counts.late_replies, 1);
        assert!(matches!(w.history[0].outcome, Outcome::Ok { at: 20, .. }));

        let (_, b, _) = w.next(0, 30).unwrap();
        assert!(w.is_pending(b));
        assert_eq!(w.expire(b), Some(0));
        assert_eq!(w.expire(b), None);
        assert_eq!(w.history[1].outcome, Outcome::Unknown);
        let (_, c, _) = w.next(0, 40).unwrap();
        assert_eq!(w.history[2].client, 1, "fresh identity after a timeout");
        assert_eq!(w.reply(c, &Reply::Unavailable, 50), Some(0));
        assert_eq!(w.history[2].outcome, Outcome::Failed);
        assert!(w.next(0, 60).is_none(), "client 0 is done after 3 ops");
        assert_eq!(w.counts.issued, 3);
        assert_eq!(
            (w.counts.ok, w.counts.timed_out, w.counts.unavailable),
            (1, 1, 1)
        );

        let v = w.verify_read(b"key-0", 70);
        assert_eq!(w.reply(v, &Reply::Value(None), 80), Some(2));
        assert_eq!(w.verify_reads, [3]);
        assert_eq!(w.counts.ok, 1, "verification reads are not workload ops");
        assert!(!w.has_pending());
    }

    #[test]
    fn sticky_writes_follow_the_key_and_broken_writes_are_retried() {
        let config = WorkloadConfig {
            clients: 2,
            keys: 1,
            ops_per_client: 200,
            get_pct: 0,
            delete_pct: 0,
            write_sticky_pct: 100,
            retry_broken_writes: true,
            ..WorkloadConfig::default()
        };
        let mut w = Workload::new(config, 5, SplitMix64::new(3));
        let (first, a, _) = w.next(0, 0).unwrap();
        w.expire(a);
        // Every later write of the key goes where the first went.
        for _ in 0..20 {
            let (node, id, _) = w.next(1, 0).unwrap();
            assert_eq!(node, first);
            w.expire(id);
        }
        // Found down: the key's writes move on (to a random node).
        let (_, b, _) = w.next(1, 0).unwrap();
        w.connection_lost(b, first, false);
        w.expire(b);
        assert_eq!(w.last_writer[0], None);
        // Crashed under a write: the client's next request writes the key there again.
        let (node, c, _) = w.next(0, 0).unwrap();
        w.connection_lost(c, 4, true);
        w.expire(c);
        let (retry_node, _, retry) = w.next(0, 0).unwrap();
        assert_eq!(retry_node, 4, "after a write to {node}");
        assert!(matches!(retry, Request::Put { key, .. } if key == b"key-0"));
    }

    #[test]
    fn the_update_mix_expects_what_the_client_saw_and_records_answers() {
        let config = WorkloadConfig {
            clients: 1,
            keys: 1,
            ops_per_client: 400,
            update_pct: 50,
            ..WorkloadConfig::default()
        };
        let mut w = Workload::new(config, 3, SplitMix64::new(4));
        let mut values = std::collections::BTreeSet::new();
        let (mut cas, mut integers) = (0, 0);
        let mut seen: Option<Vec<u8>> = None;
        while let Some((_, id, req)) = w.next(0, 0) {
            let reply = match &req {
                Request::Get { .. } => Reply::Value(Some(b"c0-x".to_vec())),
                Request::Put { value, .. } => {
                    assert!(values.insert(value.clone()));
                    integers += usize::from(crate::checker::integer(value).is_some());
                    Reply::Done
                }
                Request::Update {
                    update: Update::Set { condition, value },
                    ..
                } => {
                    if let Some(v) = value {
                        assert!(values.insert(v.clone()));
                    }
                    if let crate::sim::api::Condition::Equals(expected) = condition {
                        assert_eq!(Some(expected), seen.as_ref(), "expects what it saw");
                        cas += 1;
                    }
                    Reply::Updated {
                        applied: true,
                        previous: seen.clone(),
                        current: value.clone(),
                    }
                }
                Request::Update { .. } => Reply::NotAnInteger,
                _ => Reply::Done,
            };
            seen = match &reply {
                Reply::Value(v) => v.clone(),
                Reply::Updated { current, .. } => current.clone(),
                _ => seen,
            };
            w.reply(id, &reply, 1);
        }
        let c = w.counts;
        assert!(c.updates > 100 && c.adds > 50, "{c:?}");
        assert_eq!(c.applied, c.updates);
        assert_eq!(c.not_an_integer, c.adds);
        assert_eq!(c.protocol_errors, 0);
        assert!(cas > 20 && integers > 10, "{cas} {integers}");
        assert!(w
            .history
            .iter()
            .any(|o| matches!(o.outcome, Outcome::NotAnInteger { .. })));
    }

    #[test]
    fn written_values_are_unique() {
        let config = WorkloadConfig {
            clients: 3,
            ops_per_client: 200,
            ..WorkloadConfig::default()
        };
        let mut w = Workload::new(config, 3, SplitMix64::new(9));
        let mut values = std::collections::BTreeSet::new();
        for c in 0..3 {
            while let Some((_, id, req)) = w.next(c, 0) {
                if let Request::Put { value, .. } = req {
                    assert!(values.insert(value));
                }
                w.expire(id);
            }
        }
        assert!(values.len() > 100);
    }
}
