//! The event loop: nodes, network, faults and clients around one event queue.
//!
//! Everything random comes from generators derived from the run's seed; nothing reads
//! a wall clock. The only time is `now`, the simulated millisecond of the event being
//! processed; each node sees it through its own [`Skew`].

use ringkv_core::rand::SplitMix64;

use super::api::{
    Change, Condition, Hardware, Input, Name, NodeIndex, Output, Reply, Request, RequestId,
    SimNode, Update,
};
use super::clock::Skew;
use super::config::SimConfig;
use super::error::SimError;
use super::faults::{schedule, Fault};
use super::layouts::LayoutBook;
use super::midsend::Armed;
#[cfg(test)]
use super::network::NetConfig;
use super::network::{Fate, Network};
use super::queue::EventQueue;
use super::scans::{is_scan_request, ScanWorkload};
use super::sets::{is_set_request, SetConfig, SetWorkload};
use super::trace::{pretty_debug, Scope, Trace};
use super::workload::{Workload, WorkloadConfig};
use crate::checker::show_bytes;

type Msg<H> = <<H as Hardware>::Node as SimNode>::Message;

enum Event<M> {
    Deliver {
        from: NodeIndex,
        to: NodeIndex,
        seq: u64,
        /// Trace scope, from the key the message is about (computed once, at send).
        scope: Scope,
        message: M,
    },
    Request {
        to: NodeIndex,
        id: RequestId,
        request: Request,
    },
    Reply {
        from: NodeIndex,
        id: RequestId,
        reply: Reply,
    },
    Tick {
        node: NodeIndex,
        generation: u64,
    },
    Fault(Fault),
    Resume(NodeIndex),
    /// Register client `n` may issue its next request.
    Wake(usize),
    /// Set client `n` may issue its next request.
    SetWake(usize),
    /// The scanner may ask for its next page (`scans.rs`).
    ScanWake,
    Deadline(RequestId),
}

struct Slot<N> {
    /// `None` while crashed.
    node: Option<N>,
    skew: Skew,
    paused_until: u64,
    /// When the pending `Tick` is due, and its generation (older ticks are stale).
    tick_at: Option<u64>,
    tick_generation: u64,
    /// Its disk was told to fail (`Fault::DiskFails`) since the last crash: the node is
    /// or may yet become fail-stopped, which only a crash and restart undo.
    disk_failed: bool,
    /// To crash in the middle of its next step that sends replica writes (`midsend.rs`).
    armed: Option<Armed>,
}

pub struct World<H: Hardware> {
    pub hw: H,
    pub config: SimConfig,
    pub now: u64,
    queue: EventQueue<Event<Msg<H>>>,
    slots: Vec<Slot<H::Node>>,
    pub network: Network,
    /// Network fates and client delays.
    rng: SplitMix64,
    /// Node seeds and crash-image seeds.
    rng_boot: SplitMix64,
    pub trace: Trace,
    pub workload: Workload,
    /// The eventual-mode set workload (no clients unless the hardware supports it).
    pub sets: SetWorkload,
    /// The scan mix's scanner (idle outside it).
    pub scans: ScanWorkload,
    faults_active: bool,
    events: u64,
    /// `(time, n)`: the n-th history stamp taken at `time`.
    last_stamp: (u64, u64),
    messages: u64,
    /// Membership changes asked for and not yet answered.
    admin: std::collections::BTreeMap<RequestId, Change>,
    /// Client requests not yet answered, by the node they went to (for
    /// `SimConfig::clients_see_crashes`).
    requests_at: std::collections::BTreeMap<RequestId, NodeIndex>,
    pub membership: MembershipCounts,
    /// Every layout version any node held, and conflicts (`layouts.rs`).
    pub layouts: LayoutBook,
    /// Machines lost for good (`Fault::LoseForever`): never booted again.
    lost: std::collections::BTreeSet<NodeIndex>,
    /// This seed loses the next joiner (`SimConfig::lose_joiner_every`); cleared once
    /// planned.
    lose_next_joiner: bool,
    /// Processes of two or more shards (`SimConfig::processes`; empty in every other
    /// mix), and how often one lost power as a whole.
    pub shard_processes: Vec<Vec<NodeIndex>>,
    pub process_crashes: u64,
    /// A process of several members is being lost for good: the operator asks for no
    /// other change until `settle_lost` removes them (`SimConfig::loses_process`).
    membership_held: bool,
}

