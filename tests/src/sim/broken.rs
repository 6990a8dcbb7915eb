//! Deliberately broken coordinators, to prove the checks find violations in real
//! simulated runs: [`CachingCoordinator`] (stale reads, for the linearizability
//! checker) and [`EarlyAckCoordinator`] (eventual puts acknowledged before they are
//! stored, for the set check).
//!
//! It wraps a correct node and answers a `Get` from a per-node cache of the last value
//! that node saw for the key (its own puts, deletes and reads), without a quorum read
//! and without write-back: a classic stale-read bug. It uses only the node's public
//! interface, so it wraps `ringkv_core::node::Node` and the toy alike.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::api::{
    Hardware, Input, LayoutSeen, NodeIndex, Output, Reply, Request, RequestId, SimNode,
};
use super::error::SimError;

pub struct CachingCoordinator<N: SimNode> {
    inner: N,
    cache: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Requests forwarded to `inner`, to learn from their replies.
    forwarded: BTreeMap<RequestId, Request>,
    /// Answers served from the cache, before anything `inner` produces.
    cached_replies: VecDeque<Output<N::Message>>,
}

impl<N: SimNode> CachingCoordinator<N> {
    pub fn new(inner: N) -> Self {
        CachingCoordinator {
            inner,
            cache: BTreeMap::new(),
            forwarded: BTreeMap::new(),
            cached_replies: VecDeque::new(),
        }
    }

    fn learn(&mut self, id: RequestId, reply: &Reply) {
        match (self.forwarded.remove(&id), reply) {
            (Some(Request::Put { key, value }), Reply::Done) => {
                self.cache.insert(key, Some(value));
            }
            (Some(Request::Delete { key }), Reply::Done) => {
                self.cache.insert(key, None);
            }
            (Some(Request::Get { key }), Reply::Value(v)) => {
                self.cache.insert(key, v.clone());
            }
            _ => {}
        }
    }
}

impl<N: SimNode> SimNode for CachingCoordinator<N> {
    type Message = N::Message;

    fn handle(&mut self, now_ms: u64, input: Input<Self::Message>) {
        if let Input::Client { id, request } = &input {
            if let Request::Get { key } = request {
                if let Some(v) = self.cache.get(key) {
                    let reply = Reply::Value(v.clone());
                    self.cached_replies
                        .push_back(Output::Reply { id: *id, reply });
                    return;
                }
            }
            self.forwarded.insert(*id, request.clone());
        }
        self.inner.handle(now_ms, input);
    }

    fn poll_output(&mut self) -> Option<Output<Self::Message>> {
        if let Some(out) = self.cached_replies.pop_front() {
            return Some(out);
        }
        let out = self.inner.poll_output()?;
        if let Output::Reply { id, reply } = &out {
            self.learn(*id, reply);
        }
        Some(out)
    }

    fn poll_timeout(&self) -> Option<u64> {
        self.inner.poll_timeout()
    }

    fn hints_held(&self) -> u64 {
        self.inner.hints_held()
    }

    fn members_not_alive(&self) -> usize {
        self.inner.members_not_alive()
    }

    fn take_layouts(&mut self) -> Option<Vec<LayoutSeen>> {
        self.inner.take_layouts()
    }
}

/// A deliberately broken eventual-mode coordinator, to prove the set check finds lost
/// elements in real simulated runs.
///
/// It wraps a correct node and answers every `PutEventual` with `Done` at once, before
/// any replica has stored it, while the wrapped node carries the write out as usual
/// (whose own answer is swallowed): a write quorum of zero. A put that then fails
/// (issuer unreachable behind a partition, refused, or never durable at W nodes) was
/// acknowledged all the same. Everything else passes through unchanged.
pub struct EarlyAckCoordinator<N: SimNode> {
    inner: N,
    /// Puts already answered: the inner node's answers to them are dropped.
    answered: BTreeSet<RequestId>,
    early_replies: VecDeque<Output<N::Message>>,
}

