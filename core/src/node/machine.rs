//! [`Node`]: the sans-IO state machine a host drives.

use std::sync::Arc;

use crate::protocol::{
    ClientError, ClientReply, ClientRequest, Consistency, Oversized, PeerMessage, RequestId,
    SyncEntry, SyncPage,
};
use crate::rand::SplitMix64;
use crate::ring::{IdentityDigest, NodeId, NodeSpec, IDENTITY_SECRET_BYTES};
use crate::storage::Engine;

use super::ae::{AeCtx, AeSettings, AntiEntropy};
use super::config::NodeConfig;
use super::coordinator::{Coordinator, CoordinatorSettings, Ctx, ScanEnv};
use super::error::NodeError;
use super::eventual::{EvCtx, Eventual};
use super::gossip::{FailureDetector, GossipTimings};
use super::io::{Input, Output};
use super::membership::{Event, MCtx, Membership, MembershipSettings, Role};
use super::meta;
use super::mutations::{Mutation, Mutations};
use super::op::OpKind;
use super::outbox::Outbox;
use super::purge::{Purge, PurgeAction, PurgeCtx, PurgeSettings};
use super::replica;
use super::status::{MemberStatus, NodeCounters, NodeStatus};
use super::tags::{TagIssuer, TAG_LEASE_COUNTERS};

/// One cluster node: replica of its ring ranges, coordinator of the client requests it
/// receives, gossip member. Owns no clock, thread or socket: the host hands in time
/// (`now_ms`, this node's own clock, maybe skewed against other nodes'), inputs, and
/// moves outputs. Storage work runs inline through the [`Engine`].
pub struct Node {
    id: NodeId,
    /// This store's identity secret (`NodeSpec::identity` is its digest).
    secret: [u8; IDENTITY_SECRET_BYTES],
    incarnation: u64,
    config: NodeConfig,
    /// Layout history, Paxos, sync (node/membership/).
    membership: Membership,
    engine: Arc<dyn Engine>,
    rng: SplitMix64,
    /// Largest `now_ms` seen: time never runs backwards inside the node even if the
    /// host's clock does.
    now_ms: u64,
    detector: FailureDetector,
    coordinator: Coordinator,
    /// Eventual mode (`node/eventual/`): its own operations, keyspace and hints.
    eventual: Eventual,
    outbox: Outbox,
    counters: NodeCounters,
    last_storage_error: Option<String>,
    newest_layout_version_seen: u64,
    notes: Vec<String>,
    /// Merkle trees and exchanges (node/ae/).
    anti_entropy: AntiEntropy,
    /// The committed layout version the trees were built for.
    anti_entropy_layout_version: u64,
    /// Tombstone purge (node/purge/).
    purge: Purge,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.id)
            .field("incarnation", &self.incarnation)
            .field("now_ms", &self.now_ms)
            .field("in_flight", &self.coordinator.in_flight())
            .finish_non_exhaustive()
    }
}

impl Node {
    /// The id of the node that opened on `engine` before (kept in `m/identity` with its
    /// identity secret; it wins over `NodeConfig::id` in `open`), or `None` for a store
    /// no node opened yet. Lets a host whose store, not its configuration, decides the
    /// id (a relayed replica that asks the cluster for one) check before opening.
    pub fn stored_id(engine: &dyn Engine) -> Result<Option<NodeId>, NodeError> {
        meta::stored_id(engine)
    }

