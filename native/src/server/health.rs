//! `/health/live` and `/health/ready`: what an orchestrator (Kubernetes probes, a load
//! balancer) asks before restarting a node or sending it clients.
//!
//! Live means the process serves and its node thread answers: a node that stops
//! answering should be restarted. A fail-stopped node (storage failed, `fail_stop.rs`)
//! stays live on purpose: it still says why it failed on `/status` and `/health/ready`,
//! and an operator decides whether the disk is fit for a restart.
//!
//! Ready means clients sent here are served by a full member: every condition is read
//! from the core's status (`NodeStatus`, its `MembershipStatus`) and the host's
//! fail-stop flag; nothing here decides anything the protocol decides.

use ringkv_core::node::{NodeStatus, Role};
use serde_json::{json, Value};

/// One readiness condition and, when it fails, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
}

impl Check {
    fn new(name: &'static str, ok: bool, detail: impl Into<String>) -> Check {
        Check {
            name,
            ok,
            detail: detail.into(),
        }
    }
}

/// The readiness conditions in a fixed order: `serving`, `member`, `not_leaving`,
/// `storage`, `synced`.
pub fn readiness(
    status: &NodeStatus,
    storage_failure: Option<&str>,
    shutting_down: bool,
) -> Vec<Check> {
    let me = status.id;
    let membership = &status.membership;
    let in_committed = status.layout.node(me).is_some();
    let member = match membership.role {
        Role::Member if in_committed => Check::new(
            "member",
            true,
            format!(
                "member of committed layout v{}",
                membership.committed_version
            ),
        ),
        // In the pending layout only: added, but the layout that adds it commits only
        // once its new replicas hold their ranges.
        Role::Member => Check::new(
            "member",
            false,
            format!(
                "joining: in pending layout v{}, not yet in committed layout v{}",
                membership.pending_version.unwrap_or_default(),
                membership.committed_version
            ),
        ),
        Role::Joining => Check::new(
            "member",
            false,
            "joining: not in any layout yet; waiting to be added through its seeds",
        ),
        Role::Left => Check::new("member", false, "left: removed from the cluster"),
        Role::Displaced => Check::new(
            "member",
            false,
            "displaced: the cluster binds this id to another store; rejoin under a new id",
        ),
    };
    let leaving = membership.leaving.contains(&me);
    let not_leaving = Check::new(
        "not_leaving",
        !leaving,
        if leaving {
            format!(
                "leaving: pending layout v{} removes this node",
                membership.pending_version.unwrap_or_default()
            )
        } else {
            "not leaving".to_string()
        },
    );
    let storage = match storage_failure {
        Some(error) => Check::new(
            "storage",
            false,
            format!("storage failed (fail-stop until restarted): {error}"),
        ),
        None => Check::new("storage", true, "healthy"),
    };
    let synced = synced_check(status, in_committed);
    let serving = Check::new(
        "serving",
        !shutting_down,
        if shutting_down {
            "shutting down"
        } else {
            "serving"
        },
    );
    vec![serving, member, not_leaving, storage, synced]
}

/// Whether this node holds the ranges it replicates and knows the newest layout.
///
/// A member of the committed layout holds every range that layout gives it (a layout
/// commits only once its new replicas are synced). A range pull for a pending change
/// does not fail readiness of such a member: it keeps serving its committed ranges,
/// and failing every member pulling ranges during a scale-out could leave clients no
/// ready node at all. A node outside the committed layout fails until its pull is
/// done, and any node fails while peers gossip a layout newer than its history.
fn synced_check(status: &NodeStatus, in_committed: bool) -> Check {
    let membership = &status.membership;
    if status.newest_layout_version_seen > membership.epoch {
        return Check::new(
            "synced",
            false,
            format!(
                "behind: peers gossip layout epoch {}, this node has {}",
                status.newest_layout_version_seen, membership.epoch
            ),
        );
    }
    let pulling = membership
        .sync
        .as_ref()
        .filter(|sync| sync.sources_done < sync.sources);
    match pulling {
        Some(sync) if !in_committed => Check::new(
            "synced",
            false,
            format!(
                "syncing: {} ranges from {} sources, {} done, {} entries applied",
                sync.ranges, sync.sources, sync.sources_done, sync.entries_applied
            ),
        ),
        Some(sync) => Check::new(
            "synced",
            true,
            format!(
                "holds its committed ranges; pulling {} ranges for pending layout v{}",
                sync.ranges,
                membership.pending_version.unwrap_or_default()
            ),
        ),
        None if in_committed => Check::new("synced", true, "holds its committed ranges"),
        None => Check::new("synced", false, "holds no ranges yet"),
    }
}

/// The `/health/ready` body: `ready`, the node, every check, and the names of the
/// failing ones.
pub fn render_readiness(status: &NodeStatus, checks: &[Check]) -> Value {
    let ready = checks.iter().all(|check| check.ok);
    let mut by_name = serde_json::Map::new();
    for check in checks {
        by_name.insert(
            check.name.to_string(),
            json!({ "ok": check.ok, "detail": check.detail }),
        );
    }
    json!({
        "status": if ready { "ready" } else { "not ready" },
        "ready": ready,
        "node": status.id.to_string(),
        "checks": by_name,
        "failing": checks.iter().filter(|c| !c.ok).map(|c| c.name).collect::<Vec<_>>(),
    })
}
