//! The thread that owns the `Node`. The core is synchronous (its engine writes fsync
//! inline), so it runs on its own OS thread with a single-threaded tokio runtime: a
//! slow fsync stalls this thread only, never the listeners. Everything else talks to it
//! through bounded channels:
//!
//! - client commands (`Command`): senders wait for room (backpressure; each connection
//!   bounds its own in-flight requests, and connections are bounded);
//! - peer messages: `try_send`, dropped when full, as a lossy network would (the node
//!   retransmits what matters).
//!
//! Invariant: every `Command::Client` gets exactly one reply (the node answers every
//! client input exactly once; on shutdown, pending senders are dropped, which callers
//! see as `Error::ShuttingDown`).
//!
//! After a storage failure (`fail_stop.rs`) the thread stops feeding the node: client
//! requests are answered `Unavailable` at once, requests the node had taken get
//! `Indeterminate` (writes) or `Unavailable` (reads), peer messages and timers are
//! dropped. Only `Status` and `Shutdown` still work.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ringkv_core::node::{
    ClientReply, ClientRequest, Input, Node, NodeStatus, Output, PeerMessage, RequestId,
};
use ringkv_core::protocol::wire::relay_host;
use ringkv_core::ring::{LayoutHistory, NodeId};
use ringkv_core::storage::Engine;
use tokio::sync::{mpsc, oneshot};

use super::committer::{Committer, Turn};
use super::fail_stop::FailStop;
use super::group_commit::GroupCommit;
use super::metrics::Metrics;
use crate::error::{Error, Result};

/// Client commands waiting for the node thread.
pub const COMMAND_QUEUE_MAX: usize = 4096;
/// Peer messages waiting for the node thread; more are dropped.
pub const PEER_QUEUE_MAX: usize = 16 << 10;
/// Inputs taken per wake-up before outputs are moved (keeps replies flowing under load).
const DRAIN_BATCH_MAX: usize = 1024;

pub enum Command {
    Client {
        request: ClientRequest,
        reply: oneshot::Sender<ClientReply>,
    },
    Status {
        reply: oneshot::Sender<Box<NodeStatus>>,
    },
    /// Flush the engine and stop. Sent after the listeners have drained.
    Shutdown {
        done: oneshot::Sender<std::result::Result<(), String>>,
    },
}

pub struct PeerInput {
    pub from: NodeId,
    /// The peer that relayed it for `from` (a replica's host), checked on the node
    /// thread against the layout as of every earlier input (`vouched`).
    pub via: Option<NodeId>,
    pub payload: PeerPayload,
}

pub enum PeerPayload {
    /// For this node.
    Message(PeerMessage),
    /// For this node, in order (one batch frame).
    Messages(Vec<PeerMessage>),
    /// For replica `to`, attached here: forwarded undecoded once vouched for.
    Forward { to: NodeId, frame: Vec<u8> },
}

/// What the peer transport needs from the node thread, called there.
pub struct TransportHooks {
    /// Refreshes what the transport derives from the node (the address book). Runs
    /// before a turn's outputs are released, so they are routed by the layout the turn
    /// produced.
    pub observe: Box<dyn FnMut(&Node) + Send>,
    /// Hands a vouched relayed frame to replica `to` attached here: `forward(to, from,
    /// frame)`, false if it was dropped. Never blocks.
    pub forward: Box<dyn FnMut(NodeId, NodeId, Vec<u8>) -> bool + Send>,
}

/// Where the node's `Output::Send`s go (the peer transport). Called on the committer
/// thread, after the turn's sync.
pub trait Outbound: Send + 'static {
    fn send(&mut self, to: NodeId, message: &PeerMessage);

    /// Everything some turns send, in order: a transport sends what goes to one peer
    /// as one batch (`protocol::encode_batch`).
    fn send_all(&mut self, sends: Vec<(NodeId, PeerMessage)>) {
        for (to, message) in &sends {
            self.send(*to, message);
        }
    }
}

/// The node's clock: milliseconds since the Unix epoch at start, advanced by a
/// monotonic `Instant` (the core only uses differences; it must never run backwards).
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: Instant,
    base_ms: u64,
}

