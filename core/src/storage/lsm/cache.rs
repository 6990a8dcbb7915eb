//! The block cache: decoded data blocks shared by every table reader, bounded in bytes.
//!
//! Eviction is CLOCK (second chance), an LRU approximation whose hit path only sets a
//! bit: no list splicing inside the lock. Blocks enter unreferenced, so a long scan that
//! reads each block once pushes out its own blocks before the ones point lookups reuse.
//!
//! Keys are `(table_id, block_offset)`; table ids are never reused while a table's
//! blocks may be cached, and [`BlockCache::evict_table`] drops a deleted table's blocks.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::sstable::block::Block;

type Key = (u64, u64);

pub struct BlockCache {
    capacity_bytes: u64,
    clock: Mutex<Clock>,
    hits: AtomicU64,
    misses: AtomicU64,
}

#[derive(Default)]
struct Clock {
    slots_by_key: HashMap<Key, usize, BuildHasherDefault<KeyHasher>>,
    slots: Vec<Option<Slot>>,
    free_slots: Vec<usize>,
    hand: usize,
    /// Sum of the charges of occupied slots; never above the capacity.
    size_bytes: u64,
}

struct Slot {
    key: Key,
    block: Arc<Block>,
    charge_bytes: u64,
    referenced: bool,
}

