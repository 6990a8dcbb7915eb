//! Node-to-node messages.
//!
//! Every data message carries the [`OpId`] of the coordinator operation it belongs to;
//! replies echo it, and a coordinator drops replies whose operation is no longer in
//! flight (late, duplicated or from a previous incarnation). Replicas keep no per-request
//! state, so any message may be lost, duplicated or reordered and simply resent.

use serde::{Deserialize, Serialize};

use crate::antientropy::{ExchangeRequest, ExchangeResponse, RootBatch, RootBatchReply};
use crate::ring::{LayoutHistory, NodeId, RingLayout};
use crate::versioning::{Siblings, Tag, VersionVector};

/// The state of one eventual-mode key: concurrent values (`None` = a delete's
/// tombstone) with their dots, plus everything seen (`versioning::dvv`).
pub type SiblingState = Siblings<Option<Vec<u8>>>;

/// Why a replica refused an eventual-mode message (it wrote nothing for it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventualRefusal {
    /// Storing the write needs a new hint and this node already holds its maximum.
    HintsFull { hints_queued_max: u64 },
    /// The key's sibling state would encode larger than a message may carry.
    TooLarge { size_bytes: u64, limit_bytes: u64 },
    /// The write's context names a counter of this node at `u64::MAX` (forged).
    CounterExhausted,
}

use super::antientropy::{KeyPage, KeyPageReply};
use super::membership::{Ballot, LayoutReport, SyncCursor, SyncPage};

/// Identifies one coordinator operation cluster-wide.
///
/// Invariant: never reused, also across crashes. `seq` restarts at 0 on every open, so
/// `incarnation` (persisted and bumped durably on every open) keeps a reply that was
/// delayed across a restart from matching a new operation with the same `seq`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct OpId {
    pub coordinator: NodeId,
    pub incarnation: u64,
    pub seq: u64,
}

impl std::fmt::Display for OpId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.coordinator, self.incarnation, self.seq)
    }
}

/// One member's liveness evidence as a gossiping node knows it. Ordered by
/// `(incarnation, heartbeat)`: a restarted node starts a new incarnation with heartbeat
/// 0, which still counts as newer than anything from its previous life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GossipEntry {
    pub id: NodeId,
    pub incarnation: u64,
    pub heartbeat: u64,
}

impl GossipEntry {
    /// The comparison key: larger means more recent.
    pub fn version(&self) -> (u64, u64) {
        (self.incarnation, self.heartbeat)
    }
}