/// What became of the membership changes the run asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MembershipCounts {
    pub asked: u64,
    /// Chosen (`Done`): the change then streams data and commits.
    pub chosen: u64,
    /// Refused or not chosen (`Unavailable` and the like).
    pub refused: u64,
    /// `Indeterminate`, or no answer.
    pub unknown: u64,
    /// Machines lost for good, and forced removals of them that were chosen.
    pub lost: u64,
    pub force_removed: u64,
    /// Changes that ended aborted (the most any node counted).
    pub aborted: u64,
}

/// Admin request ids: far above the workload's, so the two never collide.
const ADMIN_ID_BASE: RequestId = 1 << 62;

fn label(scope_key: Option<Vec<u8>>) -> Scope {
    scope_key.map_or(Scope::Other, Scope::Key)
}

impl<H: Hardware> World<H> {
    /// Boots every node at time 0 and schedules the faults and the clients.
    pub fn new(hw: H, config: SimConfig, seed: u64) -> Result<Self, SimError> {
        config.validate()?;
        if hw.nodes() < config.nodes {
            return Err(SimError::Config(format!(
                "hardware has {} nodes, config {}",
                hw.nodes(),
                config.nodes
            )));
        }
        let machines = hw.nodes();
        // Independent streams, so e.g. the fault schedule does not shift when a node
        // sends one more message.
        let mut master = SplitMix64::new(seed);
        let mut fork = || SplitMix64::new(master.next_u64());
        let (rng, rng_boot, mut rng_faults, rng_clients, mut rng_skew, rng_sets) =
            (fork(), fork(), fork(), fork(), fork(), fork());
        let set_config = if hw.supports_eventual() {
            config.sets
        } else {
            SetConfig {
                clients: 0,
                ..config.sets
            }
        };
        let (lo, hi) = config.skew_permille;
        let skews = Skew::draw(machines, lo, hi, &mut rng_skew);
        let mut world = World {
            network: Network::new(machines, config.net),
            workload: Workload::new(
                WorkloadConfig {
                    // The update mix only where the nodes serve updates
                    // (`SimConfig::updates_every`); other seeds keep their streams.
                    update_pct: if hw.supports_updates() && config.updated(seed) {
                        config.update_pct
                    } else {
                        0
                    },
                    ..config.workload
                },
                machines,
                rng_clients,
            ),
            sets: SetWorkload::new(set_config, machines, rng_sets),
            scans: ScanWorkload::new(hw.supports_scans() && config.scanned(seed), machines, seed),
            trace: Trace::new(config.trace_lines_max, config.trace_echo),
            slots: skews
                .into_iter()
                .map(|skew| Slot {
                    node: None,
                    skew,
                    paused_until: 0,
                    tick_at: None,
                    tick_generation: 0,
                    disk_failed: false,
                    armed: None,
                })
                .collect(),
            queue: EventQueue::default(),
            now: 0,
            rng,
            rng_boot,
            faults_active: true,
            events: 0,
            last_stamp: (0, 0),
            messages: 0,
            admin: std::collections::BTreeMap::new(),
            requests_at: std::collections::BTreeMap::new(),
            membership: MembershipCounts::default(),
            layouts: LayoutBook::default(),
            lost: std::collections::BTreeSet::new(),
            lose_next_joiner: config.loses_joiner(seed) || config.loses_process(seed),
            shard_processes: config
                .process_groups(machines)
                .into_iter()
                .filter(|p| p.len() > 1)
                .collect(),
            process_crashes: 0,
            membership_held: false,
            hw,
            config,
        };
        for (i, s) in world.slots.iter().enumerate() {
            let text = format!("{} timer rate {} per mille", Name(i), s.skew.permille());
            world.trace.record(0, Scope::Global, text);
        }
        for i in 0..machines {
            world.boot(i)?;
        }
        // Faults hit whole processes (every machine its own but in the shard mix).
        let processes = world.config.process_groups(machines);
        if processes.len() < machines {
            let shown: Vec<String> = processes
                .iter()
                .map(|p| {
                    let names: Vec<String> = p.iter().map(|&i| Name(i).to_string()).collect();
                    format!("{{{}}}", names.join(" "))
                })
                .collect();
            let text = format!("processes {}", shown.join(" "));
            world.trace.record(0, Scope::Global, text);
        }
        let faults = schedule(
            &processes,
            world.config.workload_ms,
            &world.config.faults,
            &mut rng_faults,
        );
        for (time, fault) in faults {
            world.queue.push(time, Event::Fault(fault));
        }
        for c in 0..world.config.workload.clients {
            let at = world.workload.think_ms();
            world.queue.push(at, Event::Wake(c));
        }
        for c in 0..world.sets.clients() {
            let at = world.sets.think_ms();
            world.queue.push(at, Event::SetWake(c));
        }
        if world.scans.enabled() {
            let at = world.scans.think_ms();
            world.queue.push(at, Event::ScanWake);
        }
        Ok(world)
    }

