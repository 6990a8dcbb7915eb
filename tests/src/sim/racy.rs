//! A deliberately broken update path, to prove the checker finds lost updates in real
//! simulated runs of the update mix: [`RacyUpdates`] answers a conditional set or an
//! add by a linearizable `Get` and then, if it applies, a linearizable `Put` or
//! `Delete`: each step is correct, the pair is not atomic. Two adds that read the same
//! value both store their own sum (a lost increment); two compare-and-sets on one
//! expectation both apply. Everything else passes through to the wrapped node.

use std::collections::{BTreeMap, VecDeque};

use super::api::{Hardware, Input, LayoutSeen, Output, Reply, Request, RequestId, SimNode, Update};
use super::broken::{Wrap, Wrapped};
use crate::checker::integer;

/// Ids of the wrapper's own requests to the wrapped node: far above the workloads'
/// and membership changes' (`1 << 62`).
const OWN_ID_BASE: RequestId = 1 << 61;

#[derive(Debug)]
enum Step {
    /// Reading the value the update applies to.
    Read,
    /// Storing the update's result; the answer to send once stored.
    Write { answer: Reply },
}

#[derive(Debug)]
struct Pending {
    client: RequestId,
    key: Vec<u8>,
    update: Update,
    step: Step,
}

pub struct RacyUpdates<N: SimNode> {
    inner: N,
    next_own: RequestId,
    pending: BTreeMap<RequestId, Pending>,
    replies: VecDeque<Output<N::Message>>,
    /// The time of the latest input, for answers found while polling.
    now_ms: u64,
}

impl<N: SimNode> Wrap<N> for RacyUpdates<N> {
    fn wrap(inner: N) -> Self {
        RacyUpdates::new(inner)
    }
}

/// `H` with every node behind a [`RacyUpdates`].
pub type RacyUpdateHardware<H> = Wrapped<H, RacyUpdates<<H as Hardware>::Node>>;

impl<N: SimNode> RacyUpdates<N> {
    pub fn new(inner: N) -> Self {
        RacyUpdates {
            inner,
            next_own: OWN_ID_BASE,
            pending: BTreeMap::new(),
            replies: VecDeque::new(),
            now_ms: 0,
        }
    }

    fn send(&mut self, now_ms: u64, pending: Pending, request: Request) {
        let id = self.next_own;
        self.next_own += 1;
        self.pending.insert(id, pending);
        self.inner.handle(now_ms, Input::Client { id, request });
    }

    fn answer(&mut self, client: RequestId, reply: Reply) {
        self.replies.push_back(Output::Reply { id: client, reply });
    }

    /// The wrapped node answered one of the wrapper's own requests.
    fn advance(&mut self, now_ms: u64, mut p: Pending, reply: Reply) {
        match (p.step, reply) {
            (Step::Read, Reply::Value(previous)) => {
                let current = match &p.update {
                    Update::Set { condition, value } => {
                        if !condition.holds(previous.as_deref()) {
                            let current = previous.clone();
                            let reply = updated(false, previous, current);
                            return self.answer(p.client, reply);
                        }
                        value.clone()
                    }
                    Update::Add { delta } => {
                        let base = previous.as_deref().map_or(Some(0), integer);
                        match base.and_then(|b| b.checked_add(*delta)) {
                            Some(sum) => Some(sum.to_string().into_bytes()),
                            None => return self.answer(p.client, Reply::NotAnInteger),
                        }
                    }
                };
                let request = match &current {
                    Some(value) => Request::Put {
                        key: p.key.clone(),
                        value: value.clone(),
                    },
                    None => Request::Delete { key: p.key.clone() },
                };
                p.step = Step::Write {
                    answer: updated(true, previous, current),
                };
                self.send(now_ms, p, request);
            }
            (Step::Write { answer }, Reply::Done) => self.answer(p.client, answer),
            // A failed read did nothing; a failed write is passed on as it is
            // (`Unavailable`: not applied, `Indeterminate`: may have been).
            (_, other) => self.answer(p.client, other),
        }
    }
}

fn updated(applied: bool, previous: Option<Vec<u8>>, current: Option<Vec<u8>>) -> Reply {
    Reply::Updated {
        applied,
        previous,
        current,
    }
}

impl<N: SimNode> SimNode for RacyUpdates<N> {
    type Message = N::Message;

    fn handle(&mut self, now_ms: u64, input: Input<Self::Message>) {
        self.now_ms = now_ms;
        match input {
            Input::Client {
                id,
                request: Request::Update { key, update },
            } => {
                let get = Request::Get { key: key.clone() };
                let pending = Pending {
                    client: id,
                    key,
                    update,
                    step: Step::Read,
                };
                self.send(now_ms, pending, get);
            }
            other => self.inner.handle(now_ms, other),
        }
        // The wrapped node may answer at once (a refusal): advance on it now.
        self.drain(now_ms);
    }

    fn poll_output(&mut self) -> Option<Output<Self::Message>> {
        self.drain(self.now_ms);
        self.replies.pop_front()
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

    fn purge_floor(&self) -> Option<u64> {
        self.inner.purge_floor()
    }
}

impl<N: SimNode> RacyUpdates<N> {
    /// Takes every output of the wrapped node: answers to the wrapper's own requests
    /// advance their update; the rest waits in order for `poll_output`.
    fn drain(&mut self, now_ms: u64) {
        while let Some(out) = self.inner.poll_output() {
            match out {
                Output::Reply { id, reply } if self.pending.contains_key(&id) => {
                    if let Some(p) = self.pending.remove(&id) {
                        self.advance(now_ms, p, reply);
                    }
                }
                other => self.replies.push_back(other),
            }
        }
    }
}