/// Everything one node sends another. Variant order is part of the wire format (postcard
/// encodes the variant index): append new variants at the end, never reorder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerMessage {
    /// ABD write, phase 1: "what is your tag for `key`?" Answered by [`PeerMessage::ReadTagAck`].
    /// `epoch`: the coordinator's layout epoch (`LayoutHistory::epoch`); a replica that
    /// knows a newer one answers [`PeerMessage::Stale`] instead (so do `Read`, `Write`).
    ReadTag {
        req: OpId,
        epoch: u64,
        key: Vec<u8>,
    },
    /// The replica's current tag for the key ([`Tag::ZERO`] if it never stored one).
    ReadTagAck {
        req: OpId,
        tag: Tag,
    },
    /// ABD read, phase 1: "what is your tag and value for `key`?"
    Read {
        req: OpId,
        epoch: u64,
        key: Vec<u8>,
    },
    /// The replica's current tag and value (`None`: absent or deleted).
    ReadAck {
        req: OpId,
        tag: Tag,
        value: Option<Vec<u8>>,
    },
    /// ABD phase 2 (a put, a delete with `value: None`, or a read's write-back): store
    /// `value` under `tag` if `tag` is greater than the stored tag, durably.
    Write {
        req: OpId,
        epoch: u64,
        key: Vec<u8>,
        tag: Tag,
        value: Option<Vec<u8>>,
    },
    /// Sent only once the replica durably holds a tag at least as large as the write's.
    WriteAck {
        req: OpId,
    },
    /// The sender's member table. `layout_version` is its layout history's stamp
    /// (`LayoutHistory::stamp`: 2 × committed version, + 1 while a change is pending):
    /// a receiver with a newer history sends it, one with an older one pulls.
    Gossip {
        layout_version: u64,
        members: Vec<GossipEntry>,
    },
    // ---- Eventual mode (`node/eventual/`). A separate keyspace (`e/`, `h/`): none of
    // these messages reads or writes a linearizable register, and their answers never
    // count toward an ABD quorum.
    /// Eventual get: "what is your sibling state for `key`?"
    EventualRead {
        req: OpId,
        key: Vec<u8>,
    },
    /// The replica's sibling state (empty if it holds none).
    EventualReadAck {
        req: OpId,
        state: SiblingState,
    },
    /// Eventual put/delete at its dot issuer (a node of the key's sloppy quorum): apply
    /// `Siblings::update(context, issuer, value)` to your own durable copy. If
    /// `hint_for` names another node, you stand in for it: keep a durable hint for it in
    /// the same engine batch. Idempotent per `req` (resends are answered from the
    /// stored state, not applied twice).
    EventualUpdate {
        req: OpId,
        key: Vec<u8>,
        context: VersionVector,
        value: Option<Vec<u8>>,
        hint_for: Option<NodeId>,
    },
    /// Sent once the issuer durably holds the update; `state` is its resulting state.
    EventualUpdateAck {
        req: OpId,
        state: SiblingState,
    },
    /// Merge `state` into your copy durably (a put's replication, read repair, hinted
    /// handoff); with `hint_for`, also keep a hint for that node. Idempotent.
    EventualMerge {
        req: OpId,
        key: Vec<u8>,
        state: SiblingState,
        hint_for: Option<NodeId>,
    },
    /// Sent once the replica durably holds a state that includes the merged one.
    EventualMergeAck {
        req: OpId,
    },
    /// The replica refused an `EventualUpdate` or `EventualMerge` and wrote nothing.
    EventualRefused {
        req: OpId,
        reason: EventualRefusal,
    },
    // ---- Anti-entropy (node/ae/; appended: variant order is wire format) ----
    /// Merkle exchange, initiator → responder (a co-replica of the request's range).
    AntiEntropy(ExchangeRequest),
    /// Merkle exchange, responder → initiator.
    AntiEntropyReply(ExchangeResponse),
    /// Repair: the initiator's `(key, version)` entries of one page of a differing span.
    AntiEntropyKeys(KeyPage),
    /// Repair: how far the page was compared and which of its keys the responder wants.
    AntiEntropyKeysReply(KeyPageReply),
    /// Repair: a register the sender durably holds and the receiver lacks or holds
    /// older. Applied with `Write` semantics (iff `tag` is greater), never acknowledged:
    /// a lost push is found again by the next exchange. `epoch`: the sender's layout
    /// epoch when it sent the push; a receiver that knows a newer one drops it (a push
    /// sent before a purge change could otherwise bring back a purged key's older value).
    AntiEntropyPush {
        epoch: u64,
        key: Vec<u8>,
        tag: Tag,
        value: Option<Vec<u8>>,
    },
    /// Sweep, initiator → co-replica: up to 256 `(range, depth, root)` of ranges the
    /// two share; answered by `AntiEntropyRootsReply`. Only differing ranges go on to
    /// an `AntiEntropy` descent.
    AntiEntropyRoots(RootBatch),
    /// Sweep, responder → initiator: which of the batch's roots differ or are unknown.
    AntiEntropyRootsReply(RootBatchReply),
    // ---- Membership (node/membership/; appended) ----
    /// A replica refused a data message of an older epoch; `history` is its own, newer.
    Stale {
        req: OpId,
        history: Box<LayoutHistory>,
    },
    /// The sender's layout history and Paxos vote (on a newer epoch seen, a pull, or
    /// while a change is in progress, so sync progress spreads).
    Layout(Box<LayoutReport>),
    /// "Send me your layout history": the sender saw a newer epoch than its own.
    LayoutPull {
        epoch: u64,
    },
    /// Paxos phase 1 for layout `version`, to the members of layout `version - 1`.
    LayoutPrepare {
        version: u64,
        ballot: Ballot,
    },
    /// The acceptor promises to ignore lower ballots; `accepted`: what it accepted before.
    LayoutPromise {
        version: u64,
        ballot: Ballot,
        accepted: Option<(Ballot, RingLayout)>,
    },
    /// Paxos phase 2: "accept `layout` as version `version`".
    LayoutAccept {
        version: u64,
        ballot: Ballot,
        layout: RingLayout,
    },
    LayoutAccepted {
        version: u64,
        ballot: Ballot,
    },
    /// The acceptor promised a higher ballot already.
    LayoutNack {
        version: u64,
        ballot: Ballot,
        promised: Ballot,
    },
    /// Sync: "send me the next page of what I gain from you in change `epoch`".
    SyncPull {
        epoch: u64,
        cursor: Option<SyncCursor>,
    },
    SyncPage(SyncPage),
    /// The source does not know change `epoch` yet (its epoch is `source_epoch`).
    SyncBehind {
        epoch: u64,
        source_epoch: u64,
    },
    /// Host level, never produced or consumed by a `Node`: a frame (`codec::encode` of a
    /// message) between `from` and `to` carried through a host that relays for a node
    /// without a listener of its own (a browser replica attached to it).
    Relayed {
        from: NodeId,
        to: NodeId,
        frame: Vec<u8>,
    },
    /// Anti-entropy over eventual keys (`antientropy::KeyPage` with `eventual`), sent
    /// for a key whose states differ: merged into the receiver's copy (merges commute
    /// and are idempotent), never acknowledged: a lost push is found again by the next
    /// exchange.
    AntiEntropyPushEventual {
        key: Vec<u8>,
        state: SiblingState,
    },
    /// Tombstone purge (`node/purge/`), checker → co-replica: "do you hold each of these
    /// registers at this tag or newer?" Sent at layout epoch `epoch`; a receiver at an
    /// older epoch does not answer (it pulls the layout; the checker resends).
    /// At most [`PURGE_CHECK_ENTRIES_MAX`] entries.
    PurgeCheck {
        epoch: u64,
        seq: u64,
        entries: Vec<(Vec<u8>, Tag)>,
    },
    /// The offsets of the check's entries the replier does not hold at the tag or newer
    /// (nor purged: absent with the tag at or below its purge floor).
    PurgeCheckReply {
        epoch: u64,
        seq: u64,
        missing: Vec<u32>,
    },
    /// The sender checked, at layout epoch `epoch`, that every co-replica holds every
    /// register tombstone it holds that was written before `epoch`; `tombstones`: how
    /// many tombstones it holds in all. A purge change for `epoch` needs this from
    /// every member, and is made only if some member holds a tombstone.
    PurgeReady {
        epoch: u64,
        tombstones: u64,
    },
    /// A SCAN page (`node/coordinator/scan.rs`), coordinator → a replica of the arc
    /// `from ..= to`: "your registers at those ring positions, in position order, at
    /// most `limit` (more only to finish the last position)". Sent at layout epoch
    /// `epoch` (a replica that knows a newer one answers [`PeerMessage::Stale`]).
    ScanRange {
        req: OpId,
        epoch: u64,
        from: u64,
        to: u64,
        limit: u32,
    },
    /// The replica's entries; `complete`: they reach `to`. Otherwise they end with
    /// every key of their last position.
    ScanRangeAck {
        req: OpId,
        entries: Vec<ScanEntry>,
        complete: bool,
    },
    // ---- Conditional writes (`node/coordinator/update.rs`): one CASPaxos round per
    // update, with register tags as ballots (ARCHITECTURE.md, "Conditional writes").
    /// Phase 1: "refuse every store of `key` below `ballot` from now on, and send your
    /// register". Answered by [`PeerMessage::Promise`] or [`PeerMessage::Refused`].
    Prepare {
        req: OpId,
        epoch: u64,
        key: Vec<u8>,
        ballot: Tag,
    },
    /// The replica durably promised the ballot; its register.
    Promise {
        req: OpId,
        tag: Tag,
        value: Option<Vec<u8>>,
    },
    /// Phase 2: store `(ballot, value)` iff `ballot` is above the stored tag and not
    /// below the promise. Answered by [`PeerMessage::WriteAck`] once stored (or if the
    /// replica already holds exactly `ballot`), else [`PeerMessage::Refused`]. Unlike
    /// `Write`, a larger stored tag is a refusal: an accept must not be acknowledged by
    /// a replica where a later round may have replaced the value it was computed from.
    Accept {
        req: OpId,
        epoch: u64,
        key: Vec<u8>,
        ballot: Tag,
        value: Option<Vec<u8>>,
    },
    /// A `Prepare`, `Accept` or `Write` the replica will not take, because of its
    /// promise or stored tag; `above`: the larger of the two (a retry's tag must exceed
    /// it); `tag`: the stored tag. A stored tag below the refused one proves the
    /// replica never stored it (tags only grow); a larger one does not: an earlier copy
    /// may have landed and been superseded, its acknowledgement lost.
    Refused {
        req: OpId,
        above: Tag,
        tag: Tag,
    },
}