    pub fn node_count(&self) -> usize {
        self.slots.len()
    }

    /// A history timestamp: `now * 1000 + n` for the n-th stamp this millisecond, so
    /// stamps follow the processing order (real time) strictly, up to 1000 per ms.
    pub fn stamp(&mut self) -> u64 {
        let n = if self.last_stamp.0 == self.now {
            (self.last_stamp.1 + 1).min(999)
        } else {
            0
        };
        self.last_stamp = (self.now, n);
        self.now * 1000 + n
    }

    fn local(&self, i: NodeIndex) -> u64 {
        self.slots[i].skew.local(self.now)
    }

    fn record(&mut self, scope: Scope, text: String) {
        self.trace.record(self.now, scope, text);
    }

    pub fn boot(&mut self, i: NodeIndex) -> Result<(), SimError> {
        let seed = self.rng_boot.next_u64();
        let node = self.hw.boot(i, self.local(i), seed)?;
        self.slots[i].node = Some(node);
        self.record(Scope::Global, format!("{} boots", Name(i)));
        self.drain(i);
        Ok(())
    }

    pub fn crash(&mut self, i: NodeIndex) {
        if self.slots[i].node.is_none() {
            return;
        }
        let seed = self.rng_boot.next_u64();
        // Image the disk first: the node must not get to flush anything as it drops.
        self.hw.power_loss(i, seed);
        let slot = &mut self.slots[i];
        slot.node = None;
        slot.tick_at = None;
        slot.tick_generation += 1;
        slot.disk_failed = false;
        slot.armed = None;
        self.record(Scope::Global, format!("{} CRASHES (power loss)", Name(i)));
        if self.config.clients_see_crashes {
            self.break_connections(i);
        }
    }

    pub fn is_up(&self, i: NodeIndex) -> bool {
        self.slots[i].node.is_some()
    }

    /// Whether machine `i` was lost for good.
    pub fn is_lost(&self, i: NodeIndex) -> bool {
        self.lost.contains(&i)
    }

    /// Machines lost for good.
    pub fn lost(&self) -> Vec<NodeIndex> {
        self.lost.iter().copied().collect()
    }

    /// Ends all faults: heals the network, resumes paused nodes, power-cycles
    /// fail-stopped ones and boots crashed ones; faults still scheduled are skipped.
    pub fn heal(&mut self) -> Result<(), SimError> {
        self.faults_active = false;
        self.network.heal();
        self.record(Scope::Global, "HEAL: network healed, faults off".into());
        for i in 0..self.slots.len() {
            self.slots[i].armed = None;
            if self.slots[i].paused_until > self.now {
                self.slots[i].paused_until = self.now;
                self.record(Scope::Global, format!("{} resumes", Name(i)));
            }
            // A failed disk (tripped or still armed) would leave the node silent for
            // good: power-cycle it.
            if self.slots[i].disk_failed {
                self.crash(i);
            }
            if !self.is_up(i) && !self.is_lost(i) {
                self.boot(i)?;
            }
        }
        Ok(())
    }