impl Clock {
    /// A clock starting now.
    pub fn start() -> Self {
        let base_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        Clock {
            start: Instant::now(),
            base_ms,
        }
    }

    pub fn now_ms(&self) -> u64 {
        self.base_ms + self.start.elapsed().as_millis() as u64
    }

    fn instant_of(&self, ms: u64) -> Instant {
        self.start + Duration::from_millis(ms.saturating_sub(self.base_ms))
    }
}

/// A cheap, cloneable way to talk to the node thread.
#[derive(Clone)]
pub struct NodeHandle {
    id: NodeId,
    commands: mpsc::Sender<Command>,
    peers: mpsc::Sender<PeerInput>,
    engine: Arc<dyn Engine>,
    fail_stop: Arc<FailStop>,
}

impl NodeHandle {
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The engine, for read-only work off the node thread (scans for DBSIZE, export).
    pub fn engine(&self) -> &Arc<dyn Engine> {
        &self.engine
    }

    /// The storage failure that stopped this node, if one did (`fail_stop.rs`).
    pub fn storage_failure(&self) -> Option<&str> {
        self.fail_stop.error()
    }

    pub async fn request(&self, request: ClientRequest) -> Result<ClientReply> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Client { request, reply })
            .await
            .map_err(|_| Error::ShuttingDown)?;
        answer.await.map_err(|_| Error::NoAnswer)
    }

    pub async fn status(&self) -> Result<NodeStatus> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Status { reply })
            .await
            .map_err(|_| Error::ShuttingDown)?;
        answer.await.map(|s| *s).map_err(|_| Error::ShuttingDown)
    }

    /// Hands a peer message over; `false` if the queue is full (the message is lost).
    pub fn deliver(&self, from: NodeId, message: PeerMessage) -> bool {
        self.peers
            .try_send(PeerInput {
                from,
                via: None,
                payload: PeerPayload::Message(message),
            })
            .is_ok()
    }

    /// Hands over a batch of messages from one peer, in order; `false` if the queue is
    /// full (the batch is lost).
    pub fn deliver_all(&self, from: NodeId, messages: Vec<PeerMessage>) -> bool {
        self.peers
            .try_send(PeerInput {
                from,
                via: None,
                payload: PeerPayload::Messages(messages),
            })
            .is_ok()
    }

    /// Hands over what peer `via` relayed for `from` (a message for this node, or a
    /// frame for a replica attached here). The node thread checks that `via` is the
    /// host `from`'s layout address names, in order with every message before it: a
    /// layout naming a new replica and that replica's first frames arrive on one link,
    /// so the check never races the layout. `false` if the queue is full.
    pub fn deliver_relayed(&self, via: NodeId, from: NodeId, payload: PeerPayload) -> bool {
        self.peers
            .try_send(PeerInput {
                from,
                via: Some(via),
                payload,
            })
            .is_ok()
    }

    pub async fn shutdown(&self) -> Result<()> {
        let (done, finished) = oneshot::channel();
        self.commands
            .send(Command::Shutdown { done })
            .await
            .map_err(|_| Error::ShuttingDown)?;
        match finished.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(reason)) => Err(Error::Connection(format!("flushing at shutdown: {reason}"))),
            Err(_) => Err(Error::ShuttingDown),
        }
    }
}

/// Starts the node thread.
pub fn spawn(
    node: Node,
    engine: Arc<dyn Engine>,
    commit: Arc<GroupCommit>,
    clock: Clock,
    outbound: impl Outbound,
    transport: TransportHooks,
    metrics: Arc<Metrics>,
) -> Result<(NodeHandle, std::thread::JoinHandle<()>)> {
    let (commands_tx, commands) = mpsc::channel(COMMAND_QUEUE_MAX);
    let (peers_tx, peers) = mpsc::channel(PEER_QUEUE_MAX);
    let handle = NodeHandle {
        id: node.id(),
        commands: commands_tx,
        peers: peers_tx,
        engine: engine.clone(),
        fail_stop: commit.fail_stop().clone(),
    };
    let committer = Committer::spawn(commit.clone(), outbound, metrics.clone())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(crate::error::io("starting the node thread's runtime"))?;
    let thread = std::thread::Builder::new()
        .name("ringkv-node".into())
        .spawn(move || {
            let mut host = Host {
                node,
                engine,
                fail_stop: commit.fail_stop().clone(),
                stopped: false,
                commit,
                clock,
                committer: Some(committer),
                transport,
                pending: HashMap::new(),
                held: Vec::new(),
                metrics,
                next_request: 0,
            };
            runtime.block_on(host.run(commands, peers));
        })
        .map_err(crate::error::io("starting the node thread"))?;
    Ok((handle, thread))
}

