//! Host-side metrics and the Prometheus text exposition of `/metrics`. Request counts
//! and latency histograms are recorded here (by op and outcome); everything the core
//! and engine count comes from `node.status()` and `engine.stats()` at scrape time.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ringkv_core::node::{ClientError, ClientReply, ClientRequest, NodeStatus};
use ringkv_core::storage::EngineStats;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Get,
    Put,
    Delete,
    Admin,
    Scan,
    Update,
}

impl Op {
    const ALL: [Op; 6] = [
        Op::Get,
        Op::Put,
        Op::Delete,
        Op::Admin,
        Op::Scan,
        Op::Update,
    ];
    fn name(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::Put => "put",
            Op::Delete => "delete",
            Op::Admin => "admin",
            Op::Scan => "scan",
            Op::Update => "update",
        }
    }
    pub fn of(request: &ClientRequest) -> Op {
        match request {
            ClientRequest::Get { .. } => Op::Get,
            ClientRequest::Put { .. } | ClientRequest::PutEventual { .. } => Op::Put,
            ClientRequest::Delete { .. } | ClientRequest::DeleteEventual { .. } => Op::Delete,
            ClientRequest::Admin(_) => Op::Admin,
            ClientRequest::Scan { .. } => Op::Scan,
            ClientRequest::Update { .. } => Op::Update,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Unavailable,
    Indeterminate,
    TooLarge,
    Overloaded,
    /// Unsupported, invalid context, or the node shutting down.
    Error,
}

impl Outcome {
    const ALL: [Outcome; 6] = [
        Outcome::Ok,
        Outcome::Unavailable,
        Outcome::Indeterminate,
        Outcome::TooLarge,
        Outcome::Overloaded,
        Outcome::Error,
    ];
    fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Unavailable => "unavailable",
            Outcome::Indeterminate => "indeterminate",
            Outcome::TooLarge => "too_large",
            Outcome::Overloaded => "overloaded",
            Outcome::Error => "error",
        }
    }
    pub fn of(reply: &ClientReply) -> Outcome {
        match reply {
            ClientReply::Value(_)
            | ClientReply::Done
            | ClientReply::Siblings { .. }
            | ClientReply::Keys { .. }
            | ClientReply::Updated { .. } => Outcome::Ok,
            ClientReply::Error(error) => match error {
                ClientError::Unavailable { .. } => Outcome::Unavailable,
                ClientError::Indeterminate { .. } => Outcome::Indeterminate,
                ClientError::TooLarge { .. } => Outcome::TooLarge,
                ClientError::Overloaded => Outcome::Overloaded,
                ClientError::Contention { .. } => Outcome::Unavailable,
                ClientError::Unsupported { .. }
                | ClientError::InvalidContext { .. }
                | ClientError::NotAnInteger => Outcome::Error,
            },
        }
    }
}

/// Upper bounds (seconds) of the latency buckets; the last bucket is +Inf.
const BUCKETS_S: [f64; 15] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];
const SLOTS: usize = BUCKETS_S.len() + 1;

#[derive(Default)]
struct Histogram {
    buckets: [AtomicU64; SLOTS],
    count: AtomicU64,
    sum_us: AtomicU64,
}

#[derive(Default)]
pub struct Metrics {
    pub connections_accepted: AtomicU64,
    pub connections_rejected: AtomicU64,
    pub connections_open: AtomicU64,
    pub handshake_failures: AtomicU64,
    pub client_auth_failures: AtomicU64,
    pub bad_frames: AtomicU64,
    pub resp_protocol_errors: AtomicU64,
    pub peer_messages_received: AtomicU64,
    pub peer_receives_dropped: AtomicU64,
    pub peer_sends_dropped: AtomicU64,
    /// Peer messages sent, and the frames they went in (one batch per peer per
    /// committer group).
    pub peer_messages_sent: AtomicU64,
    pub peer_frames_sent: AtomicU64,
    pub peer_connect_failures: AtomicU64,
    pub peer_auth_failures: AtomicU64,
    /// Peer connections refused for speaking another peer protocol version (either
    /// side: at the upgrade, or at the first frame of a build that sends no header).
    pub peer_protocol_refused: AtomicU64,
    /// Node-thread turns, inputs handled in them, group-commit syncs and their time.
    pub node_turns: AtomicU64,
    pub node_inputs: AtomicU64,
    pub group_commit_syncs: AtomicU64,
    pub group_commit_sync_us: AtomicU64,
    /// Peer messages and successful replies withheld after a storage failure.
    pub outputs_withheld: AtomicU64,
    requests: [[Histogram; Outcome::ALL.len()]; Op::ALL.len()],
}