impl BlockCache {
    /// A capacity of 0 caches nothing.
    pub fn new(capacity_bytes: u64) -> Self {
        Self {
            capacity_bytes,
            clock: Mutex::new(Clock::default()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// Bytes of blocks held now (decoded size plus a fixed per-block overhead).
    pub fn size_bytes(&self) -> u64 {
        self.lock().size_bytes
    }

    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }

    /// Drops every block of `table_id`; call when the table's file is deleted.
    pub fn evict_table(&self, table_id: u64) {
        let mut clock = self.lock();
        let doomed: Vec<usize> = clock
            .slots_by_key
            .iter()
            .filter(|((table, _), _)| *table == table_id)
            .map(|(_, &slot)| slot)
            .collect();
        for slot in doomed {
            clock.remove(slot);
        }
    }

    pub(crate) fn get(&self, table_id: u64, block_offset: u64) -> Option<Arc<Block>> {
        let found = if self.capacity_bytes == 0 {
            None
        } else {
            self.lock().get((table_id, block_offset))
        };
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Caches `block`, evicting others as needed. A block larger than the whole cache is
    /// not cached. Two readers that missed on the same block both insert; the second wins.
    pub(crate) fn insert(&self, table_id: u64, block_offset: u64, block: Arc<Block>) {
        let charge_bytes = block.charge_bytes();
        if charge_bytes > self.capacity_bytes {
            return;
        }
        let mut clock = self.lock();
        let key = (table_id, block_offset);
        if let Some(&slot) = clock.slots_by_key.get(&key) {
            clock.remove(slot);
        }
        if !clock.make_room(charge_bytes, self.capacity_bytes) {
            return;
        }
        clock.place(Slot {
            key,
            block,
            charge_bytes,
            referenced: false,
        });
    }

    fn lock(&self) -> MutexGuard<'_, Clock> {
        // Every mutation keeps the map, slots and size consistent before it can panic
        // (it cannot: no user code runs inside), so a poisoned lock's state is sound.
        self.clock.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Clock {
    fn get(&mut self, key: Key) -> Option<Arc<Block>> {
        let slot = *self.slots_by_key.get(&key)?;
        let slot = self.slots.get_mut(slot)?.as_mut()?;
        slot.referenced = true;
        Some(Arc::clone(&slot.block))
    }

    /// Evicts until `charge_bytes` more fit. The first sweep clears every reference bit,
    /// so two sweeps empty the cache: bounded even if the accounting were wrong.
    fn make_room(&mut self, charge_bytes: u64, capacity_bytes: u64) -> bool {
        let fits = |clock: &Self| clock.size_bytes.saturating_add(charge_bytes) <= capacity_bytes;
        let steps_max = 2 * self.slots.len() + 1;
        for _ in 0..steps_max {
            if fits(self) {
                break;
            }
            if self.hand >= self.slots.len() {
                self.hand = 0;
            }
            let hand = self.hand;
            self.hand += 1;
            match self.slots.get_mut(hand) {
                Some(Some(slot)) if slot.referenced => slot.referenced = false,
                Some(Some(_)) => self.remove(hand),
                _ => {}
            }
        }
        fits(self)
    }

    fn place(&mut self, slot: Slot) {
        self.size_bytes += slot.charge_bytes;
        let key = slot.key;
        let index = match self.free_slots.pop() {
            Some(index) => {
                if let Some(free) = self.slots.get_mut(index) {
                    *free = Some(slot);
                }
                index
            }
            None => {
                self.slots.push(Some(slot));
                self.slots.len() - 1
            }
        };
        self.slots_by_key.insert(key, index);
    }

    fn remove(&mut self, index: usize) {
        if let Some(slot) = self.slots.get_mut(index).and_then(Option::take) {
            self.slots_by_key.remove(&slot.key);
            self.size_bytes -= slot.charge_bytes;
            self.free_slots.push(index);
        }
    }
}

impl fmt::Debug for BlockCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockCache")
            .field("capacity_bytes", &self.capacity_bytes)
            .field("size_bytes", &self.size_bytes())
            .field("hits", &self.hits())
            .field("misses", &self.misses())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::lsm::sstable::block::BlockEncoder;

    fn block(value_size_bytes: usize) -> Arc<Block> {
        let mut encoder = BlockEncoder::default();
        encoder.add(b"k", Some(&vec![0u8; value_size_bytes]));
        Arc::new(Block::decode(encoder.finish()).expect("valid block"))
    }

    #[test]
    fn byte_bound_is_never_exceeded() {
        let cache = BlockCache::new(10_000);
        for i in 0..500u64 {
            let size_bytes = (i as usize * 37) % 3000;
            cache.insert(i % 7, i, block(size_bytes));
            assert!(
                cache.size_bytes() <= 10_000,
                "size {} after insert {i}",
                cache.size_bytes()
            );
            let _ = cache.get(i % 7, i / 2);
        }
        assert!(cache.size_bytes() > 0);
        cache.insert(1, 1, block(20_000));
        assert!(
            cache.get(1, 1).is_none(),
            "a block larger than the cache is not cached"
        );
    }

    #[test]
    fn counts_hits_and_misses() {
        let cache = BlockCache::new(1 << 20);
        assert!(cache.get(1, 0).is_none());
        cache.insert(1, 0, block(100));
        assert!(cache.get(1, 0).is_some());
        assert!(cache.get(1, 0).is_some());
        assert_eq!((cache.hits(), cache.misses()), (2, 1));
    }

    #[test]
    fn referenced_blocks_survive_a_scan() {
        let charge_bytes = block(1000).charge_bytes();
        let cache = BlockCache::new(charge_bytes * 4);
        cache.insert(1, 0, block(1000));
        for offset in 1..50 {
            assert!(
                cache.get(1, 0).is_some(),
                "hot block evicted before scan block {offset}"
            );
            cache.insert(2, offset, block(1000));
        }
    }

    #[test]
    fn evict_table_and_reinsert_keep_accounting() {
        let cache = BlockCache::new(1 << 20);
        cache.insert(1, 0, block(100));
        cache.insert(1, 0, block(200));
        cache.insert(1, 10, block(100));
        cache.insert(2, 0, block(100));
        let table_2_bytes = block(100).charge_bytes();
        cache.evict_table(1);
        assert_eq!(cache.size_bytes(), table_2_bytes);
        assert!(cache.get(1, 0).is_none() && cache.get(2, 0).is_some());
        cache.evict_table(2);
        assert_eq!(cache.size_bytes(), 0);
    }

    #[test]
    fn zero_capacity_caches_nothing() {
        let cache = BlockCache::new(0);
        cache.insert(1, 0, block(1));
        assert!(cache.get(1, 0).is_none());
        assert_eq!(cache.size_bytes(), 0);
    }

    #[test]
    fn is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<BlockCache>();
    }
}

/// Hashes the cache's `(table id, offset)` keys with one multiply per word. The keys
/// come from our own counters and file offsets, never from clients, so the DoS
/// resistance of the default SipHash buys nothing on this hot path.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(29) ^ word).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}