    /// Recovers identity, membership and data from `engine` (metadata keys under "m/";
    /// persisted identity and members win over `config`), then durably bumps the
    /// incarnation before anything else happens.
    pub fn open(
        config: NodeConfig,
        engine: Arc<dyn Engine>,
        rng_seed: u64,
        now_ms: u64,
    ) -> Result<Node, NodeError> {
        config.validate()?;
        let mut recovered = meta::recover(engine.as_ref(), &config, TAG_LEASE_COUNTERS, now_ms)?;
        let mutations = Mutations::of(&config);
        if !mutations.is_empty() {
            let names: Vec<&str> = mutations.iter().map(Mutation::name).collect();
            recovered.notes.push(format!(
                "TEST BUILD: deliberate bugs switched on: {}",
                names.join(", ")
            ));
        }
        // Mutation: forget the lease, so counters restart from the quorum's maximum.
        let tag_counter_floor = if mutations.has(Mutation::TagsWithoutLease) {
            0
        } else {
            recovered.tag_counter_floor
        };
        let mut rng = SplitMix64::new(rng_seed);
        let id = recovered.id;
        // Anti-entropy: completes the position index if needed, builds the trees.
        let anti_entropy = AntiEntropy::open(
            engine.as_ref(),
            recovered.history.committed(),
            id,
            recovered.incarnation,
            AeSettings {
                interval_ms: config.anti_entropy_interval_ms,
                concurrent_max: config.anti_entropy_concurrent_max,
                response_timeout_ms: config.resend_interval_ms(),
                key_size_bytes_max: config.key_size_bytes_max,
                state_size_bytes_max: config.eventual_state_size_bytes_max(),
                merkle: config.anti_entropy_merkle,
            },
            rng_seed,
            now_ms,
            &mut recovered.notes,
        )?;
        let detector = FailureDetector::new(
            id,
            recovered.incarnation,
            recovered.history.members(),
            GossipTimings {
                interval_ms: config.gossip_interval_ms,
                fanout: config.gossip_fanout,
                suspect_after_ms: config.suspect_after_ms,
                dead_after_ms: config.dead_after_ms,
            },
            now_ms,
            &mut rng,
        );
        let coordinator = Coordinator::new(
            id,
            recovered.incarnation,
            TagIssuer::new(tag_counter_floor, recovered.tag_counter_ceiling),
            CoordinatorSettings {
                request_timeout_ms: config.request_timeout_ms,
                resend_interval_ms: config.resend_interval_ms(),
                in_flight_requests_max: config.in_flight_requests_max,
            },
        )
        .with_mutations(mutations);
        let eventual = Eventual::open(id, recovered.incarnation, &config, engine.as_ref(), now_ms)?;
        let membership_committed_version = recovered.history.committed().version();
        let membership = Membership::new(
            id,
            IdentityDigest::of(&recovered.secret),
            recovered.history,
            recovered.paxos,
            recovered.sync_served,
            MembershipSettings {
                request_timeout_ms: config.request_timeout_ms,
                resend_interval_ms: config.resend_interval_ms(),
                change_timeout_ms: config.change_timeout_ms,
                mutations,
            },
            now_ms,
        );
        let purge = Purge::new(
            id,
            PurgeSettings {
                interval_ms: config.purge_interval_ms,
                resend_interval_ms: config.resend_interval_ms(),
                mutations,
            },
        );
        Ok(Node {
            id,
            secret: recovered.secret,
            incarnation: recovered.incarnation,
            eventual,
            outbox: Outbox::new(id, config.queued_sends_max),
            newest_layout_version_seen: membership.epoch(),
            membership,
            config,
            engine,
            rng,
            now_ms,
            detector,
            coordinator,
            counters: NodeCounters::default(),
            last_storage_error: None,
            notes: recovered.notes,
            anti_entropy_layout_version: membership_committed_version,
            anti_entropy,
            purge,
        })
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The spec this node asks to join a cluster with (`AdminRequest::Join`): its zone,
    /// capacity and process, `address`, and its store's identity.
    pub fn join_spec(&self, address: impl Into<String>) -> NodeSpec {
        let spec = NodeSpec::new(self.id.0, self.config.zone.clone(), self.config.capacity)
            .with_address(address)
            .with_identity(IdentityDigest::of(&self.secret));
        NodeSpec {
            process: self.config.process,
            ..spec
        }
    }

    /// This store's identity secret: shown only to prove the identity (a relay host at
    /// attach, `AdminRequest::Rehome`); never sent to peers.
    pub fn identity_secret(&self) -> &[u8; IDENTITY_SECRET_BYTES] {
        &self.secret
    }

    /// Feeds one input. Due timers (request deadlines, resends, gossip) run first, then
    /// the input, then every message this node sent itself, so all effects of the call
    /// are in the output queue when it returns.
    pub fn handle(&mut self, now_ms: u64, input: Input) {
        self.now_ms = self.now_ms.max(now_ms);
        self.run_timers();
        match input {
            Input::Peer { from, message } => self.on_peer(from, message),
            Input::Client { id, request } => self.on_client(id, request),
            Input::Tick => {}
        }
        while let Some(message) = self.outbox.pop_loopback() {
            self.on_peer(self.id, message);
        }
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.outbox.pop()
    }

    /// Absolute time (ms, this node's clock) at which the host must call
    /// `handle(now, Input::Tick)`: the earliest request deadline or resend, hint handoff
    /// round, anti-entropy round or response deadline, or the next gossip round. Always
    /// `Some` (gossip is periodic).
    pub fn poll_timeout(&self) -> Option<u64> {
        let gossip_ms = self.detector.next_round_ms();
        // A displaced store runs no eventual or anti-entropy timers (`run_timers`).
        let displaced = self.membership.role() == Role::Displaced;
        let others = [
            self.coordinator.next_timeout_ms(),
            self.eventual.next_timeout_ms().filter(|_| !displaced),
            self.anti_entropy.next_timeout_ms().filter(|_| !displaced),
            self.purge.next_timeout_ms().filter(|_| !displaced),
            self.membership.next_timeout_ms(),
        ];
        Some(others.into_iter().flatten().fold(gossip_ms, u64::min))
    }

    /// The layout history: committed layout, change in progress (members' addresses
    /// are in their `NodeSpec`s).
    pub fn layout_history(&self) -> &crate::ring::LayoutHistory {
        self.membership.history()
    }

    /// Every member of the committed and pending layouts with its liveness as this
    /// node sees it; cheap (no tree or storage access), for hosts that watch changes.
    pub fn member_states(&self) -> Vec<(NodeId, crate::node::MemberState)> {
        self.membership
            .history()
            .members()
            .into_iter()
            .map(|id| (id, self.detector.state(id, self.now_ms)))
            .collect()
    }

    pub fn status(&self) -> NodeStatus {
        let history = self.membership.history();
        let mut specs: std::collections::BTreeMap<NodeId, &crate::ring::NodeSpec> = history
            .committed()
            .nodes()
            .iter()
            .map(|(id, spec)| (*id, spec))
            .collect();
        if let Some(pending) = history.pending() {
            specs.extend(pending.nodes().iter().map(|(id, spec)| (*id, spec)));
        }
        let members = specs
            .values()
            .map(|spec| {
                let liveness = self.detector.liveness(spec.id);
                MemberStatus {
                    spec: (*spec).clone(),
                    state: self.detector.state(spec.id, self.now_ms),
                    incarnation: liveness.map_or(0, |l| l.incarnation),
                    heartbeat: liveness.map_or(0, |l| l.heartbeat),
                    quiet_ms: match liveness {
                        Some(l) if spec.id != self.id => self.now_ms.saturating_sub(l.rose_at_ms),
                        _ => 0,
                    },
                }
            })
            .collect();
        let mut counters = self.counters;
        counters.sends_dropped = self.outbox.sends_dropped();
        NodeStatus {
            id: self.id,
            incarnation: self.incarnation,
            now_ms: self.now_ms,
            layout: history.committed().clone(),
            membership: self.membership.status(self.now_ms),
            newest_layout_version_seen: self.newest_layout_version_seen,
            members,
            in_flight_requests: self.coordinator.in_flight() + self.eventual.in_flight(),
            queued_outputs: self.outbox.len(),
            counters,
            last_storage_error: self.last_storage_error.clone(),
            notes: self.notes.clone(),
            hint_queues: self.eventual.hint_queues(),
            anti_entropy: self.anti_entropy.status(),
            purge: self.purge.status(history),
        }
    }

    fn membership_ctx(&mut self) -> (&mut Membership, MCtx<'_>) {
        (
            &mut self.membership,
            MCtx {
                now_ms: self.now_ms,
                engine: self.engine.as_ref(),
                out: &mut self.outbox,
                detector: &self.detector,
            },
        )
    }

    /// Brings the other parts in line after the layout history changed: gossip
    /// members, Merkle trees (committed layout's ranges).
    fn after_membership(&mut self, result: Result<(), String>) {
        if let Err(error) = result {
            self.storage_failed(error);
        }
        if !self.membership.take_changed() {
            return;
        }
        let history = self.membership.history();
        self.newest_layout_version_seen = self.newest_layout_version_seen.max(history.epoch());
        self.detector.set_members(history.members(), self.now_ms);
        if self.anti_entropy_layout_version != history.committed().version() {
            self.anti_entropy_layout_version = history.committed().version();
            let committed = history.committed().clone();
            let result = self.anti_entropy.relayout(
                self.engine.as_ref(),
                &committed,
                self.now_ms,
                &mut self.notes,
            );
            if let Err(error) = result {
                self.storage_failed(error);
            }
        }
    }

    /// Runs a scan step of the coordinator with the layouts and liveness it needs.
    fn scan_step(&mut self, step: impl FnOnce(&mut Coordinator, &mut Ctx<'_>, &ScanEnv<'_>)) {
        let (detector, now_ms) = (&self.detector, self.now_ms);
        let believed_alive = |node: NodeId| detector.believed_alive(node, now_ms);
        let env = ScanEnv {
            history: self.membership.history(),
            believed_alive: &believed_alive,
        };
        let mut ctx = Ctx {
            now_ms,
            out: &mut self.outbox,
            engine: self.engine.as_ref(),
            counters: &mut self.counters,
        };
        step(&mut self.coordinator, &mut ctx, &env);
    }

    fn ctx(&mut self) -> (&mut Coordinator, Ctx<'_>) {
        (
            &mut self.coordinator,
            Ctx {
                now_ms: self.now_ms,
                out: &mut self.outbox,
                engine: self.engine.as_ref(),
                counters: &mut self.counters,
            },
        )
    }

    /// The eventual-mode module and what it acts on.
    fn eventual_ctx(&mut self) -> (&mut Eventual, EvCtx<'_>) {
        (
            &mut self.eventual,
            EvCtx {
                now_ms: self.now_ms,
                out: &mut self.outbox,
                engine: self.engine.as_ref(),
                counters: &mut self.counters,
                layout: self.membership.history().newest(),
                detector: &self.detector,
            },
        )
    }

    /// Moves the eventual copies changed by the last call into `eventual` to the
    /// anti-entropy trees (called after every such call, so none is missed).
    fn track_eventual_changes(&mut self) {
        for change in self.eventual.take_changes() {
            self.anti_entropy.on_eventual_applied(&change);
        }
    }

    fn run_timers(&mut self) {
        let (coordinator, mut ctx) = self.ctx();
        coordinator.on_timers(&mut ctx);
        // A displaced store hands off and repairs nothing as the member (`Role`).
        let displaced = self.membership.role() == Role::Displaced;
        let (eventual, mut ctx) = self.eventual_ctx();
        if let Err(error) = if displaced {
            Ok(())
        } else {
            eventual.on_timers(&mut ctx)
        } {
            self.storage_failed(error);
        }
        self.track_eventual_changes();
        let (membership, mut ctx) = self.membership_ctx();
        let result = membership.on_timers(&mut ctx);
        if let Err(error) = result {
            self.storage_failed(error);
        }
        if let Some(targets) = self.detector.round(self.now_ms, &mut self.rng) {
            self.counters.gossip_rounds += 1;
            let message = PeerMessage::Gossip {
                layout_version: self.membership.history().stamp(),
                members: self.detector.entries(),
            };
            for to in &targets {
                self.outbox.send(*to, message.clone());
            }
            let (membership, mut ctx) = self.membership_ctx();
            membership.on_gossip_round(&mut ctx, &targets);
        }
        // Anti-entropy after gossip, so peer choice uses the freshest liveness.
        if displaced {
            return;
        }
        let result = self.anti_entropy.on_timers(&mut AeCtx {
            now_ms: self.now_ms,
            engine: self.engine.as_ref(),
            out: &mut self.outbox,
            counters: &mut self.counters,
            detector: &self.detector,
            epoch: self.membership.epoch(),
            purge_floor: self.membership.history().committed().purge_floor(),
        });
        if let Err(error) = result {
            self.storage_failed(error);
        }
        let (purge, mut ctx) = self.purge_ctx();
        let result = purge.on_timers(&mut ctx);
        self.after_purge(result);
    }

    /// The purge module and what it acts on.
    fn purge_ctx(&mut self) -> (&mut Purge, PurgeCtx<'_>) {
        (
            &mut self.purge,
            PurgeCtx {
                now_ms: self.now_ms,
                engine: self.engine.as_ref(),
                out: &mut self.outbox,
                history: self.membership.history(),
                detector: &self.detector,
                anti_entropy: &mut self.anti_entropy,
            },
        )
    }

    fn after_purge(&mut self, result: Result<PurgeAction, String>) {
        match result {
            Ok(PurgeAction::Nothing) => {}
            Ok(PurgeAction::Propose) => {
                let (membership, mut ctx) = self.membership_ctx();
                membership.propose_purge(&mut ctx);
                self.after_membership(Ok(()));
            }
            Err(error) => self.storage_failed(error),
        }
    }

    fn on_client(&mut self, id: RequestId, request: ClientRequest) {
        self.counters.requests += 1;
        if let Err(error) = self.admit(&request) {
            self.counters.rejected += 1;
            self.outbox.reply(id, ClientReply::Error(error));
            return;
        }
        // One bound for both modes' operations (an eventual get stays in flight until
        // its read repair is done).
        if self.coordinator.in_flight() + self.eventual.in_flight()
            >= self.config.in_flight_requests_max
        {
            self.counters.overloaded += 1;
            self.outbox
                .reply(id, ClientReply::Error(ClientError::Overloaded));
            return;
        }
        match self.membership.role() {
            Role::Member => {}
            role => {
                self.counters.unavailable += 1;
                let reason = match role {
                    Role::Joining => {
                        "this node is not a member of a cluster yet (waiting to be added)".into()
                    }
                    Role::Displaced => super::membership::displaced_reason(self.id),
                    _ => "this node has left the cluster".into(),
                };
                let error = ClientError::Unavailable { reason };
                self.outbox.reply(id, ClientReply::Error(error));
                return;
            }
        }
        let (key, kind) = match request {
            ClientRequest::Update { key, update } => {
                self.coordinate(key, |coordinator, ctx, key, sets, epoch, alive| {
                    coordinator.start_update(ctx, id, key, update, sets, epoch, alive)
                });
                return;
            }
            ClientRequest::Scan { cursor, count } => {
                self.scan_step(|coordinator, ctx, env| {
                    coordinator.start_scan(ctx, env, id, cursor, count);
                });
                return;
            }
            ClientRequest::Admin(admin) => {
                let (membership, mut ctx) = self.membership_ctx();
                let result = membership.on_admin(&mut ctx, id, admin);
                self.after_membership(result);
                return;
            }
            ClientRequest::Get {
                key,
                consistency: Consistency::Linearizable,
            } => (key, OpKind::Get),
            ClientRequest::Put {
                key,
                value,
                consistency: Consistency::Linearizable,
            } => (key, OpKind::Put { value: Some(value) }),
            ClientRequest::Delete {
                key,
                consistency: Consistency::Linearizable,
            } => (key, OpKind::Put { value: None }),
            // Everything else is eventual mode: its own keyspace, messages and
            // operations (`node/eventual/`); the ABD state below is never touched.
            eventual => {
                let (module, mut ctx) = self.eventual_ctx();
                module.on_client(&mut ctx, id, eventual);
                self.track_eventual_changes();
                return;
            }
        };
        self.coordinate(key, |coordinator, ctx, key, sets, epoch, alive| {
            coordinator.start(ctx, id, key, kind, sets, epoch, alive)
        });
    }

    /// Runs `start` with the coordinator, the key's replica sets and layout epoch, and
    /// the failure detector's view of who is alive.
    fn coordinate(
        &mut self,
        key: Vec<u8>,
        start: impl FnOnce(
            &mut Coordinator,
            &mut Ctx<'_>,
            Vec<u8>,
            Vec<Vec<NodeId>>,
            u64,
            &dyn Fn(NodeId) -> bool,
        ),
    ) {
        let history = self.membership.history();
        let (sets, epoch) = (history.replica_sets(&key), history.epoch());
        let (detector, now_ms) = (&self.detector, self.now_ms);
        let (coordinator, mut ctx) = (
            &mut self.coordinator,
            Ctx {
                now_ms,
                out: &mut self.outbox,
                engine: self.engine.as_ref(),
                counters: &mut self.counters,
            },
        );
        start(coordinator, &mut ctx, key, sets, epoch, &|node| {
            detector.believed_alive(node, now_ms)
        });
    }

    /// Requests this node refuses outright (they never take effect). Eventual writes'
    /// contexts are checked by the eventual module.
    fn admit(&self, request: &ClientRequest) -> Result<(), ClientError> {
        check_size(
            Oversized::Key,
            request.key().len(),
            self.config.key_size_bytes_max,
        )?;
        if let Some(value) = request.value() {
            check_size(
                Oversized::Value,
                value.len(),
                self.config.value_size_bytes_max,
            )?;
        }
        Ok(())
    }

    fn on_peer(&mut self, from: NodeId, message: PeerMessage) {
        // Layout messages come from anyone (a joining node knows no members yet; a
        // node that missed a change must hear of it); the host authenticates peers.
        let message = match message {
            PeerMessage::Gossip {
                layout_version,
                members,
            } if !self.detector.is_member(from) => {
                let _ = members;
                let (membership, mut ctx) = self.membership_ctx();
                membership.on_gossip_stamp(&mut ctx, from, layout_version);
                self.after_membership(Ok(()));
                return;
            }
            PeerMessage::Layout(report) => {
                let (membership, mut ctx) = self.membership_ctx();
                let result = membership.learn_report(&mut ctx, from, *report);
                self.after_membership(result);
                return;
            }
            message @ (PeerMessage::LayoutPull { .. } | PeerMessage::SyncBehind { .. }) => {
                let (membership, mut ctx) = self.membership_ctx();
                let result = membership.on_message(&mut ctx, from, message).map(|_| ());
                self.after_membership(result);
                return;
            }
            message => message,
        };
        // A store that is not the member its id names answers nothing as that member.
        if self.membership.role() == Role::Displaced {
            self.counters.messages_ignored += 1;
            return;
        }
        // A former member hands off the hints it still holds (node/eventual/handoff.rs).
        let handoff = matches!(message, PeerMessage::EventualMerge { hint_for: None, .. });
        if (!self.detector.is_member(from) && !handoff) || !self.within_limits(&message) {
            self.counters.messages_ignored += 1;
            return;
        }
        if let Some((req, epoch)) = message.epoch() {
            let (membership, mut ctx) = self.membership_ctx();
            let admitted = membership.admit(&mut ctx, from, req, epoch);
            if !admitted {
                return;
            }
        }
        let engine = self.engine.as_ref();
        let purge_floor = self.membership.history().committed().purge_floor();
        let answer = match message {
            PeerMessage::ReadTag { req, key, .. } => replica::on_read_tag(engine, req, &key),
            PeerMessage::Read { req, key, .. } => replica::on_read(engine, req, &key),
            PeerMessage::Write {
                req,
                key,
                tag,
                value,
                ..
            } => replica::on_write(engine, req, &key, tag, value, purge_floor).map(
                |(ack, change)| {
                    self.counters.writes_applied += u64::from(change.is_some());
                    // Anti-entropy hook: the write moved this key's Merkle entry.
                    if let Some(change) = &change {
                        self.anti_entropy.on_applied(&key, change);
                    }
                    ack
                },
            ),
            PeerMessage::Gossip {
                layout_version,
                members,
            } => {
                let outcome = self.detector.merge(&members, self.now_ms);
                self.counters.messages_ignored += outcome.unknown as u64;
                self.newest_layout_version_seen = self
                    .newest_layout_version_seen
                    .max(layout_version.div_ceil(2));
                let (membership, mut ctx) = self.membership_ctx();
                membership.on_gossip_stamp(&mut ctx, from, layout_version);
                self.after_membership(Ok(()));
                return;
            }
            PeerMessage::Stale { req, history } => {
                let (membership, mut ctx) = self.membership_ctx();
                let report = crate::protocol::LayoutReport {
                    history: *history,
                    vote: None,
                };
                let result = membership.learn_report(&mut ctx, from, report);
                self.after_membership(result);
                let epoch = self.membership.history().epoch();
                let mut was_scan = false;
                self.scan_step(|coordinator, ctx, env| {
                    was_scan = coordinator.on_scan_stale(ctx, env, req, epoch);
                });
                if !was_scan {
                    let history = self.membership.history().clone();
                    let (coordinator, mut ctx) = self.ctx();
                    coordinator.on_stale(&mut ctx, req, history.epoch(), |key| {
                        history.replica_sets(key)
                    });
                }
                return;
            }
            message @ (PeerMessage::LayoutPrepare { .. }
            | PeerMessage::LayoutPromise { .. }
            | PeerMessage::LayoutAccept { .. }
            | PeerMessage::LayoutAccepted { .. }
            | PeerMessage::LayoutNack { .. }
            | PeerMessage::SyncPull { .. }
            | PeerMessage::SyncPage(_)) => {
                let (membership, mut ctx) = self.membership_ctx();
                let result = membership.on_message(&mut ctx, from, message);
                match result {
                    Ok(Event::Apply { from, page }) => {
                        if let Err(reason) = self.sync_page_within_limits(&page) {
                            self.membership.sync_refused(from, reason);
                            return;
                        }
                        let result = self.apply_sync_page(&page);
                        let result = match result {
                            Ok(()) => {
                                let (membership, mut ctx) = self.membership_ctx();
                                membership.page_applied(&mut ctx, from, &page)
                            }
                            Err(error) => Err(error),
                        };
                        self.after_membership(result);
                    }
                    Ok(Event::Nothing) => self.after_membership(Ok(())),
                    Err(error) => self.after_membership(Err(error)),
                }
                return;
            }
            // Handled above.
            PeerMessage::Layout(_)
            | PeerMessage::LayoutPull { .. }
            | PeerMessage::SyncBehind { .. } => {
                return;
            }
            // A host envelope that reached the node: not for it.
            PeerMessage::Relayed { .. } => {
                self.counters.messages_ignored += 1;
                return;
            }
            PeerMessage::ScanRange {
                req,
                from: first,
                to,
                limit,
                ..
            } => {
                if first > to {
                    self.counters.messages_ignored += 1;
                    return;
                }
                replica::on_scan_range(engine, req, first, to, limit)
            }
            reply @ PeerMessage::ScanRangeAck { .. } => {
                let (coordinator, mut ctx) = self.ctx();
                coordinator.on_scan_reply(&mut ctx, from, reply);
                return;
            }
            PeerMessage::Prepare {
                req, key, ballot, ..
            } => replica::on_prepare(engine, req, &key, ballot),
            PeerMessage::Accept {
                req,
                key,
                ballot,
                value,
                ..
            } => replica::on_accept(engine, req, &key, ballot, value).map(|(answer, change)| {
                self.counters.writes_applied += u64::from(change.is_some());
                if let Some(change) = &change {
                    self.anti_entropy.on_applied(&key, change);
                }
                answer
            }),
            reply @ (PeerMessage::ReadTagAck { .. }
            | PeerMessage::ReadAck { .. }
            | PeerMessage::WriteAck { .. }
            | PeerMessage::Promise { .. }
            | PeerMessage::Refused { .. }) => {
                let (coordinator, mut ctx) = self.ctx();
                coordinator.on_reply(&mut ctx, from, reply);
                return;
            }
            // Eventual mode: `e/`/`h/` keyspace and eventual operations only; none of
            // these messages touches a register or counts toward an ABD quorum.
            eventual @ (PeerMessage::EventualRead { .. }
            | PeerMessage::EventualReadAck { .. }
            | PeerMessage::EventualUpdate { .. }
            | PeerMessage::EventualUpdateAck { .. }
            | PeerMessage::EventualMerge { .. }
            | PeerMessage::EventualMergeAck { .. }
            | PeerMessage::EventualRefused { .. }) => {
                let (module, mut ctx) = self.eventual_ctx();
                if let Err(error) = module.on_peer(&mut ctx, from, eventual) {
                    self.storage_failed(error);
                }
                self.track_eventual_changes();
                return;
            }
            message @ (PeerMessage::PurgeCheck { .. }
            | PeerMessage::PurgeCheckReply { .. }
            | PeerMessage::PurgeReady { .. }) => {
                if let PeerMessage::PurgeCheck { epoch, .. } = &message {
                    let (membership, mut ctx) = self.membership_ctx();
                    membership.heard_epoch(&mut ctx, from, *epoch);
                }
                let (purge, mut ctx) = self.purge_ctx();
                let result = purge.on_message(&mut ctx, from, message);
                self.after_purge(result);
                return;
            }
            // Anti-entropy (node/ae/): root batches, exchanges, key pages, pushes.
            message @ (PeerMessage::AntiEntropy(_)
            | PeerMessage::AntiEntropyReply(_)
            | PeerMessage::AntiEntropyKeys(_)
            | PeerMessage::AntiEntropyKeysReply(_)
            | PeerMessage::AntiEntropyPush { .. }
            | PeerMessage::AntiEntropyPushEventual { .. }
            | PeerMessage::AntiEntropyRoots(_)
            | PeerMessage::AntiEntropyRootsReply(_)) => {
                let result = self.anti_entropy.on_message(
                    &mut AeCtx {
                        now_ms: self.now_ms,
                        engine,
                        out: &mut self.outbox,
                        counters: &mut self.counters,
                        detector: &self.detector,
                        epoch: self.membership.epoch(),
                        purge_floor: self.membership.history().committed().purge_floor(),
                    },
                    from,
                    message,
                );
                if let Err(error) = result {
                    self.storage_failed(error);
                }
                self.lift_fences();
                return;
            }
        };
        match answer {
            Ok(reply) => self.outbox.send(from, reply),
            Err(error) => self.storage_failed(error),
        }
    }

    /// A round with an empty batch on each key whose anti-entropy push a promise
    /// refused (`coordinator/update.rs`, "Consensus reads and repair").
    fn lift_fences(&mut self) {
        for key in self.anti_entropy.take_fenced() {
            let history = self.membership.history();
            let (sets, epoch) = (history.replica_sets(&key), history.epoch());
            let (coordinator, mut ctx) = self.ctx();
            coordinator.enqueue_update(&mut ctx, key, None, sets, epoch);
        }
    }

    /// Whether this node can hold every entry of a streamed page: a key or value over
    /// its limits (nodes configured with different limits) is refused, never skipped.
    fn sync_page_within_limits(&self, page: &SyncPage) -> Result<(), String> {
        let (key_max, value_max) = (
            self.config.key_size_bytes_max,
            self.config.value_size_bytes_max,
        );
        for entry in &page.entries {
            let (key, value) = match entry {
                SyncEntry::Register { key, value, .. } => (key, value.as_ref().map(Vec::len)),
                SyncEntry::Eventual { key, .. } => (key, None),
            };
            if key.len() > key_max {
                return Err(format!(
                    "a key of {} bytes exceeds this node's key limit ({key_max} bytes): \
                     members must share their size limits",
                    key.len()
                ));
            }
            if let Some(len) = value.filter(|len| *len > value_max) {
                return Err(format!(
                    "a value of {len} bytes exceeds this node's value limit ({value_max} \
                     bytes): members must share their size limits"
                ));
            }
        }
        Ok(())
    }

    /// Applies a page streamed during a layout change (within this node's limits:
    /// `sync_page_within_limits`): registers through the one register write path (by
    /// tag; Merkle trees follow), eventual states by merge.
    fn apply_sync_page(&mut self, page: &SyncPage) -> Result<(), String> {
        for entry in &page.entries {
            match entry {
                SyncEntry::Register { key, tag, value } => {
                    let change =
                        // `Keep`: a new owner must hold every register the old ones
                        // hold, promise or not (ARCHITECTURE.md, "Conditional writes").
                        replica::apply_register(
                            self.engine.as_ref(),
                            key,
                            *tag,
                            value.clone(),
                            replica::Promises::Keep,
                        )
                            .map_err(|error| error.to_string())?;
                    if let Some(change) = &change {
                        self.counters.writes_applied += 1;
                        self.anti_entropy.on_applied(key, change);
                    }
                }
                SyncEntry::Eventual { key, state } => {
                    let (eventual, mut ctx) = self.eventual_ctx();
                    let applied = eventual.apply_synced(&mut ctx, key, state);
                    self.track_eventual_changes();
                    applied.map_err(|error| error.to_string())?;
                }
            }
        }
        Ok(())
    }

    /// A replica message over this node's key or value limits is not served (the
    /// cluster's nodes are expected to share limits; this guards the engine).
    fn within_limits(&self, message: &PeerMessage) -> bool {
        let (key, value) = match message {
            PeerMessage::ReadTag { key, .. }
            | PeerMessage::Read { key, .. }
            | PeerMessage::Prepare { key, .. }
            | PeerMessage::AntiEntropyPushEventual { key, .. } => (key, None),
            PeerMessage::Write { key, value, .. }
            | PeerMessage::Accept { key, value, .. }
            | PeerMessage::AntiEntropyPush { key, value, .. } => (key, value.as_ref()),
            _ => return true,
        };
        key.len() <= self.config.key_size_bytes_max
            && value.is_none_or(|v| v.len() <= self.config.value_size_bytes_max)
    }

    /// Nothing is acknowledged for the failed message; the coordinator resends or
    /// gives up. The engine may refuse all work from now on (until reopened).
    fn storage_failed(&mut self, error: impl std::fmt::Display) {
        self.counters.storage_errors += 1;
        self.last_storage_error = Some(error.to_string());
    }
}

fn check_size(what: Oversized, size_bytes: usize, limit_bytes: usize) -> Result<(), ClientError> {
    if size_bytes > limit_bytes {
        return Err(ClientError::TooLarge {
            what,
            size_bytes: size_bytes as u64,
            limit_bytes: limit_bytes as u64,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