impl Metrics {
    pub fn inc(&self, counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn dec(&self, counter: &AtomicU64) {
        counter.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn observe(&self, op: Op, outcome: Outcome, elapsed: Duration) {
        let h = &self.requests[op as usize][outcome as usize];
        let seconds = elapsed.as_secs_f64();
        let slot = BUCKETS_S
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(BUCKETS_S.len());
        h.buckets[slot].fetch_add(1, Ordering::Relaxed);
        h.count.fetch_add(1, Ordering::Relaxed);
        h.sum_us
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    /// Prometheus text format 0.0.4.
    /// `storage_failed`: the node is fail-stopped after a storage failure.
    pub fn render(
        &self,
        status: &NodeStatus,
        engine: &EngineStats,
        storage_failed: bool,
    ) -> String {
        let mut out = String::with_capacity(16 << 10);
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        out.push_str("# HELP ringkv_requests_total Client requests by op and outcome.\n");
        out.push_str("# TYPE ringkv_requests_total counter\n");
        for op in Op::ALL {
            for outcome in Outcome::ALL {
                let h = &self.requests[op as usize][outcome as usize];
                let _ = writeln!(
                    out,
                    "ringkv_requests_total{{op=\"{}\",outcome=\"{}\"}} {}",
                    op.name(),
                    outcome.name(),
                    load(&h.count)
                );
            }
        }
        out.push_str("# HELP ringkv_request_duration_seconds Client request latency.\n");
        out.push_str("# TYPE ringkv_request_duration_seconds histogram\n");
        for op in Op::ALL {
            for outcome in Outcome::ALL {
                let h = &self.requests[op as usize][outcome as usize];
                let labels = format!("op=\"{}\",outcome=\"{}\"", op.name(), outcome.name());
                let mut cumulative = 0;
                for (i, bound) in BUCKETS_S.iter().enumerate() {
                    cumulative += load(&h.buckets[i]);
                    let _ = writeln!(
                        out,
                        "ringkv_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
                    );
                }
                cumulative += load(&h.buckets[BUCKETS_S.len()]);
                let _ = writeln!(
                    out,
                    "ringkv_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {cumulative}"
                );
                let _ = writeln!(
                    out,
                    "ringkv_request_duration_seconds_sum{{{labels}}} {}",
                    load(&h.sum_us) as f64 / 1e6
                );
                let _ = writeln!(
                    out,
                    "ringkv_request_duration_seconds_count{{{labels}}} {}",
                    load(&h.count)
                );
            }
        }
        let c = &status.counters;
        let ae = &status.anti_entropy.counters;
        let counters: [(&str, &str, u64); 39] = [
            (
                "node_turns_total",
                "Node-thread turns (inputs handled, then outputs released).",
                load(&self.node_turns),
            ),
            (
                "node_inputs_total",
                "Inputs the node thread handled.",
                load(&self.node_inputs),
            ),
            (
                "group_commit_syncs_total",
                "Group-commit fsyncs (one per turn with durable writes).",
                load(&self.group_commit_syncs),
            ),
            (
                "group_commit_sync_microseconds_total",
                "Time the node thread spent in group-commit fsyncs.",
                load(&self.group_commit_sync_us),
            ),
            (
                "outputs_withheld_total",
                "Peer messages and successful replies withheld after a storage failure.",
                load(&self.outputs_withheld),
            ),
            (
                "connections_accepted_total",
                "Connections accepted on every listener.",
                load(&self.connections_accepted),
            ),
            (
                "connections_rejected_total",
                "Connections refused at the connection limit.",
                load(&self.connections_rejected),
            ),
            (
                "handshake_failures_total",
                "Connections that failed or timed out in their handshake.",
                load(&self.handshake_failures),
            ),
            (
                "client_auth_failures_total",
                "Clients that presented a wrong or no token.",
                load(&self.client_auth_failures),
            ),
            (
                "bad_frames_total",
                "Malformed or oversized WebSocket messages.",
                load(&self.bad_frames),
            ),
            (
                "resp_protocol_errors_total",
                "RESP connections closed for protocol errors.",
                load(&self.resp_protocol_errors),
            ),
            (
                "peer_messages_received_total",
                "Peer messages received.",
                load(&self.peer_messages_received),
            ),
            (
                "peer_receives_dropped_total",
                "Peer messages dropped: node queue full.",
                load(&self.peer_receives_dropped),
            ),
            (
                "peer_sends_dropped_total",
                "Peer messages dropped: link queue full or peer unreachable.",
                load(&self.peer_sends_dropped),
            ),
            (
                "peer_messages_sent_total",
                "Peer messages handed to links and relays.",
                load(&self.peer_messages_sent),
            ),
            (
                "peer_frames_sent_total",
                "Frames they went in (a batch frame holds what one group sends one peer).",
                load(&self.peer_frames_sent),
            ),
            (
                "peer_connect_failures_total",
                "Failed dials to peers.",
                load(&self.peer_connect_failures),
            ),
            (
                "peer_auth_failures_total",
                "Peer handshakes with a wrong MAC.",
                load(&self.peer_auth_failures),
            ),
            (
                "peer_protocol_refused_total",
                "Peer connections refused for another peer protocol version (the log names both).",
                load(&self.peer_protocol_refused),
            ),
            (
                "node_requests_total",
                "Client requests the node received.",
                c.requests,
            ),
            (
                "node_unavailable_total",
                "Requests answered Unavailable (quorum failures).",
                c.unavailable,
            ),
            (
                "node_indeterminate_total",
                "Writes answered Indeterminate (phase-2 quorum failures).",
                c.indeterminate,
            ),
            (
                "node_refused_unreachable_total",
                "Requests refused before sending: too few replicas alive.",
                c.refused_unreachable,
            ),
            (
                "node_overloaded_total",
                "Requests refused: in-flight limit.",
                c.overloaded,
            ),
            (
                "node_retransmissions_total",
                "Phase messages resent.",
                c.retransmissions,
            ),
            (
                "node_write_backs_total",
                "Gets that wrote the newest value back.",
                c.write_backs,
            ),
            (
                "node_writes_applied_total",
                "Replica writes that stored a newer tag.",
                c.writes_applied,
            ),
            (
                "node_storage_errors_total",
                "Replica messages unanswered because storage failed.",
                c.storage_errors,
            ),
            (
                "node_sends_dropped_total",
                "Sends dropped by the node's bounded output queue.",
                c.sends_dropped,
            ),
            (
                "node_gossip_rounds_total",
                "Gossip rounds.",
                c.gossip_rounds,
            ),
            (
                "hints_queued_total",
                "Hints this node started holding (eventual mode).",
                c.hints_queued,
            ),
            (
                "hints_delivered_total",
                "Hints handed off and deleted.",
                c.hints_delivered,
            ),
            (
                "hints_refused_total",
                "Writes refused: hint queue full.",
                c.hints_refused,
            ),
            (
                "read_repairs_total",
                "Eventual-mode read repairs sent.",
                c.read_repairs,
            ),
            (
                "anti_entropy_keys_repaired_total",
                "Registers this replica took from anti-entropy pushes.",
                c.keys_repaired,
            ),
            (
                "anti_entropy_keys_pushed_total",
                "Registers pushed to peers by anti-entropy.",
                ae.keys_pushed,
            ),
            (
                "anti_entropy_exchanges_repaired_total",
                "Anti-entropy exchanges that repaired keys.",
                ae.exchanges_repaired,
            ),
            (
                "engine_compactions_total",
                "Engine compactions.",
                engine.compactions,
            ),
            (
                "engine_flushes_total",
                "Engine memtable flushes.",
                engine.flushes,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(
                out,
                "# HELP ringkv_{name} {help}\n# TYPE ringkv_{name} counter\nringkv_{name} {value}"
            );
        }
        let hints: u64 = status.hint_queues.values().sum();
        let alive = status
            .members
            .iter()
            .filter(|m| m.state == ringkv_core::node::MemberState::Alive)
            .count();
        let gauges: [(&str, &str, u64); 9] = [
            (
                "storage_failed",
                "1 once a sync failed: the node answers nothing until restarted.",
                u64::from(storage_failed),
            ),
            (
                "connections_open",
                "Open connections.",
                load(&self.connections_open),
            ),
            (
                "in_flight_requests",
                "Coordinator operations in flight.",
                status.in_flight_requests as u64,
            ),
            ("hints_pending", "Hints held for other nodes.", hints),
            ("members", "Cluster members.", status.members.len() as u64),
            (
                "members_alive",
                "Members this node believes alive.",
                alive as u64,
            ),
            (
                "storage_space_used_bytes",
                "Bytes the engine's files occupy.",
                engine.space_used_bytes,
            ),
            (
                "storage_entries_approx",
                "Engine entries (approximate; includes metadata and index).",
                engine.entries_approx,
            ),
            ("storage_tables", "Engine tables.", engine.tables),
        ];
        for (name, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP ringkv_{name} {help}\n# TYPE ringkv_{name} gauge\nringkv_{name} {value}"
            );
        }
        out
    }
}
