//! Key choosers after YCSB's `ZipfianGenerator`, `ScrambledZipfianGenerator` and
//! `Utils.fnvhash64`, so our zipfian workloads skew like YCSB's.

/// YCSB's `ZipfianGenerator.ZIPFIAN_CONSTANT`.
pub const ZIPFIAN_CONSTANT: f64 = 0.99;
/// `ScrambledZipfianGenerator.ITEM_COUNT`: the scrambled generator draws from a fixed
/// ten-billion-item zipfian and hashes the result into the real key range.
const SCRAMBLED_ITEM_COUNT: u64 = 10_000_000_000;
/// `ScrambledZipfianGenerator.ZETAN`: zeta(ITEM_COUNT, 0.99), precomputed by YCSB.
const SCRAMBLED_ZETAN: f64 = 26.469_028_201_783_02;

const FNV_OFFSET_BASIS_64: u64 = 0xCBF2_9CE4_8422_2325;
const FNV_PRIME_64: u64 = 1_099_511_628_211;

/// YCSB `Utils.fnvhash64`: FNV-1a over the 8 little-endian bytes, then `Math.abs`.
pub fn fnv_hash64(mut val: u64) -> u64 {
    let mut hash = FNV_OFFSET_BASIS_64;
    for _ in 0..8 {
        let octet = val & 0xff;
        val >>= 8;
        hash ^= octet;
        hash = hash.wrapping_mul(FNV_PRIME_64);
    }
    (hash as i64).unsigned_abs()
}

/// YCSB `ZipfianGenerator` over `[base, base + items)`; item 0 is the most popular.
#[derive(Debug, Clone)]
pub struct Zipfian {
    base: u64,
    items: u64,
    theta: f64,
    alpha: f64,
    zetan: f64,
    eta: f64,
}

impl Zipfian {
    /// With `zetan` given, as YCSB's constructor that takes it (computing zeta for ten
    /// billion items would take minutes).
    pub fn with_zetan(base: u64, items: u64, theta: f64, zetan: f64) -> Self {
        let zeta2theta = zeta(2, theta);
        let alpha = 1.0 / (1.0 - theta);
        let eta = (1.0 - (2.0 / items as f64).powf(1.0 - theta)) / (1.0 - zeta2theta / zetan);
        Self {
            base,
            items,
            theta,
            alpha,
            zetan,
            eta,
        }
    }

    #[cfg(test)]
    pub fn new(base: u64, items: u64, theta: f64) -> Self {
        Self::with_zetan(base, items, theta, zeta(items, theta))
    }

    /// `nextLong(items)` for a uniform `u` in `[0, 1)`.
    pub fn sample(&self, u: f64) -> u64 {
        let uz = u * self.zetan;
        if uz < 1.0 {
            return self.base;
        }
        if uz < 1.0 + 0.5f64.powf(self.theta) {
            return self.base + 1;
        }
        let offset = (self.items as f64 * (self.eta * u - self.eta + 1.0).powf(self.alpha)) as u64;
        self.base + offset.min(self.items - 1)
    }
}

/// `zetastatic(n, theta)`: sum over i in 1..=n of 1 / i^theta.
pub fn zeta(n: u64, theta: f64) -> f64 {
    (1..=n).map(|i| 1.0 / (i as f64).powf(theta)).sum()
}

/// YCSB `ScrambledZipfianGenerator`: zipfian popularity, but the popular items are
/// spread over the key range by hashing instead of clustered at its start.
#[derive(Debug, Clone)]
pub struct ScrambledZipfian {
    min: u64,
    item_count: u64,
    inner: Zipfian,
}

impl ScrambledZipfian {
    /// Over `[min, min + item_count)`, with YCSB's constant 0.99.
    pub fn new(min: u64, item_count: u64) -> Self {
        Self {
            min,
            item_count: item_count.max(1),
            inner: Zipfian::with_zetan(
                0,
                SCRAMBLED_ITEM_COUNT + 1,
                ZIPFIAN_CONSTANT,
                SCRAMBLED_ZETAN,
            ),
        }
    }

    pub fn sample(&self, u: f64) -> u64 {
        self.min + fnv_hash64(self.inner.sample(u)) % self.item_count
    }
}

/// The request distributions of a workload.
#[derive(Debug, Clone)]
pub enum KeyChooser {
    Uniform { items: u64 },
    Zipfian(ScrambledZipfian),
}

impl KeyChooser {
    pub fn uniform(items: u64) -> Self {
        KeyChooser::Uniform {
            items: items.max(1),
        }
    }

    pub fn zipfian(items: u64) -> Self {
        KeyChooser::Zipfian(ScrambledZipfian::new(0, items))
    }

    pub fn next(&self, rng: &mut fastrand::Rng) -> u64 {
        match self {
            KeyChooser::Uniform { items } => rng.u64(0..*items),
            KeyChooser::Zipfian(z) => z.sample(rng.f64()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipfian_is_skewed_towards_low_items() {
        let z = Zipfian::new(0, 1000, ZIPFIAN_CONSTANT);
        let mut rng = fastrand::Rng::with_seed(1);
        let mut counts = vec![0u32; 1000];
        for _ in 0..100_000 {
            counts[z.sample(rng.f64()) as usize] += 1;
        }
        assert!(counts[0] > counts[1] && counts[1] > counts[10] && counts[10] > counts[500]);
    }

    #[test]
    fn scrambled_stays_in_range_and_is_skewed() {
        let z = ScrambledZipfian::new(0, 10_000);
        let mut rng = fastrand::Rng::with_seed(2);
        let mut counts = std::collections::HashMap::new();
        for _ in 0..100_000 {
            let k = z.sample(rng.f64());
            assert!(k < 10_000);
            *counts.entry(k).or_insert(0u32) += 1;
        }
        let max = counts.values().copied().max().unwrap_or(0);
        // The hottest key gets several percent of requests, far above uniform's 0.01%.
        assert!(max > 1_000, "{max}");
    }
}
