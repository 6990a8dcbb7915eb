//! The committer thread: syncs each node-thread turn's writes and only then releases
//! that turn's outputs, while the node thread already handles the next turn (pipelined
//! group commit).
//!
//! Invariants: turns are released in the order they ran (one FIFO queue), and a turn's
//! outputs leave the process only after a sync that began after every write of that
//! turn (and of every earlier turn) had been buffered. Engines guarantee a durable image
//! holding batch `n` holds every earlier batch, so a sync started later also covers
//! writes of later turns it happens to include, which is harmless. A turn without
//! durable writes still waits for the syncs of the turns before it (its replies may
//! show their data). The queue holds at most `TURNS_QUEUED_MAX` turns; beyond that the
//! node thread waits (backpressure).
//!
//! Fail-stop (`fail_stop.rs`): once a sync failed — here, or a write on the node
//! thread stopped the engine — no turn is released any more, whether or not it owes a
//! sync: its peer messages are dropped and its successful replies become errors. The
//! check is per turn, after the group's sync, and every failure trips before the next
//! turn that could depend on the lost writes reaches that check.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::time::Instant;

use ringkv_core::node::{ClientReply, PeerMessage};
use ringkv_core::ring::NodeId;
use tokio::sync::oneshot;

use super::group_commit::GroupCommit;
use super::metrics::Metrics;
use super::node_host::Outbound;
use crate::error::{io, Result};

/// Turns waiting for the committer; more make the node thread wait. Every turn queued
/// when a sync starts shares that sync, so this also bounds a sync's group.
pub const TURNS_QUEUED_MAX: usize = 64;

/// One turn's outputs.
pub struct Turn {
    /// The turn (or one before it) buffered durable writes: sync first.
    pub sync: bool,
    pub sends: Vec<(NodeId, PeerMessage)>,
    pub replies: Vec<(oneshot::Sender<ClientReply>, ClientReply)>,
}

pub struct Committer {
    queue: SyncSender<Turn>,
    thread: std::thread::JoinHandle<()>,
}

impl Committer {
    pub fn spawn(
        commit: Arc<GroupCommit>,
        mut outbound: impl Outbound,
        metrics: Arc<Metrics>,
    ) -> Result<Committer> {
        let (queue, turns) = sync_channel(TURNS_QUEUED_MAX);
        let thread = std::thread::Builder::new()
            .name("ringkv-commit".into())
            .spawn(move || run(turns, &commit, &mut outbound, &metrics))
            .map_err(io("starting the committer thread"))?;
        Ok(Committer { queue, thread })
    }

    /// Queues a turn; waits while `TURNS_QUEUED_MAX` are queued. `false` if the
    /// committer is gone (it never stops before `finish`).
    pub fn submit(&self, turn: Turn) -> bool {
        self.queue.send(turn).is_ok()
    }

    /// Releases every queued turn and stops the thread.
    pub fn finish(self) {
        drop(self.queue);
        let _ = self.thread.join();
    }
}

fn run(
    turns: Receiver<Turn>,
    commit: &GroupCommit,
    outbound: &mut impl Outbound,
    metrics: &Metrics,
) {
    // Take every turn queued by now: one sync covers all of them (each was fully
    // buffered before it was queued).
    while let Ok(first) = turns.recv() {
        let mut group = vec![first];
        while group.len() < TURNS_QUEUED_MAX {
            match turns.try_recv() {
                Ok(turn) => group.push(turn),
                Err(_) => break,
            }
        }
        release_group(group, commit, outbound, metrics);
    }
}

fn release_group(
    group: Vec<Turn>,
    commit: &GroupCommit,
    outbound: &mut impl Outbound,
    metrics: &Metrics,
) {
    if group.iter().any(|turn| turn.sync) {
        let started = Instant::now();
        // A failure trips the fail-stop inside `sync_now`, before any turn is released.
        let result = commit.sync_now();
        metrics.inc(&metrics.group_commit_syncs);
        metrics.group_commit_sync_us.fetch_add(
            started.elapsed().as_micros() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        if let Err(error) = result {
            tracing::error!(%error, "group commit sync failed; withholding every output from now on");
        }
    }
    let fail_stop = commit.fail_stop();
    // The group's peer messages leave together at the end, one batch per peer.
    let mut sends = Vec::new();
    for mut turn in group {
        // Checked per turn: a write on the node thread may have stopped the engine
        // since the group's sync; such a turn is synced by nothing (a turn found
        // clean here was covered by the group's sync, so its messages may still go).
        if !fail_stop.is_tripped() {
            sends.append(&mut turn.sends);
            for (sender, reply) in turn.replies {
                // The client may have gone; nothing to do then.
                let _ = sender.send(reply);
            }
            continue;
        }
        // Nothing that may depend on the lost writes goes out: peer messages are
        // dropped (as a lossy network would), a write's `Done` becomes
        // `Indeterminate` and a read's value `Unavailable`; errors say no more than
        // "did not happen" or "may have happened" and pass.
        metrics.outputs_withheld.fetch_add(
            turn.sends.len() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        for (sender, reply) in turn.replies {
            let reply = match reply {
                ClientReply::Value(_) | ClientReply::Siblings { .. } | ClientReply::Keys { .. } => {
                    metrics.inc(&metrics.outputs_withheld);
                    ClientReply::Error(fail_stop.lost(true))
                }
                // An update wrote (or may have): like a put, it may have happened.
                ClientReply::Done | ClientReply::Updated { .. } => {
                    metrics.inc(&metrics.outputs_withheld);
                    ClientReply::Error(fail_stop.lost(false))
                }
                reply @ ClientReply::Error(_) => reply,
            };
            let _ = sender.send(reply);
        }
    }
    if !sends.is_empty() {
        outbound.send_all(sends);
    }
}