    /// Hands `input` to node `i` and collects what it wants done.
    fn feed(&mut self, i: NodeIndex, input: Input<Msg<H>>) {
        let now = self.local(i);
        if let Some(node) = self.slots[i].node.as_mut() {
            node.handle(now, input);
            self.drain(i);
        }
    }

    fn drain(&mut self, i: NodeIndex) {
        self.observe_layouts(i);
        if let Some(armed) = self.slots[i].armed {
            self.drain_armed(i, armed);
            return;
        }
        while let Some(out) = self.slots[i].node.as_mut().and_then(SimNode::poll_output) {
            self.output(i, out, None);
        }
        self.reschedule_tick(i);
    }

    /// Tells the layout check what node `i` holds after its step, if that changed:
    /// before its outputs leave, so a conflict is caught even if a crash cuts them.
    fn observe_layouts(&mut self, i: NodeIndex) {
        let Some(seen) = self.slots[i].node.as_mut().and_then(SimNode::take_layouts) else {
            return;
        };
        for line in self.layouts.observe(i, self.now, seen) {
            self.record(Scope::Global, line);
        }
    }

    /// Sends or replies one output of node `i` (`scope`: already computed for a send).
    pub(super) fn output(&mut self, i: NodeIndex, out: Output<Msg<H>>, scope: Option<Scope>) {
        match out {
            Output::Send { to, message } => self.send(i, to, message, scope),
            Output::Reply { id, reply } => {
                let delay = self.client_delay();
                self.queue
                    .push(self.now + delay, Event::Reply { from: i, id, reply });
            }
        }
    }

    fn reschedule_tick(&mut self, i: NodeIndex) {
        let now = self.now;
        let slot = &mut self.slots[i];
        // A deadline at or before now is due: run it next millisecond, which also
        // guarantees progress if a node keeps asking for "now".
        let want = slot
            .node
            .as_ref()
            .and_then(SimNode::poll_timeout)
            .map(|local| slot.skew.global(local).max(now + 1));
        if want != slot.tick_at {
            slot.tick_generation += 1;
            slot.tick_at = want;
            if let Some(at) = want {
                let generation = slot.tick_generation;
                self.queue.push(
                    at,
                    Event::Tick {
                        node: i,
                        generation,
                    },
                );
            }
        }
    }

    fn client_delay(&mut self) -> u64 {
        let (lo, hi) = self.config.client_delay_ms;
        self.rng.range(lo, hi)
    }

    fn send(&mut self, from: NodeIndex, to: NodeIndex, message: Msg<H>, scope: Option<Scope>) {
        self.messages += 1;
        let seq = self.messages;
        let scope = scope.unwrap_or_else(|| label(self.hw.message_key(&message)));
        if to >= self.slots.len() {
            self.record(
                scope,
                format!(
                    "{} -> {} m{seq} DROPPED: no such node",
                    Name(from),
                    Name(to)
                ),
            );
            return;
        }
        // A node talking to itself does not use the network.
        let fate = if to == from {
            Fate::Delivered(0)
        } else {
            self.network.fate(&mut self.rng)
        };
        let how = match fate {
            Fate::Lost => "LOST".to_string(),
            Fate::Delivered(d) => format!("+{d}ms"),
            Fate::Duplicated(a, b) => format!("+{a}ms DUPLICATED +{b}ms"),
        };
        let text = format!(
            "{} -> {} m{seq} {how} {}",
            Name(from),
            Name(to),
            pretty_debug(&message)
        );
        self.record(scope.clone(), text);
        let deliver = |world: &mut Self, delay: u64, message: Msg<H>| {
            let event = Event::Deliver {
                from,
                to,
                seq,
                scope: scope.clone(),
                message,
            };
            world.queue.push(world.now + delay, event);
        };
        match fate {
            Fate::Lost => {}
            Fate::Delivered(d) => deliver(self, d, message),
            Fate::Duplicated(a, b) => {
                deliver(self, a, message.clone());
                deliver(self, b, message);
            }
        }
    }

