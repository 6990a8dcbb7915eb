//! Recently touched registers' versions `(tag, tombstone)`, in memory, so the two
//! messages of an ABD write at a replica (`ReadTag`, then `Write`) cost one engine
//! read between them instead of two (with a warm cache, none): the read of a whole
//! record (an LSM lookup and a decode) was a third of a replica's CPU per SET.
//!
//! Invariant: an entry equals the version of the key's `d/` record in the engine
//! (written, not necessarily synced yet: the engine answers reads the same way). It
//! holds because `replica::apply_register`, the only writer of `d/`, takes the cache
//! and records the new version after its engine write succeeds; entries are filled
//! from engine reads otherwise. Nothing deletes `d/` records; a future purge must
//! remove the key here too. A stale entry would be a safety bug (a `Write` compared
//! against a too-small tag, a `ReadTag` answering low), so the cache is per node
//! incarnation and starts empty on every open.
//!
//! Bounded: two generations of at most `capacity / 2` entries each. Inserts go to the
//! young one; when it is full it becomes the old one (the old one is dropped), so a
//! hot key survives as long as it is touched once per generation. O(1) per operation,
//! no per-entry order to maintain.

use std::collections::HashMap;

use crate::versioning::Tag;

use super::ae::RegisterVersion;

/// Default entries kept: about 100 B each with a short key, so ~25 MiB when full.
pub const VERSIONS_CACHED_DEFAULT: usize = 256 << 10;

#[derive(Debug)]
pub(crate) struct VersionCache {
    young: HashMap<Vec<u8>, RegisterVersion>,
    old: HashMap<Vec<u8>, RegisterVersion>,
    generation_max: usize,
    hits: u64,
    misses: u64,
}

impl VersionCache {
    /// A cache of at most `capacity` entries (0: caches nothing).
    pub fn new(capacity: usize) -> Self {
        VersionCache {
            young: HashMap::new(),
            old: HashMap::new(),
            generation_max: capacity / 2,
            hits: 0,
            misses: 0,
        }
    }

    /// The cached version of `key`, if any. `Tag::ZERO` means "known absent".
    pub fn get(&mut self, key: &[u8]) -> Option<RegisterVersion> {
        let found = self.young.get(key).or_else(|| self.old.get(key)).copied();
        match found {
            Some(_) => self.hits += 1,
            None => self.misses += 1,
        }
        found
    }

    /// Records that the engine now holds `version` for `key` (`tag == Tag::ZERO`: no
    /// record).
    pub fn put(&mut self, key: &[u8], version: RegisterVersion) {
        if self.generation_max == 0 {
            return;
        }
        if let Some(slot) = self.young.get_mut(key) {
            *slot = version;
            return;
        }
        // Keep the two generations disjoint so the old copy cannot shadow nothing and
        // the bound counts distinct keys.
        self.old.remove(key);
        if self.young.len() >= self.generation_max {
            self.old = std::mem::take(&mut self.young);
        }
        self.young.insert(key.to_vec(), version);
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.young.len() + self.old.len()
    }

    /// `(hits, misses)` since open.
    pub fn stats(&self) -> (u64, u64) {
        (self.hits, self.misses)
    }
}

/// The version meaning "no record".
pub(crate) const ABSENT: RegisterVersion = RegisterVersion {
    tag: Tag::ZERO,
    tombstone: true,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::NodeId;

    fn version(counter: u64) -> RegisterVersion {
        RegisterVersion {
            tag: Tag {
                counter,
                node: NodeId(1),
            },
            tombstone: false,
        }
    }

    #[test]
    fn bounded_by_capacity_and_keeps_the_latest_version() {
        let mut cache = VersionCache::new(8);
        for i in 0..100u64 {
            cache.put(&i.to_be_bytes(), version(i));
            assert!(cache.len() <= 8, "{} entries", cache.len());
        }
        // The last generation's keys are there, with their versions.
        assert_eq!(cache.get(&99u64.to_be_bytes()), Some(version(99)));
        assert_eq!(cache.get(&0u64.to_be_bytes()), None);
        // An update of a key in the old generation moves it, never duplicates it.
        let old_key = 92u64.to_be_bytes();
        if cache.get(&old_key).is_some() {
            cache.put(&old_key, version(1000));
            assert_eq!(cache.get(&old_key), Some(version(1000)));
        }
        assert!(cache.len() <= 8);
        cache.put(b"k", version(5));
        cache.put(b"k", version(6));
        assert_eq!(cache.get(b"k"), Some(version(6)));
        let mut none = VersionCache::new(0);
        none.put(b"k", version(1));
        assert_eq!(none.get(b"k"), None);
    }
}
