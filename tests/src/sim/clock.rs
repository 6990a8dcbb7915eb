//! Per-node timer-rate skew: node `i` sees local time `now * permille_i / 1000`.
//!
//! A node's timeouts (failure detection, request timeouts, gossip) then run fast or slow
//! relative to its peers and to the clients, as crystal drift and VM scheduling make
//! them in production. Local time stays monotone, including across restarts.

use ringkv_core::rand::SplitMix64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Skew {
    /// Local milliseconds per 1000 simulated milliseconds; > 0.
    permille: u64,
}

impl Skew {
    pub const NONE: Skew = Skew { permille: 1000 };

    /// A skew of `permille` (clamped to at least 1).
    pub fn new(permille: u64) -> Self {
        Skew {
            permille: permille.max(1),
        }
    }

    /// One skew per node, uniform in `lo..=hi` per mille.
    pub fn draw(nodes: usize, lo: u64, hi: u64, rng: &mut SplitMix64) -> Vec<Skew> {
        (0..nodes).map(|_| Skew::new(rng.range(lo, hi))).collect()
    }

    pub fn permille(self) -> u64 {
        self.permille
    }

    /// The node's clock at simulated time `now`.
    pub fn local(self, now: u64) -> u64 {
        (u128::from(now) * u128::from(self.permille) / 1000) as u64
    }

    /// The earliest simulated time at which the node's clock reads at least `local`.
    pub fn global(self, local: u64) -> u64 {
        let g = (u128::from(local) * 1000).div_ceil(u128::from(self.permille));
        u64::try_from(g).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_is_the_first_instant_the_local_deadline_is_reached() {
        for permille in [1, 333, 900, 1000, 1001, 1234, 5000] {
            let s = Skew::new(permille);
            for deadline in [0, 1, 7, 999, 1000, 123_457] {
                let g = s.global(deadline);
                assert!(s.local(g) >= deadline, "{permille} {deadline}");
                assert!(g == 0 || s.local(g - 1) < deadline, "{permille} {deadline}");
            }
        }
        assert_eq!(Skew::NONE.local(42), 42);
    }
}
