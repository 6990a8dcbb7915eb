//! Issuing ABD write tags that are unique across concurrent writes and restarts.
//!
//! Why not just `max_read.successor(self)`: two puts of the same key coordinated
//! concurrently by this node could read the same maximum and pick the same tag for
//! different values; replicas would then disagree on the value of one tag, and reads
//! could return either (not linearizable). The same happens across a crash when a
//! pre-crash write with tag `t` is still in the network. So the counter is a Lamport
//! clock: `max(max_read, last_issued) + 1`, strictly increasing within a run, and every
//! run starts above every counter issued before it. The latter is a lease: counters up
//! to a persisted `ceiling` may be issued; the next open starts from that ceiling, and
//! issuing past it first persists a new ceiling. Any tag above the quorum's maximum is
//! a valid ABD tag, so skipping counters is harmless.
//!
//! An operation started at layout epoch `e` also issues a counter `>= e << 32`
//! ([`epoch_tag_base`]): a tombstone with a smaller counter was written at an earlier
//! epoch, which is what lets a purge change drop it (`node/purge/`) without a new
//! write ever getting a lower tag than a purged tombstone.

use crate::ring::{epoch_tag_base, NodeId};
use crate::storage::Engine;
use crate::versioning::Tag;

use super::meta;

/// Counters leased per ceiling write: one extra durable write per this many puts (or
/// whenever a key's counter jumps past the lease).
pub const TAG_LEASE_COUNTERS: u64 = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum IssueError {
    /// The counter space is used up (reachable only via a forged huge tag).
    Exhausted,
    /// Persisting a new lease failed; no tag was issued.
    Storage(String),
}

#[derive(Debug, Clone)]
pub(crate) struct TagIssuer {
    last_issued: u64,
    ceiling: u64,
}

impl TagIssuer {
    /// `floor`: every counter issued by earlier runs is `<= floor`. `ceiling`: the
    /// persisted lease for this run.
    pub fn new(floor: u64, ceiling: u64) -> Self {
        TagIssuer {
            last_issued: floor,
            ceiling,
        }
    }

    /// A tag greater than `observed` and than every tag this node issued before, with
    /// a counter `>= epoch_tag_base(epoch)` (`epoch`: the operation's layout epoch).
    pub fn issue(
        &mut self,
        observed: Tag,
        writer: NodeId,
        epoch: u64,
        engine: &dyn Engine,
    ) -> Result<Tag, IssueError> {
        let base = Tag {
            counter: observed
                .counter
                .max(self.last_issued)
                .max(epoch_tag_base(epoch).saturating_sub(1)),
            node: writer,
        };
        let tag = base.successor(writer).ok_or(IssueError::Exhausted)?;
        if tag.counter > self.ceiling {
            let ceiling = tag.counter.saturating_add(TAG_LEASE_COUNTERS);
            meta::write_tag_lease(engine, ceiling).map_err(IssueError::Storage)?;
            self.ceiling = ceiling;
        }
        self.last_issued = tag.counter;
        Ok(tag)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::storage::blockstore::MemoryStore;
    use crate::storage::lsm::{LsmEngine, LsmOptions};

    fn tag(counter: u64, node: u64) -> Tag {
        Tag {
            counter,
            node: NodeId(node),
        }
    }

    #[test]
    fn tags_increase_and_leases_are_persisted() {
        let engine =
            LsmEngine::open(Arc::new(MemoryStore::new()), LsmOptions::tiny()).expect("open");
        let mut issuer = TagIssuer::new(10, 12);
        let me = NodeId(1);
        // Two concurrent writes observing the same maximum get distinct tags.
        assert_eq!(issuer.issue(tag(3, 2), me, 0, &engine), Ok(tag(11, 1)));
        assert_eq!(issuer.issue(tag(3, 2), me, 0, &engine), Ok(tag(12, 1)));
        assert_eq!(engine.get(meta::TAG_LEASE_KEY).expect("get"), None);
        // Past the ceiling: a new lease is written first.
        assert_eq!(issuer.issue(tag(50, 2), me, 0, &engine), Ok(tag(51, 1)));
        assert!(engine.get(meta::TAG_LEASE_KEY).expect("get").is_some());
        assert_eq!(
            issuer.issue(tag(u64::MAX, 2), me, 0, &engine),
            Err(IssueError::Exhausted)
        );
    }

    #[test]
    fn an_operations_epoch_lifts_its_tag_above_every_earlier_epochs_tags() {
        let engine =
            LsmEngine::open(Arc::new(MemoryStore::new()), LsmOptions::tiny()).expect("open");
        let mut issuer = TagIssuer::new(0, 0);
        let me = NodeId(1);
        let base = epoch_tag_base(3);
        assert_eq!(issuer.issue(tag(7, 2), me, 3, &engine), Ok(tag(base, 1)));
        // An observed or issued counter above the base still wins.
        assert_eq!(
            issuer.issue(tag(base + 9, 2), me, 3, &engine),
            Ok(tag(base + 10, 1))
        );
        assert_eq!(
            issuer.issue(tag(0, 2), me, 2, &engine),
            Ok(tag(base + 11, 1))
        );
        assert!(crate::ring::purge_floor_for(3) < base);
    }
}