    /// Schedules a client request to `node` and the client's deadline for it.
    pub fn submit(&mut self, node: NodeIndex, id: RequestId, request: Request) {
        let text = format!(
            "client -> {} req{id} {}",
            Name(node),
            show_request(&request)
        );
        self.record(Scope::Key(request.key().to_vec()), text);
        self.requests_at.insert(id, node);
        let delay = self.client_delay();
        let deadline = self.now + self.workload.config().client_timeout_ms;
        self.queue.push(
            self.now + delay,
            Event::Request {
                to: node,
                id,
                request,
            },
        );
        self.queue.push(deadline, Event::Deadline(id));
    }

    /// Processes events due up to `until`, then sets the clock to `until`.
    pub fn run_until(&mut self, until: u64) -> Result<(), SimError> {
        while self.queue.peek_time().is_some_and(|t| t <= until) {
            let Some((time, event)) = self.queue.pop() else {
                break;
            };
            self.now = time;
            self.events += 1;
            if self.events > self.config.events_max {
                return Err(SimError::EventBudget(self.config.events_max));
            }
            self.dispatch(event)?;
        }
        self.now = self.now.max(until);
        Ok(())
    }

    /// Whether `i` is paused; if so, `event` is put back to when it resumes.
    fn defer_if_paused(&mut self, i: NodeIndex, event: Event<Msg<H>>) -> Option<Event<Msg<H>>> {
        let until = self.slots[i].paused_until;
        if until > self.now {
            self.queue.push(until, event);
            return None;
        }
        Some(event)
    }

    fn dispatch(&mut self, event: Event<Msg<H>>) -> Result<(), SimError> {
        if let Event::Reply { id, .. } | Event::Deadline(id) = &event {
            self.requests_at.remove(id);
        }
        match event {
            Event::Deliver { to, .. }
            | Event::Request { to, .. }
            | Event::Tick { node: to, .. }
                if !self.is_up(to) =>
            {
                self.drop_at_down_node(to, event);
            }
            Event::Deliver { to, .. }
            | Event::Request { to, .. }
            | Event::Tick { node: to, .. } => {
                if let Some(event) = self.defer_if_paused(to, event) {
                    self.deliver(event);
                }
            }
            Event::Reply { from, id, reply } if self.admin.contains_key(&id) => {
                let change = self.admin.remove(&id);
                match reply {
                    Reply::Done => {
                        self.membership.chosen += 1;
                        if let (Some(Change::Join(joiner)), true) = (change, self.lose_next_joiner)
                        {
                            self.lose_chosen_joiner(joiner, id);
                        }
                        if matches!(change, Some(Change::ForceRemove(_))) {
                            self.membership.force_removed += 1;
                        }
                    }
                    Reply::Indeterminate => self.membership.unknown += 1,
                    _ => self.membership.refused += 1,
                }
                let text = format!(
                    "{} -> operator: {} {}",
                    Name(from),
                    change.map_or_else(String::new, |c| c.to_string()),
                    show_reply(&reply)
                );
                self.record(Scope::Global, text);
            }
            Event::Reply { from, id, reply } if is_scan_request(id) => {
                let stamp = self.stamp();
                let late = !self.scans.is_pending(id);
                let go_on = self.scans.reply(id, &reply, stamp);
                self.record_reply(from, id, &reply, None, late);
                if go_on {
                    let at = self.now + self.scans.think_ms();
                    self.queue.push(at, Event::ScanWake);
                }
            }
            Event::Reply { from, id, reply } if is_set_request(id) => {
                let key = self.sets.key_of(id);
                let late = key.is_none();
                let freed = self.sets.reply(id, &reply, self.now);
                self.record_reply(from, id, &reply, key, late);
                if let Some(client) = freed {
                    let at = self.now + self.sets.think_ms();
                    self.queue.push(at, Event::SetWake(client));
                }
            }
            Event::Reply { from, id, reply } => {
                let stamp = self.stamp();
                let key = self.workload.key_of(id);
                let freed = self.workload.reply(id, &reply, stamp);
                self.record_reply(from, id, &reply, key, freed.is_none());
                if let Some(client) = freed {
                    let at = self.now + self.workload.think_ms();
                    self.queue.push(at, Event::Wake(client));
                }
            }
            Event::Fault(fault) => self.apply(fault)?,
            Event::Resume(i) => {
                if self.slots[i].paused_until == self.now {
                    self.record(Scope::Global, format!("{} resumes", Name(i)));
                }
            }
            Event::Wake(client) => {
                if self.now < self.config.workload_ms {
                    let stamp = self.stamp();
                    if let Some((node, id, request)) = self.workload.next(client, stamp) {
                        self.submit(node, id, request);
                    }
                }
            }
            Event::SetWake(client) => {
                if self.now < self.config.workload_ms {
                    if let Some((node, id, request)) = self.sets.next(client, self.now) {
                        self.submit(node, id, request);
                    }
                }
            }
            Event::ScanWake => {
                if self.now < self.config.workload_ms {
                    let stamp = self.stamp();
                    if let Some((node, id, request)) = self.scans.next(stamp) {
                        self.submit(node, id, request);
                    }
                }
            }
            Event::Deadline(id) if is_scan_request(id) => {
                if self.scans.expire(id) {
                    self.record(label(None), format!("client gives up on req{id}: unknown"));
                    let at = self.now + self.scans.think_ms();
                    self.queue.push(at, Event::ScanWake);
                }
            }
            Event::Deadline(id) if is_set_request(id) => {
                let key = self.sets.key_of(id);
                let expired = self.sets.is_pending(id);
                if let Some(client) = self.sets.expire(id) {
                    let at = self.now + self.sets.think_ms();
                    self.queue.push(at, Event::SetWake(client));
                }
                if expired {
                    self.record(label(key), format!("client gives up on req{id}: unknown"));
                }
            }
            Event::Deadline(id) => {
                let key = self.workload.key_of(id);
                if let Some(client) = self.workload.expire(id) {
                    self.record(label(key), format!("client gives up on req{id}: unknown"));
                    let at = self.now + self.workload.think_ms();
                    self.queue.push(at, Event::Wake(client));
                }
            }
        }
        Ok(())
    }

