//! A tiny replicated-key simulator for the property tests: replicas holding
//! [`Siblings`], clients holding causal contexts, and arbitrary interleavings of writes,
//! reads and replica-to-replica syncs.

use proptest::prelude::*;

use super::super::{Dot, Siblings, VersionVector};
use crate::ring::NodeId;

pub const REPLICAS: usize = 3;

#[derive(Debug, Clone)]
pub enum Op {
    /// Client writes through `replica` with its current context, then holds the context
    /// the write returns (session guarantees: read-your-writes).
    Write { client: usize, replica: usize },
    /// Client reads `replica` and adds what it saw to its context.
    Read { client: usize, replica: usize },
    /// A blind write (empty context), e.g. a client without a session.
    BlindWrite { replica: usize },
    /// `to` merges `from`'s state (replication, read repair, anti-entropy).
    Sync { from: usize, to: usize },
}

pub fn arb_ops(clients: usize, blind: bool, len: usize) -> impl Strategy<Value = Vec<Op>> {
    let client = 0..clients;
    let replica = || 0..REPLICAS;
    let blind_weight = if blind { 1 } else { 0 };
    let op = prop_oneof![
        3 => (client.clone(), replica()).prop_map(|(client, replica)| Op::Write { client, replica }),
        2 => (client, replica()).prop_map(|(client, replica)| Op::Read { client, replica }),
        blind_weight => replica().prop_map(|replica| Op::BlindWrite { replica }),
        2 => (replica(), replica()).prop_map(|(from, to)| Op::Sync { from, to }),
    ];
    prop::collection::vec(op, 0..len)
}

/// A write that happened: its dot and the context it was issued with.
#[derive(Debug, Clone)]
pub struct WriteRecord {
    pub dot: Dot,
    pub context: VersionVector,
}

pub struct Cluster {
    pub replicas: Vec<Siblings<u64>>,
    pub contexts: Vec<VersionVector>,
    pub writes: Vec<WriteRecord>,
}

pub fn node(replica: usize) -> NodeId {
    NodeId(replica as u64 + 1)
}

impl Cluster {
    pub fn new(clients: usize) -> Self {
        Cluster {
            replicas: vec![Siblings::new(); REPLICAS],
            contexts: vec![VersionVector::new(); clients],
            writes: Vec::new(),
        }
    }

    pub fn run(clients: usize, ops: &[Op]) -> Self {
        let mut cluster = Cluster::new(clients);
        for op in ops {
            cluster.apply(op);
        }
        cluster
    }

    pub fn apply(&mut self, op: &Op) {
        match *op {
            Op::Write { client, replica } => {
                let context = self.contexts[client].clone();
                self.write(replica, &context);
                self.contexts[client] = self.replicas[replica].context();
            }
            Op::Read { client, replica } => {
                let seen = self.replicas[replica].context();
                self.contexts[client].merge(&seen);
            }
            Op::BlindWrite { replica } => {
                self.write(replica, &VersionVector::new());
            }
            Op::Sync { from, to } => {
                let source = self.replicas[from].clone();
                self.replicas[to].merge(&source);
            }
        }
    }

    /// A write through `replica` with `context`; the value is the write's sequence number.
    pub fn write(&mut self, replica: usize, context: &VersionVector) -> Dot {
        let value = self.writes.len() as u64;
        let dot = self.replicas[replica]
            .update(context, node(replica), value)
            .expect("small counters");
        self.writes.push(WriteRecord {
            dot,
            context: context.clone(),
        });
        dot
    }

    /// All replica states joined.
    pub fn converged(&self) -> Siblings<u64> {
        self.replicas
            .iter()
            .fold(Siblings::new(), |acc, state| acc.merged(state))
    }
}