struct Host {
    node: Node,
    engine: Arc<dyn Engine>,
    /// The node's engine: durable writes of a turn are synced together before the
    /// turn's outputs are released (`group_commit`).
    commit: Arc<GroupCommit>,
    clock: Clock,
    /// Syncs each turn and releases its outputs (`committer.rs`); `None` once finished.
    committer: Option<Committer>,
    transport: TransportHooks,
    /// Client requests the node has not answered yet; bounded by the command queue and
    /// the node's own in-flight limit (it answers `Overloaded` beyond it).
    pending: HashMap<u64, Pending>,
    /// The node's storage failure state; once tripped the node is fed nothing more.
    fail_stop: Arc<FailStop>,
    /// The pending requests were answered after a storage failure (`stop`).
    stopped: bool,
    next_request: u64,
    /// Outputs of the current turn, released only after the turn's writes are durable.
    held: Vec<Output>,
    metrics: Arc<Metrics>,
}

struct Pending {
    reply: oneshot::Sender<ClientReply>,
    /// A get: if the node fails before answering, it changed nothing (`Unavailable`);
    /// anything else may have (`Indeterminate`).
    read_only: bool,
}

enum Flow {
    Continue,
    Stop,
}

impl Host {
    async fn run(
        &mut self,
        mut commands: mpsc::Receiver<Command>,
        mut peers: mpsc::Receiver<PeerInput>,
    ) {
        (self.transport.observe)(&self.node);
        loop {
            let idle = Instant::now() + Duration::from_secs(1);
            // A stopped node runs no timers: it only answers `Status` and `Shutdown`.
            let deadline = if self.stopped {
                idle
            } else {
                self.node
                    .poll_timeout()
                    .map(|ms| self.clock.instant_of(ms))
                    .unwrap_or(idle)
            };
            let fail_stop = self.fail_stop.clone();
            let flow = tokio::select! {
                command = commands.recv() => match command {
                    Some(command) => self.on_command(command),
                    None => Flow::Stop,
                },
                Some(input) = peers.recv() => {
                    self.on_peer(input);
                    Flow::Continue
                }
                _ = tokio::time::sleep_until(deadline.into()) => {
                    if !self.fail_stop.is_tripped() {
                        self.node.handle(self.clock.now_ms(), Input::Tick);
                    }
                    Flow::Continue
                }
                _ = fail_stop.wait(), if !self.stopped => Flow::Continue,
            };
            if let Flow::Stop = flow {
                return;
            }
            // Take what else is queued (bounded) before moving outputs.
            for _ in 0..DRAIN_BATCH_MAX {
                let mut took = false;
                if let Ok(command) = commands.try_recv() {
                    took = true;
                    if let Flow::Stop = self.on_command(command) {
                        return;
                    }
                }
                if let Ok(input) = peers.try_recv() {
                    took = true;
                    self.on_peer(input);
                }
                if !took {
                    break;
                }
                self.move_outputs();
            }
            self.move_outputs();
            (self.transport.observe)(&self.node);
            self.release();
            if self.fail_stop.is_tripped() && !self.stopped {
                self.stop();
            }
        }
    }

    /// Answers every request the node took and has not answered: its answer will never
    /// be released (the committer withholds every turn from now on).
    fn stop(&mut self) {
        self.stopped = true;
        for (_, pending) in self.pending.drain() {
            // The client may have gone; nothing to do then.
            let _ = pending
                .reply
                .send(ClientReply::Error(self.fail_stop.lost(pending.read_only)));
        }
    }