    /// Traces a client reply under its key's scope.
    fn record_reply(
        &mut self,
        from: NodeIndex,
        id: RequestId,
        reply: &Reply,
        key: Option<Vec<u8>>,
        late: bool,
    ) {
        let late = if late { " (late, ignored)" } else { "" };
        let text = format!(
            "{} -> client req{id} {}{late}",
            Name(from),
            show_reply(reply)
        );
        self.record(label(key), text);
    }

    fn drop_at_down_node(&mut self, to: NodeIndex, event: Event<Msg<H>>) {
        match event {
            Event::Deliver {
                from, seq, scope, ..
            } => {
                self.record(
                    scope,
                    format!(
                        "{} -> {} m{seq} DROPPED: {} is down",
                        Name(from),
                        Name(to),
                        Name(to)
                    ),
                );
            }
            Event::Request { id, request, .. } => {
                let scope = Scope::Key(request.key().to_vec());
                self.record(scope, format!("req{id} DROPPED: {} is down", Name(to)));
                if self.config.clients_see_crashes {
                    self.connection_lost(to, id, false);
                }
            }
            _ => {}
        }
    }

    /// `event` reaches an up, running node.
    fn deliver(&mut self, event: Event<Msg<H>>) {
        match event {
            Event::Deliver {
                from,
                to,
                seq,
                scope,
                message,
            } => {
                if self.network.connected(from, to) {
                    self.record(scope, format!("{} <- {} m{seq}", Name(to), Name(from)));
                    self.feed(to, Input::Peer { from, message });
                } else {
                    self.record(
                        scope,
                        format!("{} -> {} m{seq} DROPPED: partition", Name(from), Name(to)),
                    );
                }
            }
            Event::Request { to, id, request } => {
                let scope = Scope::Key(request.key().to_vec());
                self.record(scope, format!("{} <- client req{id}", Name(to)));
                self.feed(to, Input::Client { id, request });
            }
            // A stale tick (rescheduled since, or from before a crash) is ignored.
            Event::Tick { node, generation } if self.slots[node].tick_generation == generation => {
                self.slots[node].tick_at = None;
                self.record(Scope::Other, format!("{} tick", Name(node)));
                self.feed(node, Input::Tick);
            }
            _ => {}
        }
    }

