//! Deadlines keyed by an id: the earliest is what `poll_timeout` reports.
//!
//! Each key has at most one pending deadline (scheduling again replaces it), so the
//! queue never holds more entries than there are live keys.

use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone)]
pub(crate) struct TimerQueue<K: Ord + Copy> {
    by_time: BTreeSet<(u64, K)>,
    by_key: BTreeMap<K, u64>,
}

impl<K: Ord + Copy> Default for TimerQueue<K> {
    fn default() -> Self {
        TimerQueue {
            by_time: BTreeSet::new(),
            by_key: BTreeMap::new(),
        }
    }
}

impl<K: Ord + Copy> TimerQueue<K> {
    /// Sets `key`'s deadline to `at_ms`, replacing any earlier one.
    pub fn schedule(&mut self, key: K, at_ms: u64) {
        self.cancel(key);
        self.by_time.insert((at_ms, key));
        self.by_key.insert(key, at_ms);
    }

    pub fn cancel(&mut self, key: K) {
        if let Some(at_ms) = self.by_key.remove(&key) {
            self.by_time.remove(&(at_ms, key));
        }
    }

    /// The earliest deadline.
    pub fn next_ms(&self) -> Option<u64> {
        self.by_time.first().map(|(at_ms, _)| *at_ms)
    }

    /// Removes and returns a key whose deadline is `<= now_ms` (earliest first).
    pub fn pop_due(&mut self, now_ms: u64) -> Option<K> {
        let (at_ms, key) = *self.by_time.first()?;
        if at_ms > now_ms {
            return None;
        }
        self.by_time.remove(&(at_ms, key));
        self.by_key.remove(&key);
        Some(key)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.by_key.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_due_keys_in_time_order_and_replaces_on_reschedule() {
        let mut timers = TimerQueue::default();
        timers.schedule(1u64, 50);
        timers.schedule(2, 10);
        timers.schedule(3, 30);
        timers.schedule(3, 70); // replaces 30
        timers.cancel(2);
        assert_eq!(timers.len(), 2);
        assert_eq!(timers.next_ms(), Some(50));
        assert_eq!(timers.pop_due(49), None);
        assert_eq!(timers.pop_due(100), Some(1));
        assert_eq!(timers.pop_due(100), Some(3));
        assert_eq!(timers.pop_due(100), None);
        assert_eq!(timers.next_ms(), None);
    }
}
