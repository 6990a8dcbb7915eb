//! The `/status` document (also the client protocol's `Status` answer and the source of
//! `ringkv status`): members and their states, ring ownership, hint queues,
//! anti-entropy progress, counters.

use ringkv_core::node::{MemberState, NodeStatus, Role};
use std::collections::HashMap;

use ringkv_core::ring::{NodeId, RING_SIZE_POSITIONS};
use serde_json::{json, Value};

use crate::peer::book::AddressBook;

/// `storage_failure`: the error that fail-stopped this node, if one did.
pub fn render(status: &NodeStatus, book: &AddressBook, storage_failure: Option<&str>) -> Value {
    let layout = &status.layout;
    // Share of the ring each node is first in the preference list for (primary), and
    // share it stores a replica of.
    let mut primary: HashMap<NodeId, u128> = HashMap::new();
    let mut replicated: HashMap<NodeId, u128> = HashMap::new();
    for (range, owners) in layout.segments() {
        let width = if range.is_full() {
            RING_SIZE_POSITIONS
        } else {
            u128::from(range.end_inclusive.wrapping_sub(range.start_exclusive))
        };
        if let Some(first) = owners.first() {
            *primary.entry(*first).or_default() += width;
        }
        for owner in owners {
            *replicated.entry(owner).or_default() += width;
        }
    }
    let share = |map: &HashMap<NodeId, u128>, id| {
        map.get(&id).copied().unwrap_or(0) as f64 / RING_SIZE_POSITIONS as f64
    };
    let members: Vec<Value> = status
        .members
        .iter()
        .map(|member| {
            let id = member.spec.id;
            json!({
                "id": id.0,
                "name": id.to_string(),
                "address": if member.spec.address.is_empty() { book.address(id) } else { Some(member.spec.address.clone()) },
                "zone": member.spec.zone,
                "capacity": member.spec.capacity,
                // The process whose shards share this member's failure domain (`null`:
                // a process of its own).
                "process": member.spec.process.map(|p| p.0),
                "state": match member.state {
                    MemberState::Alive => "alive",
                    MemberState::Suspect => "suspect",
                    MemberState::Dead => "dead",
                },
                "incarnation": member.incarnation,
                "quiet_ms": member.quiet_ms,
                "primary_ownership": share(&primary, id),
                "replica_ownership": share(&replicated, id),
                "hints_held_for": status.hint_queues.get(&id).copied().unwrap_or(0),
            })
        })
        .collect();
    let c = &status.counters;
    let ae = &status.anti_entropy;
    json!({
        "id": status.id.0,
        "name": status.id.to_string(),
        "incarnation": status.incarnation,
        "layout_version": layout.version(),
        "role": match status.membership.role {
            Role::Joining => "joining",
            Role::Member => "member",
            Role::Left => "left",
            Role::Displaced => "displaced",
        },
        "membership": {
            "epoch": status.membership.epoch,
            "committed_version": status.membership.committed_version,
            "pending_version": status.membership.pending_version,
            "joining": status.membership.joining.iter().map(|id| id.0).collect::<Vec<_>>(),
            "leaving": status.membership.leaving.iter().map(|id| id.0).collect::<Vec<_>>(),
            "synced": status.membership.synced.iter().map(|id| id.0).collect::<Vec<_>>(),
            "moved_ranges": status.membership.moved_ranges,
            "pending_age_ms": status.membership.pending_age_ms,
            "fenced": status.membership.fenced.iter().map(|id| id.0).collect::<Vec<_>>(),
            "changes_aborted": status.membership.counters.changes_aborted,
            "sync": status.membership.sync.as_ref().map(|s| json!({
                "epoch": s.epoch,
                "ranges": s.ranges,
                "sources": s.sources,
                "sources_done": s.sources_done,
                "entries_applied": s.entries_applied,
                "refused": s.refused,
            })),
            "changes_chosen": status.membership.counters.changes_chosen,
        },
        "newest_layout_version_seen": status.newest_layout_version_seen,
        "replicas": layout.replicas(),
        "members": members,
        "in_flight_requests": status.in_flight_requests,
        "queued_outputs": status.queued_outputs,
        "last_storage_error": status.last_storage_error,
        // Fail-stop: a sync failed, the node answers nothing until restarted.
        "storage": {
            "failed": storage_failure.is_some(),
            "error": storage_failure,
        },
        "notes": status.notes,
        "anti_entropy": {
            "initiating": ae.initiating,
            "ranges": ae.ranges.len(),
            "ranges_exchanged": ae.ranges_exchanged,
            "oldest_exchange_ms": ae.oldest_exchange_ms,
            "exchanges_in_flight": ae.exchanges_in_flight,
            "tree_memory_bytes": ae.tree_memory_bytes,
            "exchanges_repaired": ae.counters.exchanges_repaired,
            "keys_pushed": ae.counters.keys_pushed,
        },
        "purge": {
            "purge_floor": status.purge.purge_floor,
            "round_epoch": status.purge.round_epoch,
            "round_state": status.purge.round_state,
            "tombstones_held": status.purge.tombstones_held,
            "tombstones_purgeable": status.purge.tombstones_purgeable,
            "tombstones_purged": status.purge.tombstones_purged,
            "ready_members": status.purge.ready_members.iter().map(|id| id.0).collect::<Vec<_>>(),
            "changes_proposed": status.purge.changes_proposed,
            "rounds_failed": status.purge.rounds_failed,
        },
        "counters": {
            "requests": c.requests,
            "succeeded": c.succeeded,
            "unavailable": c.unavailable,
            "indeterminate": c.indeterminate,
            "overloaded": c.overloaded,
            "rejected": c.rejected,
            "retransmissions": c.retransmissions,
            "write_backs": c.write_backs,
            "writes_applied": c.writes_applied,
            "storage_errors": c.storage_errors,
            "sends_dropped": c.sends_dropped,
            "hints_queued": c.hints_queued,
            "hints_delivered": c.hints_delivered,
            "keys_repaired": c.keys_repaired,
        },
    })
}