    fn apply(&mut self, fault: Fault) -> Result<(), SimError> {
        if !self.faults_active {
            return Ok(());
        }
        self.record(Scope::Global, format!("FAULT {fault}"));
        match fault {
            Fault::Partition(p) => self.network.apply(&p),
            Fault::Heal => self.network.heal(),
            Fault::Crash(i) if i < self.slots.len() => {
                // A process's shards crash at one instant, its first shard first.
                if self.shard_processes.iter().any(|p| p.first() == Some(&i)) {
                    self.process_crashes += 1;
                }
                self.crash(i)
            }
            Fault::Restart(i) if i < self.slots.len() && !self.is_up(i) && !self.is_lost(i) => {
                self.boot(i)?
            }
            Fault::LoseForever(i) if i < self.slots.len() => {
                self.crash(i);
                self.lost.insert(i);
                self.membership.lost += 1;
                self.record(Scope::Global, format!("{} is lost for good", Name(i)));
            }
            Fault::DiskFails(i) if i < self.slots.len() && self.is_up(i) => {
                self.slots[i].disk_failed = true;
                self.hw.fail_disk(i);
            }
            Fault::Pause { node, ms } if node < self.slots.len() => {
                let until = (self.now + ms).max(self.slots[node].paused_until);
                self.slots[node].paused_until = until;
                self.queue.push(until, Event::Resume(node));
            }
            Fault::Membership { choice } => self.change_membership(choice),
            Fault::CrashMidSend {
                node,
                downtime_ms,
                choice,
            } if node < self.slots.len() && self.is_up(node) => {
                self.slots[node].armed = Some(Armed {
                    downtime_ms,
                    choice,
                });
            }
            Fault::Crash(_)
            | Fault::LoseForever(_)
            | Fault::Restart(_)
            | Fault::DiskFails(_)
            | Fault::Pause { .. }
            | Fault::CrashMidSend { .. } => {}
        }
        Ok(())
    }

    /// Asks `FaultConfig::membership_racers` members at once for a membership change
    /// each: the first picked with `choice`, the others with numbers drawn from it (so
    /// the rest of the run's randomness does not shift).
    fn change_membership(&mut self, choice: u64) {
        let mut choices = SplitMix64::new(choice);
        self.ask_change(choice);
        for _ in 1..self.config.faults.membership_racers {
            self.ask_change(choices.next_u64());
        }
    }

    /// Asks a member for a membership change, if the hardware has one to make now.
    fn ask_change(&mut self, choice: u64) {
        if self.membership_held {
            let text = "no membership change: a lost process's members are removed first";
            self.record(Scope::Global, text.into());
            return;
        }
        let nodes: Vec<Option<&H::Node>> = self.slots.iter().map(|s| s.node.as_ref()).collect();
        let Some((to, change)) = self.hw.plan_change(&nodes, choice) else {
            self.record(Scope::Global, "no membership change possible now".into());
            return;
        };
        self.request_change(to, change);
    }

    /// A join was chosen in a seed that loses its joiner: the machine (in the shard mix,
    /// its process) is lost for good soon, as often during its sync (within 100 ms) as
    /// after it (up to 1.5 s).
    fn lose_chosen_joiner(&mut self, joiner: NodeIndex, id: RequestId) {
        self.lose_next_joiner = false;
        let h = SplitMix64::new(id ^ self.config.lose_joiner_every).next_u64();
        let delay_ms = if h & (1 << 40) == 0 {
            h % 100
        } else {
            h % 1_500
        };
        let at = self.now + delay_ms;
        // In the shard mix the joiner's whole process goes, every shard at once
        // (members and spares alike); elsewhere it is the joiner alone.
        let process = self
            .shard_processes
            .iter()
            .find(|p| p.contains(&joiner))
            .cloned()
            .unwrap_or_else(|| vec![joiner]);
        if process.len() > 1 {
            self.membership_held = true;
        }
        for machine in process {
            self.queue
                .push(at, Event::Fault(Fault::LoseForever(machine)));
        }
    }