    fn on_peer(&mut self, input: PeerInput) {
        if self.fail_stop.is_tripped() {
            // Nothing it would answer may leave; relayed frames neither (the relay
            // speaks for this node too).
            self.metrics.inc(&self.metrics.peer_receives_dropped);
            return;
        }
        if let Some(via) = input.via {
            if !vouched(self.node.layout_history(), via, input.from) {
                tracing::warn!(%via, origin = %input.from, "relayed frame from a node that is not its host; dropped");
                self.metrics.inc(&self.metrics.peer_receives_dropped);
                return;
            }
        }
        match input.payload {
            PeerPayload::Message(message) => self.handle_peer(input.from, message),
            PeerPayload::Messages(messages) => {
                for message in messages {
                    self.handle_peer(input.from, message);
                }
            }
            PeerPayload::Forward { to, frame } => {
                if !(self.transport.forward)(to, input.from, frame) {
                    self.metrics.inc(&self.metrics.peer_receives_dropped);
                }
            }
        }
    }

    fn handle_peer(&mut self, from: NodeId, message: PeerMessage) {
        self.metrics.inc(&self.metrics.node_inputs);
        let now = self.clock.now_ms();
        self.node.handle(now, Input::Peer { from, message });
    }

    fn on_command(&mut self, command: Command) -> Flow {
        match command {
            Command::Client { request, reply } => {
                if self.fail_stop.is_tripped() {
                    // The client may have gone; nothing to do then.
                    let _ = reply.send(ClientReply::Error(self.fail_stop.refusal()));
                    return Flow::Continue;
                }
                self.metrics.inc(&self.metrics.node_inputs);
                self.next_request += 1;
                let id = self.next_request;
                let read_only = matches!(request, ClientRequest::Get { .. });
                self.pending.insert(id, Pending { reply, read_only });
                let now = self.clock.now_ms();
                self.node.handle(
                    now,
                    Input::Client {
                        id: RequestId(id),
                        request,
                    },
                );
                Flow::Continue
            }
            Command::Status { reply } => {
                // The receiver may be gone (client disconnected): nothing to do then.
                let _ = reply.send(Box::new(self.node.status()));
                Flow::Continue
            }
            Command::Shutdown { done } => {
                self.move_outputs();
                self.release();
                if let Some(committer) = self.committer.take() {
                    committer.finish();
                }
                let result = self.engine.flush().map_err(|e| e.to_string());
                let _ = done.send(result);
                Flow::Stop
            }
        }
    }

    /// Takes the node's outputs into the held list (bounded by the node's own output
    /// bound per call; released every turn).
    fn move_outputs(&mut self) {
        while let Some(output) = self.node.poll_output() {
            self.held.push(output);
        }
    }

    /// Hands the turn's outputs to the committer, which syncs the turn's writes (if
    /// any) and then delivers them, in turn order.
    fn release(&mut self) {
        if self.held.is_empty() && !self.commit.is_owed() {
            return;
        }
        self.metrics.inc(&self.metrics.node_turns);
        let mut turn = Turn {
            sync: self.commit.take_owed(),
            sends: Vec::new(),
            replies: Vec::new(),
        };
        for output in std::mem::take(&mut self.held) {
            match output {
                Output::Send { to, message } => turn.sends.push((to, message)),
                Output::Reply { id, reply } => {
                    if let Some(pending) = self.pending.remove(&id.0) {
                        turn.replies.push((pending.reply, reply));
                    }
                }
            }
        }
        if let Some(committer) = &self.committer {
            if !committer.submit(turn) {
                tracing::error!("the committer thread is gone; outputs dropped");
            }
        }
    }
}

/// Whether `via` (an authenticated native peer) may relay frames from `origin`: it is
/// `origin` itself; or `origin` is bound to an identity, which a host admits only with
/// its secret (so any host may relay for it: a replica re-homed after its host died
/// must be heard before its move is adopted everywhere); or it is the host that
/// `origin`'s address names in the newest layout that lists it.
fn vouched(history: &LayoutHistory, via: NodeId, origin: NodeId) -> bool {
    if via == origin {
        return true;
    }
    let spec = history
        .pending()
        .and_then(|layout| layout.node(origin))
        .or_else(|| history.committed().node(origin));
    spec.is_some_and(|spec| spec.identity.is_some() || relay_host(&spec.address) == Some(via))
}