/// One register a replica holds, as a scan sees it: its tag decides between replicas,
/// and a tombstone hides the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanEntry {
    pub key: Vec<u8>,
    pub tag: Tag,
    pub tombstone: bool,
}

/// Entries in one `PurgeCheck`, at most.
pub const PURGE_CHECK_ENTRIES_MAX: usize = 256;

impl PeerMessage {
    /// Short name for traces and counters.
    pub fn kind(&self) -> &'static str {
        match self {
            PeerMessage::ReadTag { .. } => "ReadTag",
            PeerMessage::ReadTagAck { .. } => "ReadTagAck",
            PeerMessage::Read { .. } => "Read",
            PeerMessage::ReadAck { .. } => "ReadAck",
            PeerMessage::Write { .. } => "Write",
            PeerMessage::WriteAck { .. } => "WriteAck",
            PeerMessage::Gossip { .. } => "Gossip",
            PeerMessage::EventualRead { .. } => "EventualRead",
            PeerMessage::EventualReadAck { .. } => "EventualReadAck",
            PeerMessage::EventualUpdate { .. } => "EventualUpdate",
            PeerMessage::EventualUpdateAck { .. } => "EventualUpdateAck",
            PeerMessage::EventualMerge { .. } => "EventualMerge",
            PeerMessage::EventualMergeAck { .. } => "EventualMergeAck",
            PeerMessage::EventualRefused { .. } => "EventualRefused",
            PeerMessage::AntiEntropy(_) => "AntiEntropy",
            PeerMessage::AntiEntropyReply(_) => "AntiEntropyReply",
            PeerMessage::AntiEntropyKeys(_) => "AntiEntropyKeys",
            PeerMessage::AntiEntropyKeysReply(_) => "AntiEntropyKeysReply",
            PeerMessage::AntiEntropyPush { .. } => "AntiEntropyPush",
            PeerMessage::AntiEntropyPushEventual { .. } => "AntiEntropyPushEventual",
            PeerMessage::AntiEntropyRoots(_) => "AntiEntropyRoots",
            PeerMessage::AntiEntropyRootsReply(_) => "AntiEntropyRootsReply",
            PeerMessage::Stale { .. } => "Stale",
            PeerMessage::Layout(_) => "Layout",
            PeerMessage::LayoutPull { .. } => "LayoutPull",
            PeerMessage::LayoutPrepare { .. } => "LayoutPrepare",
            PeerMessage::LayoutPromise { .. } => "LayoutPromise",
            PeerMessage::LayoutAccept { .. } => "LayoutAccept",
            PeerMessage::LayoutAccepted { .. } => "LayoutAccepted",
            PeerMessage::LayoutNack { .. } => "LayoutNack",
            PeerMessage::SyncPull { .. } => "SyncPull",
            PeerMessage::SyncPage(_) => "SyncPage",
            PeerMessage::SyncBehind { .. } => "SyncBehind",
            PeerMessage::Relayed { .. } => "Relayed",
            PeerMessage::PurgeCheck { .. } => "PurgeCheck",
            PeerMessage::PurgeCheckReply { .. } => "PurgeCheckReply",
            PeerMessage::PurgeReady { .. } => "PurgeReady",
            PeerMessage::ScanRange { .. } => "ScanRange",
            PeerMessage::ScanRangeAck { .. } => "ScanRangeAck",
            PeerMessage::Prepare { .. } => "Prepare",
            PeerMessage::Promise { .. } => "Promise",
            PeerMessage::Accept { .. } => "Accept",
            PeerMessage::Refused { .. } => "Refused",
        }
    }

    /// A linearizable data message's operation and layout epoch (the replica's fence).
    pub fn epoch(&self) -> Option<(OpId, u64)> {
        match self {
            PeerMessage::ReadTag { req, epoch, .. }
            | PeerMessage::Read { req, epoch, .. }
            | PeerMessage::Write { req, epoch, .. }
            | PeerMessage::ScanRange { req, epoch, .. }
            | PeerMessage::Prepare { req, epoch, .. }
            | PeerMessage::Accept { req, epoch, .. } => Some((*req, *epoch)),
            _ => None,
        }
    }

    /// The operation a data message belongs to; `None` for gossip and anti-entropy.
    pub fn op_id(&self) -> Option<OpId> {
        match self {
            PeerMessage::ReadTag { req, .. }
            | PeerMessage::ReadTagAck { req, .. }
            | PeerMessage::Read { req, .. }
            | PeerMessage::ReadAck { req, .. }
            | PeerMessage::Write { req, .. }
            | PeerMessage::WriteAck { req }
            | PeerMessage::EventualRead { req, .. }
            | PeerMessage::EventualReadAck { req, .. }
            | PeerMessage::EventualUpdate { req, .. }
            | PeerMessage::EventualUpdateAck { req, .. }
            | PeerMessage::EventualMerge { req, .. }
            | PeerMessage::EventualMergeAck { req }
            | PeerMessage::EventualRefused { req, .. }
            | PeerMessage::ScanRange { req, .. }
            | PeerMessage::ScanRangeAck { req, .. }
            | PeerMessage::Prepare { req, .. }
            | PeerMessage::Promise { req, .. }
            | PeerMessage::Accept { req, .. }
            | PeerMessage::Refused { req, .. }
            | PeerMessage::Stale { req, .. } => Some(*req),
            PeerMessage::Gossip { .. }
            | PeerMessage::AntiEntropy(_)
            | PeerMessage::AntiEntropyReply(_)
            | PeerMessage::AntiEntropyKeys(_)
            | PeerMessage::AntiEntropyKeysReply(_)
            | PeerMessage::AntiEntropyPush { .. }
            | PeerMessage::AntiEntropyPushEventual { .. }
            | PeerMessage::AntiEntropyRoots(_)
            | PeerMessage::AntiEntropyRootsReply(_)
            | PeerMessage::Layout(_)
            | PeerMessage::LayoutPull { .. }
            | PeerMessage::LayoutPrepare { .. }
            | PeerMessage::LayoutPromise { .. }
            | PeerMessage::LayoutAccept { .. }
            | PeerMessage::LayoutAccepted { .. }
            | PeerMessage::LayoutNack { .. }
            | PeerMessage::SyncPull { .. }
            | PeerMessage::SyncPage(_)
            | PeerMessage::SyncBehind { .. }
            | PeerMessage::Relayed { .. }
            | PeerMessage::PurgeCheck { .. }
            | PeerMessage::PurgeCheckReply { .. }
            | PeerMessage::PurgeReady { .. } => None,
        }
    }
}