    /// Asks member `to` for `change` (its answer is counted in `membership`).
    pub fn request_change(&mut self, to: NodeIndex, change: Change) {
        self.membership.asked += 1;
        let id = ADMIN_ID_BASE + self.membership.asked;
        self.admin.insert(id, change);
        self.record(Scope::Global, format!("operator -> {} {change}", Name(to)));
        if self.slots[to].paused_until <= self.now {
            self.feed(to, Input::Admin { id, change });
        }
    }

    /// Unanswered membership changes count as unknown (call at the end of a run).
    pub fn finish_membership(&mut self) {
        self.membership.unknown += self.admin.len() as u64;
        self.admin.clear();
    }

    /// Which nodes must agree on `key` (see [`Hardware::holders`]).
    pub fn holders(&self, key: &[u8]) -> super::api::Holders {
        let nodes: Vec<Option<&H::Node>> = self.slots.iter().map(|s| s.node.as_ref()).collect();
        self.hw.holders(&nodes, key)
    }

    pub fn events(&self) -> u64 {
        self.events
    }

    /// Node `i`, if it is up.
    pub fn node(&self, i: NodeIndex) -> Option<&H::Node> {
        self.slots[i].node.as_ref()
    }

    /// Whether a client request of either workload is in flight.
    pub fn clients_pending(&self) -> bool {
        self.workload.has_pending() || self.sets.has_pending() || self.scans.has_pending()
    }
}

fn show_request(r: &Request) -> String {
    match r {
        Request::Get { key } => format!("get {}", show_bytes(key)),
        Request::Put { key, value } => {
            format!("put {} = {}", show_bytes(key), show_bytes(value))
        }
        Request::Delete { key } => format!("delete {}", show_bytes(key)),
        Request::GetEventual { key } => format!("get {} (eventual)", show_bytes(key)),
        Request::PutEventual {
            key,
            value,
            context,
        } => format!(
            "put {} = {} (eventual, {})",
            show_bytes(key),
            show_bytes(value),
            if context.is_some() {
                "with context"
            } else {
                "blind"
            }
        ),
        Request::Scan { cursor, count } => format!("scan from {cursor} count {count}"),
        Request::Update { key, update } => {
            format!("update {} {}", show_bytes(key), show_update(update))
        }
    }
}

fn show_update(update: &Update) -> String {
    match update {
        Update::Add { delta } => format!("add {delta}"),
        Update::Set { condition, value } => {
            let what = value
                .as_deref()
                .map_or("delete".to_string(), |v| format!("set {}", show_bytes(v)));
            match condition {
                Condition::Always => what,
                Condition::Absent => format!("{what} if absent"),
                Condition::Present => format!("{what} if present"),
                Condition::Equals(e) => format!("{what} if {}", show_bytes(e)),
            }
        }
    }
}

fn show_reply(r: &Reply) -> String {
    match r {
        Reply::Value(Some(v)) => format!("value {}", show_bytes(v)),
        Reply::Value(None) => "value absent".to_string(),
        Reply::Siblings { values, .. } => {
            let shown: Vec<String> = values
                .iter()
                .map(|v| v.as_deref().map_or("tombstone".to_string(), show_bytes))
                .collect();
            format!("siblings [{}]", shown.join(", "))
        }
        Reply::Keys { keys, cursor } => {
            let shown: Vec<String> = keys.iter().map(|k| show_bytes(k)).collect();
            format!("keys [{}] next {cursor}", shown.join(", "))
        }
        Reply::Updated {
            applied,
            previous,
            current,
        } => {
            let show = |v: &Option<Vec<u8>>| v.as_deref().map_or("absent".to_string(), show_bytes);
            format!(
                "updated ({}) {} -> {}",
                if *applied { "applied" } else { "not applied" },
                show(previous),
                show(current)
            )
        }
        other => format!("{other:?}"),
    }
}

// Crashes mid-send and the connections they break (`midsend.rs`,
// `SimConfig::clients_see_crashes`).
#[path = "world_crashes.rs"]
mod crashes;

#[cfg(test)]
#[path = "world_tests.rs"]
mod tests;