impl<N: SimNode> EarlyAckCoordinator<N> {
    pub fn new(inner: N) -> Self {
        EarlyAckCoordinator {
            inner,
            answered: BTreeSet::new(),
            early_replies: VecDeque::new(),
        }
    }
}

impl<N: SimNode> SimNode for EarlyAckCoordinator<N> {
    type Message = N::Message;

    fn handle(&mut self, now_ms: u64, input: Input<Self::Message>) {
        if let Input::Client {
            id,
            request: Request::PutEventual { .. },
        } = &input
        {
            self.answered.insert(*id);
            self.early_replies.push_back(Output::Reply {
                id: *id,
                reply: Reply::Done,
            });
        }
        self.inner.handle(now_ms, input);
    }

    fn poll_output(&mut self) -> Option<Output<Self::Message>> {
        if let Some(out) = self.early_replies.pop_front() {
            return Some(out);
        }
        loop {
            let out = self.inner.poll_output()?;
            match &out {
                Output::Reply { id, .. } if self.answered.remove(id) => continue,
                _ => return Some(out),
            }
        }
    }

    fn poll_timeout(&self) -> Option<u64> {
        self.inner.poll_timeout()
    }

    fn hints_held(&self) -> u64 {
        self.inner.hints_held()
    }

    fn members_not_alive(&self) -> usize {
        self.inner.members_not_alive()
    }

    fn take_layouts(&mut self) -> Option<Vec<LayoutSeen>> {
        self.inner.take_layouts()
    }
}

/// A node type built around another one (a deliberately broken variant of it).
pub trait Wrap<N>: SimNode {
    fn wrap(inner: N) -> Self;
}

impl<N: SimNode> Wrap<N> for CachingCoordinator<N> {
    fn wrap(inner: N) -> Self {
        CachingCoordinator::new(inner)
    }
}

impl<N: SimNode> Wrap<N> for EarlyAckCoordinator<N> {
    fn wrap(inner: N) -> Self {
        EarlyAckCoordinator::new(inner)
    }
}

/// `H` with every node behind a `W`. Membership changes are not planned (the
/// wrappers test the checks, not layout changes).
pub struct Wrapped<H, W> {
    inner: H,
    wrapper: std::marker::PhantomData<fn() -> W>,
}

impl<H, W> Wrapped<H, W> {
    pub fn new(inner: H) -> Self {
        Wrapped {
            inner,
            wrapper: std::marker::PhantomData,
        }
    }
}

/// `H` with every node behind a [`CachingCoordinator`].
pub type BrokenHardware<H> = Wrapped<H, CachingCoordinator<<H as Hardware>::Node>>;
/// `H` with every node behind an [`EarlyAckCoordinator`].
pub type EarlyAckHardware<H> = Wrapped<H, EarlyAckCoordinator<<H as Hardware>::Node>>;

impl<H, W> Hardware for Wrapped<H, W>
where
    H: Hardware,
    W: Wrap<H::Node> + SimNode<Message = <H::Node as SimNode>::Message>,
{
    type Node = W;

    fn nodes(&self) -> usize {
        self.inner.nodes()
    }

    fn replicas(&self) -> usize {
        self.inner.replicas()
    }

    fn boot(&mut self, index: NodeIndex, now_ms: u64, seed: u64) -> Result<W, SimError> {
        Ok(W::wrap(self.inner.boot(index, now_ms, seed)?))
    }

    fn power_loss(&mut self, index: NodeIndex, seed: u64) {
        self.inner.power_loss(index, seed);
    }

    fn replica_version(&self, index: NodeIndex, key: &[u8]) -> Result<Option<Vec<u8>>, SimError> {
        self.inner.replica_version(index, key)
    }

    fn message_key(&mut self, message: &W::Message) -> Option<Vec<u8>> {
        self.inner.message_key(message)
    }

    fn supports_eventual(&self) -> bool {
        self.inner.supports_eventual()
    }

    fn supports_scans(&self) -> bool {
        self.inner.supports_scans()
    }

    fn supports_updates(&self) -> bool {
        self.inner.supports_updates()
    }

    fn supports_processes(&self) -> bool {
        self.inner.supports_processes()
    }
}
