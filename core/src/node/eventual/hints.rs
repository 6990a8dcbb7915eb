//! Hint bookkeeping: how many hints this node holds per target, and the bound.
//!
//! The hints themselves are engine records (`h/`, durable, see `stored.rs`); this is an
//! in-memory count of them, rebuilt by one prefix scan at open, so status and the bound
//! check cost nothing per write. Counts change only after the engine write that creates
//! or deletes a hint succeeded.

use std::collections::BTreeMap;
use std::ops::Bound;

use crate::ring::NodeId;
use crate::storage::{prefix_successor, Engine, StorageError};

use super::stored::{split_hint_key, HINT_PREFIX};

/// Hint records read per scan page at open (values included, so kept small).
const OPEN_SCAN_PAGE: usize = 16;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct HintQueues {
    by_target: BTreeMap<NodeId, u64>,
    total: u64,
    max: u64,
}

impl HintQueues {
    /// Counts the hints persisted in `engine`. Engine keys under `h/` that are not hint
    /// keys are ignored (never written by this code).
    pub fn load(engine: &dyn Engine, max: usize) -> Result<HintQueues, StorageError> {
        let mut queues = HintQueues {
            max: max as u64,
            ..HintQueues::default()
        };
        let end = prefix_successor(HINT_PREFIX);
        let end_bound = match &end {
            Some(end) => Bound::Excluded(end.as_slice()),
            None => Bound::Unbounded,
        };
        let mut last: Option<Vec<u8>> = None;
        loop {
            let start = match &last {
                Some(key) => Bound::Excluded(key.as_slice()),
                None => Bound::Included(HINT_PREFIX),
            };
            let page = engine.scan(start, end_bound, OPEN_SCAN_PAGE)?;
            let full = page.len() == OPEN_SCAN_PAGE;
            for (key, _) in &page {
                if let Some((target, _)) = split_hint_key(key) {
                    queues.added(target);
                }
            }
            match page.into_iter().last() {
                Some((key, _)) if full => last = Some(key),
                _ => return Ok(queues),
            }
        }
    }

    /// Whether one more hint may be created. Over the bound after a restart with a lower
    /// `hints_queued_max`: no new hints until handoff brings it down.
    pub fn has_room(&self) -> bool {
        self.total < self.max
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    pub fn added(&mut self, target: NodeId) {
        *self.by_target.entry(target).or_insert(0) += 1;
        self.total += 1;
    }

    pub fn removed(&mut self, target: NodeId) {
        if let Some(count) = self.by_target.get_mut(&target) {
            *count = count.saturating_sub(1);
            self.total = self.total.saturating_sub(1);
            if *count == 0 {
                self.by_target.remove(&target);
            }
        }
    }

    /// Targets with at least one hint, and how many.
    pub fn by_target(&self) -> &BTreeMap<NodeId, u64> {
        &self.by_target
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::node::eventual::stored::hint_key;
    use crate::storage::blockstore::MemoryStore;
    use crate::storage::lsm::{LsmEngine, LsmOptions};
    use crate::storage::{WriteBatch, WriteOptions};

    #[test]
    fn counts_persisted_hints_across_pages() {
        let engine =
            LsmEngine::open(Arc::new(MemoryStore::new()), LsmOptions::tiny()).expect("open");
        let mut batch = WriteBatch::new();
        for i in 0..40u32 {
            batch.put(hint_key(NodeId(2), &i.to_be_bytes()), b"x".to_vec());
        }
        for i in 0..3u32 {
            batch.put(hint_key(NodeId(u64::MAX), &i.to_be_bytes()), b"x".to_vec());
        }
        batch.put(b"h/bad".to_vec(), b"x".to_vec());
        batch.put(b"e/not-a-hint".to_vec(), b"x".to_vec());
        engine.write(&batch, WriteOptions::DURABLE).expect("write");
        let mut queues = HintQueues::load(&engine, 44).expect("load");
        assert_eq!(queues.total(), 43);
        assert_eq!(
            queues.by_target(),
            &BTreeMap::from([(NodeId(2), 40), (NodeId(u64::MAX), 3)])
        );
        assert!(queues.has_room());
        queues.added(NodeId(3));
        assert!(!queues.has_room());
        queues.removed(NodeId(3));
        queues.removed(NodeId(9)); // unknown: no effect
        assert_eq!(queues.total(), 43);
        assert!(!queues.by_target().contains_key(&NodeId(3)));
    }
}
