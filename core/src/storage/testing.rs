//! Deterministic model-based test driver for any [`Engine`].
//!
//! [`random_ops`] turns a seed into a list of [`ModelOp`]s; [`run_model`] applies them to
//! an engine and to a `BTreeMap` and reports the first difference as a [`ModelMismatch`].
//! The same driver serves native property tests, the wasm tests (`core/tests/wasm_*.rs`)
//! and crash tests, so a failing seed reproduces everywhere.
//!
//! Compiled only for this crate's tests or with the `testing` feature.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Bound;

use super::{Engine, Result, WriteBatch, WriteOptions};

/// One step of a model test.
#[derive(Clone, PartialEq, Eq)]
pub enum ModelOp {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    /// Applied atomically in order; `None` deletes.
    Batch(Vec<(Vec<u8>, Option<Vec<u8>>)>),
    Get(Vec<u8>),
    /// Keys `>= start`, at most `limit` of them.
    Scan {
        start: Vec<u8>,
        limit: usize,
    },
    ScanPrefix(Vec<u8>),
    Flush,
    Compact,
    Maintain(u64),
    /// Flush, drop the engine, open it again.
    Reopen,
}

impl fmt::Debug for ModelOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelOp::Put(k, v) => write!(f, "Put({}, {})", Bytes(k), Bytes(v)),
            ModelOp::Delete(k) => write!(f, "Delete({})", Bytes(k)),
            ModelOp::Batch(ops) => {
                write!(f, "Batch[")?;
                for (i, (k, v)) in ops.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    match v {
                        Some(v) => write!(f, "put {} = {}", Bytes(k), Bytes(v))?,
                        None => write!(f, "delete {}", Bytes(k))?,
                    }
                }
                write!(f, "]")
            }
            ModelOp::Get(k) => write!(f, "Get({})", Bytes(k)),
            ModelOp::Scan { start, limit } => {
                write!(f, "Scan {{ start: {}, limit: {limit} }}", Bytes(start))
            }
            ModelOp::ScanPrefix(p) => write!(f, "ScanPrefix({})", Bytes(p)),
            ModelOp::Flush => write!(f, "Flush"),
            ModelOp::Compact => write!(f, "Compact"),
            ModelOp::Maintain(budget) => write!(f, "Maintain({budget})"),
            ModelOp::Reopen => write!(f, "Reopen"),
        }
    }
}

/// Short, printable rendering of a byte string: printable ASCII as is, other bytes as
/// `\xNN`, cut after 32 bytes with the total length.
struct Bytes<'a>(&'a [u8]);

impl fmt::Display for Bytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN_BYTES_MAX: usize = 32;
        write!(f, "b\"")?;
        for &b in self.0.iter().take(SHOWN_BYTES_MAX) {
            if (b.is_ascii_graphic() && b != b'"' && b != b'\\') || b == b' ' {
                write!(f, "{}", b as char)?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        write!(f, "\"")?;
        if self.0.len() > SHOWN_BYTES_MAX {
            write!(f, "..({} bytes)", self.0.len())?;
        }
        Ok(())
    }
}

fn show_value(v: Option<&[u8]>) -> String {
    match v {
        Some(v) => format!("Some({})", Bytes(v)),
        None => "None".to_string(),
    }
}

fn show_entries<'a>(entries: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> String {
    let mut out = String::from("[");
    for (i, (k, v)) in entries.enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&format!("{} => {}", Bytes(k), Bytes(v)));
    }
    out.push(']');
    out
}

/// The first place an engine disagreed with the model (or failed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelMismatch {
    /// Index into the op list; `ops.len()` for the final check after the last op.
    pub op_index: usize,
    /// The op, abbreviated (`"open"` for the initial open, `"end"` for the final check).
    pub op: String,
    /// What was being checked when the difference showed, e.g. the op itself or a
    /// `get` of one key after a flush.
    pub check: String,
    pub expected: String,
    pub got: String,
}

impl fmt::Display for ModelMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "model mismatch at op #{} {} (checking {}): expected {}, got {}",
            self.op_index, self.op, self.check, self.expected, self.got
        )
    }
}

impl std::error::Error for ModelMismatch {}

pub use crate::rand::SplitMix64;

/// Key prefixes, so prefix scans find groups of keys. Includes bytes that sort at the
/// ends of the byte order (`0x00`, `0xff`) and prefixes of each other (`b/`, `b/x/`).
const KEY_PREFIXES: &[&[u8]] = &[
    b"a/",
    b"b/",
    b"b/x/",
    b"c",
    b"\x00",
    b"\xff\xfe/",
    b"\xff\xff",
];

/// The key with index `index`. Index 0 is the empty key (an engine must accept it: only
/// lengths are limited). Every 29th key is long (300+ bytes) to cross small-key paths.
pub fn model_key(index: u32) -> Vec<u8> {
    if index == 0 {
        return Vec::new();
    }
    let prefix = KEY_PREFIXES[index as usize % KEY_PREFIXES.len()];
    let mut key = prefix.to_vec();
    key.extend_from_slice(format!("{index:05}").as_bytes());
    if index.is_multiple_of(29) {
        key.extend(std::iter::repeat_n(b'L', 300));
    }
    key
}

/// A value of random size: ~10% empty, mostly small, ~8% 1–8 KiB, ~3% above 8 KiB (up
/// to 40 KiB). The first 8 bytes carry `tag` (when there is room) so rewrites differ.
fn random_value(rng: &mut SplitMix64, tag: u64) -> Vec<u8> {
    let roll = rng.below(100);
    let len = match roll {
        0..=9 => 0,
        10..=69 => rng.range(1, 64),
        70..=88 => rng.range(65, 1024),
        89..=96 => rng.range(1025, 8 * 1024),
        _ => rng.range(8 * 1024 + 1, 40 * 1024),
    } as usize;
    let mut value = vec![0u8; len];
    rng.fill(&mut value);
    let tag = tag.to_le_bytes();
    let n = len.min(tag.len());
    value[..n].copy_from_slice(&tag[..n]);
    value
}

/// A deterministic mix of `count` operations over about `key_space` keys (keep it small,
/// e.g. 16–200, so writes collide and deletes hit). Roughly: 35% puts, 10% deletes (60% of
/// a key the generator knows is present, else absent), 7% batches, 24% gets (half present,
/// half any), 8% scans, 4% prefix scans, 4% maintain, 3% flush, 2% compact, 1.5% reopen.
/// The same `(seed, count, key_space)` gives the same list on every platform.
pub fn random_ops(seed: u64, count: usize, key_space: u32) -> Vec<ModelOp> {
    let mut rng = SplitMix64::new(seed);
    let key_space = key_space.max(1);
    // Which key indexes the generator believes are live (exact: it mirrors the model).
    let mut live: BTreeSet<u32> = BTreeSet::new();
    let mut ops = Vec::with_capacity(count);
    let mut tag = seed.rotate_left(32);

    fn any_key(rng: &mut SplitMix64, key_space: u32) -> u32 {
        rng.below(u64::from(key_space)) as u32
    }
    fn live_key(rng: &mut SplitMix64, live: &BTreeSet<u32>, key_space: u32) -> u32 {
        if live.is_empty() {
            return any_key(rng, key_space);
        }
        let nth = rng.below(live.len() as u64) as usize;
        live.iter().nth(nth).copied().unwrap_or(0)
    }
    // A key that is never written: outside the key space.
    fn absent_key(rng: &mut SplitMix64, key_space: u32) -> u32 {
        key_space.saturating_add(1 + rng.below(1000) as u32)
    }

    while ops.len() < count {
        tag = tag.wrapping_add(1);
        let roll = rng.below(1000);
        let op = match roll {
            0..=349 => {
                let k = any_key(&mut rng, key_space);
                live.insert(k);
                ModelOp::Put(model_key(k), random_value(&mut rng, tag))
            }
            350..=449 => {
                let k = if rng.chance(60) {
                    live_key(&mut rng, &live, key_space)
                } else if rng.chance(50) {
                    absent_key(&mut rng, key_space)
                } else {
                    any_key(&mut rng, key_space)
                };
                live.remove(&k);
                ModelOp::Delete(model_key(k))
            }
            450..=519 => {
                let n = rng.range(1, 16);
                let mut batch = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    tag = tag.wrapping_add(1);
                    if rng.chance(70) {
                        let k = any_key(&mut rng, key_space);
                        live.insert(k);
                        // Batch values stay small so batches stay cheap.
                        let len = rng.below(128) as usize;
                        let mut value = vec![0u8; len];
                        rng.fill(&mut value);
                        batch.push((model_key(k), Some(value)));
                    } else {
                        let k = live_key(&mut rng, &live, key_space);
                        live.remove(&k);
                        batch.push((model_key(k), None));
                    }
                }
                ModelOp::Batch(batch)
            }
            520..=759 => {
                let k = match rng.below(10) {
                    0..=4 => live_key(&mut rng, &live, key_space),
                    5..=8 => any_key(&mut rng, key_space),
                    _ => absent_key(&mut rng, key_space),
                };
                ModelOp::Get(model_key(k))
            }
            760..=839 => {
                let start = match rng.below(4) {
                    0 => Vec::new(),
                    1 => KEY_PREFIXES[rng.below(KEY_PREFIXES.len() as u64) as usize].to_vec(),
                    _ => model_key(any_key(&mut rng, key_space)),
                };
                let limit = match rng.below(10) {
                    0 => 0,
                    1 => usize::MAX,
                    2 => key_space as usize + 10,
                    _ => rng.range(1, 12) as usize,
                };
                ModelOp::Scan { start, limit }
            }
            840..=879 => {
                let prefix = match rng.below(4) {
                    0 => Vec::new(),
                    1 => model_key(any_key(&mut rng, key_space)),
                    _ => KEY_PREFIXES[rng.below(KEY_PREFIXES.len() as u64) as usize].to_vec(),
                };
                ModelOp::ScanPrefix(prefix)
            }
            880..=919 => {
                const BUDGETS: [u64; 6] = [0, 1, 4096, 64 * 1024, 1 << 20, u64::MAX];
                ModelOp::Maintain(BUDGETS[rng.below(BUDGETS.len() as u64) as usize])
            }
            920..=949 => ModelOp::Flush,
            950..=969 => ModelOp::Compact,
            970..=984 => ModelOp::Reopen,
            _ => {
                // A burst of puts to one prefix group, so memtables fill and flush.
                let group = rng.below(KEY_PREFIXES.len() as u64) as u32;
                let mut i = group;
                while i < key_space && ops.len() + 1 < count {
                    tag = tag.wrapping_add(1);
                    live.insert(i);
                    ops.push(ModelOp::Put(model_key(i), random_value(&mut rng, tag)));
                    i += KEY_PREFIXES.len() as u32;
                }
                ModelOp::Get(model_key(group))
            }
        };
        ops.push(op);
    }
    ops.truncate(count);
    ops
}

/// FNV-1a hash of `ops` in an encoding that does not depend on the width of `usize`:
/// equal on every platform for equal ops (tests pin it to catch generator drift).
pub fn ops_fingerprint(ops: &[ModelOp]) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01B3);
        }
    };
    let size = |n: usize| if n == usize::MAX { u64::MAX } else { n as u64 };
    for op in ops {
        match op {
            ModelOp::Put(k, v) => {
                eat(b"P");
                eat(k);
                eat(&size(v.len()).to_le_bytes());
                eat(v);
            }
            ModelOp::Delete(k) => {
                eat(b"D");
                eat(k);
            }
            ModelOp::Batch(entries) => {
                eat(b"B");
                for (k, v) in entries {
                    eat(k);
                    match v {
                        Some(v) => {
                            eat(&size(v.len()).to_le_bytes());
                            eat(v);
                        }
                        None => eat(b"-"),
                    }
                }
            }
            ModelOp::Get(k) => {
                eat(b"G");
                eat(k);
            }
            ModelOp::Scan { start, limit } => {
                eat(b"S");
                eat(start);
                eat(&size(*limit).to_le_bytes());
            }
            ModelOp::ScanPrefix(p) => {
                eat(b"X");
                eat(p);
            }
            ModelOp::Flush => eat(b"F"),
            ModelOp::Compact => eat(b"C"),
            ModelOp::Maintain(budget) => {
                eat(b"M");
                eat(&budget.to_le_bytes());
            }
            ModelOp::Reopen => eat(b"R"),
        }
    }
    h
}

/// After Flush, Compact and Reopen, `get` is checked for at most this many model keys
/// (an even sample when there are more); the full scan always covers every key.
const CHECKED_GETS_MAX: usize = 512;

/// Applies `ops` to the engine that `open` returns and to a `BTreeMap` model, and checks:
/// every `Get`, `Scan` and `ScanPrefix` result equals the model's; after `Flush`,
/// `Compact` and `Reopen`, a full scan equals the model and `get` of every model key
/// (sampled beyond [`CHECKED_GETS_MAX`]) returns its value; and at the end, the same.
///
/// Every third write uses [`WriteOptions::DURABLE`], the others
/// [`WriteOptions::BUFFERED`]. `Reopen` flushes first (so every write must survive and
/// the model stays exact), drops the engine, then calls `open` again. `open` is called
/// once at the start; it must reopen the same store each time.
///
/// Any engine error is reported as a mismatch (`got: "error: ..."`).
pub fn run_model(
    ops: &[ModelOp],
    open: &mut dyn FnMut() -> Result<Box<dyn Engine>>,
) -> Result<(), ModelMismatch> {
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let mut engine = open().map_err(|e| ModelMismatch {
        op_index: 0,
        op: "open".to_string(),
        check: "initial open".to_string(),
        expected: "an engine".to_string(),
        got: format!("error: {e}"),
    })?;

    for (index, op) in ops.iter().enumerate() {
        let fail = |check: &str, expected: String, got: String| ModelMismatch {
            op_index: index,
            op: format!("{op:?}"),
            check: check.to_string(),
            expected,
            got,
        };
        let failed = |check: &str, e: crate::storage::StorageError| {
            fail(check, "success".to_string(), format!("error: {e}"))
        };
        let options = if index.is_multiple_of(3) {
            WriteOptions::DURABLE
        } else {
            WriteOptions::BUFFERED
        };
        match op {
            ModelOp::Put(key, value) => {
                let mut batch = WriteBatch::new();
                batch.put(key.clone(), value.clone());
                engine
                    .write(&batch, options)
                    .map_err(|e| failed("write", e))?;
                model.insert(key.clone(), value.clone());
            }
            ModelOp::Delete(key) => {
                let mut batch = WriteBatch::new();
                batch.delete(key.clone());
                engine
                    .write(&batch, options)
                    .map_err(|e| failed("write", e))?;
                model.remove(key);
            }
            ModelOp::Batch(entries) => {
                let mut batch = WriteBatch::new();
                for (key, value) in entries {
                    match value {
                        Some(value) => batch.put(key.clone(), value.clone()),
                        None => batch.delete(key.clone()),
                    };
                }
                engine
                    .write(&batch, options)
                    .map_err(|e| failed("write", e))?;
                for (key, value) in entries {
                    match value {
                        Some(value) => model.insert(key.clone(), value.clone()),
                        None => model.remove(key),
                    };
                }
            }
            ModelOp::Get(key) => {
                let got = engine.get(key).map_err(|e| failed("get", e))?;
                let expected = model.get(key);
                if got.as_deref() != expected.map(Vec::as_slice) {
                    return Err(fail(
                        "get",
                        show_value(expected.map(Vec::as_slice)),
                        show_value(got.as_deref()),
                    ));
                }
            }
            ModelOp::Scan { start, limit } => {
                let got = engine
                    .scan(Bound::Included(start), Bound::Unbounded, *limit)
                    .map_err(|e| failed("scan", e))?;
                let expected = model.range::<Vec<u8>, _>(start..).take(*limit);
                compare_entries("scan", &got, expected).map_err(|(e, g)| fail("scan", e, g))?;
            }
            ModelOp::ScanPrefix(prefix) => {
                // One more than the model holds: an engine returning extra entries shows.
                let limit = model.len() + 1;
                let got = engine
                    .scan_prefix(prefix, limit)
                    .map_err(|e| failed("scan_prefix", e))?;
                let expected = model
                    .range::<Vec<u8>, _>(prefix..)
                    .take_while(|(k, _)| k.starts_with(prefix));
                compare_entries("scan_prefix", &got, expected)
                    .map_err(|(e, g)| fail("scan_prefix", e, g))?;
            }
            ModelOp::Flush => {
                engine.flush().map_err(|e| failed("flush", e))?;
                check_all(engine.as_ref(), &model).map_err(|(c, e, g)| fail(&c, e, g))?;
            }
            ModelOp::Compact => {
                engine.compact().map_err(|e| failed("compact", e))?;
                check_all(engine.as_ref(), &model).map_err(|(c, e, g)| fail(&c, e, g))?;
            }
            ModelOp::Maintain(budget) => {
                engine
                    .maintain(*budget)
                    .map_err(|e| failed("maintain", e))?;
            }
            ModelOp::Reopen => {
                engine
                    .flush()
                    .map_err(|e| failed("flush before reopen", e))?;
                drop(engine);
                engine = open().map_err(|e| failed("reopen", e))?;
                check_all(engine.as_ref(), &model).map_err(|(c, e, g)| fail(&c, e, g))?;
            }
        }
    }

    check_all(engine.as_ref(), &model).map_err(|(check, expected, got)| ModelMismatch {
        op_index: ops.len(),
        op: "end".to_string(),
        check,
        expected,
        got,
    })
}

/// `Err((expected, got))` when the entries differ.
fn compare_entries<'a>(
    what: &str,
    got: &[(Vec<u8>, Vec<u8>)],
    expected: impl Iterator<Item = (&'a Vec<u8>, &'a Vec<u8>)>,
) -> Result<(), (String, String)> {
    let expected: Vec<(&[u8], &[u8])> = expected
        .map(|(k, v)| (k.as_slice(), v.as_slice()))
        .collect();
    let same = got.len() == expected.len()
        && got
            .iter()
            .zip(&expected)
            .all(|((gk, gv), (ek, ev))| gk == ek && gv == ev);
    if same {
        return Ok(());
    }
    // Point at the first difference; whole lists can be large.
    let first_diff = got
        .iter()
        .zip(&expected)
        .position(|((gk, gv), (ek, ev))| gk != ek || gv != ev)
        .unwrap_or(got.len().min(expected.len()));
    const CONTEXT: usize = 3;
    let from = first_diff.saturating_sub(1);
    Err((
        format!(
            "{what}: {} entries, from #{from}: {}",
            expected.len(),
            show_entries(expected.iter().skip(from).take(CONTEXT).copied())
        ),
        format!(
            "{} entries, from #{from}: {}",
            got.len(),
            show_entries(
                got.iter()
                    .skip(from)
                    .take(CONTEXT)
                    .map(|(k, v)| (k.as_slice(), v.as_slice()))
            )
        ),
    ))
}

/// Full scan equals the model; `get` of (a sample of) every model key returns its value.
/// `Err((check, expected, got))`.
fn check_all(
    engine: &dyn Engine,
    model: &BTreeMap<Vec<u8>, Vec<u8>>,
) -> Result<(), (String, String, String)> {
    let got = engine
        .scan(Bound::Unbounded, Bound::Unbounded, model.len() + 1)
        .map_err(|e| {
            (
                "full scan".to_string(),
                "success".to_string(),
                format!("error: {e}"),
            )
        })?;
    compare_entries("full scan", &got, model.iter())
        .map_err(|(e, g)| ("full scan".to_string(), e, g))?;
    let stride = model.len().div_ceil(CHECKED_GETS_MAX).max(1);
    for (key, value) in model.iter().step_by(stride) {
        let check = || format!("get({}) of a model key", Bytes(key));
        let got = engine
            .get(key)
            .map_err(|e| (check(), "success".to_string(), format!("error: {e}")))?;
        if got.as_deref() != Some(value.as_slice()) {
            return Err((check(), show_value(Some(value)), show_value(got.as_deref())));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{BatchOp, EngineStats, Lsn};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};

    /// A `BTreeMap` behind a mutex. It exists only to test the driver above; it is not an
    /// engine of ringkv. The map is shared so it survives "reopen".
    #[derive(Debug, Default, Clone)]
    struct ReferenceMapEngine {
        map: Arc<Mutex<BTreeMap<Vec<u8>, Vec<u8>>>>,
        lsn: Arc<AtomicU64>,
    }

    impl ReferenceMapEngine {
        fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<Vec<u8>, Vec<u8>>> {
            self.map.lock().unwrap_or_else(|p| p.into_inner())
        }
    }

    impl Engine for ReferenceMapEngine {
        fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
            Ok(self.map().get(key).cloned())
        }

        fn write(&self, batch: &WriteBatch, _options: WriteOptions) -> Result<Lsn> {
            batch.validate()?;
            let mut map = self.map();
            for op in batch.ops() {
                match op {
                    BatchOp::Put { key, value } => {
                        map.insert(key.clone(), value.clone());
                    }
                    BatchOp::Delete { key } => {
                        map.remove(key);
                    }
                }
            }
            Ok(self.lsn.fetch_add(1, Ordering::SeqCst) + 1)
        }

        fn scan(
            &self,
            start: Bound<&[u8]>,
            end: Bound<&[u8]>,
            limit: usize,
        ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
            Ok(self
                .map()
                .range::<[u8], _>((start, end))
                .take(limit)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect())
        }

        fn flush(&self) -> Result<()> {
            Ok(())
        }

        fn compact(&self) -> Result<()> {
            Ok(())
        }

        fn maintain(&self, _budget_bytes: u64) -> Result<bool> {
            Ok(false)
        }

        fn stats(&self) -> EngineStats {
            EngineStats::default()
        }
    }

    /// How a [`Faulty`] wrapper misbehaves.
    #[derive(Debug, Clone, Copy)]
    enum Fault {
        /// Silently drops every `n`th put (counted across batches and reopens).
        DropEveryNthPut(u64),
        /// Silently ignores deletes of the `n`th delete op.
        DropEveryNthDelete(u64),
        /// Forgets everything on reopen, as if nothing were durable.
        VolatileAcrossReopen,
        /// Scans return one entry fewer than asked when more exist.
        ScanOffByOne,
    }

    #[derive(Debug)]
    struct Faulty {
        inner: ReferenceMapEngine,
        fault: Fault,
        counter: Arc<AtomicU64>,
    }

    impl Engine for Faulty {
        fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
            self.inner.get(key)
        }

        fn write(&self, batch: &WriteBatch, options: WriteOptions) -> Result<Lsn> {
            let mut kept = WriteBatch::new();
            for op in batch.ops() {
                let dropped = match (self.fault, op) {
                    (Fault::DropEveryNthPut(n), BatchOp::Put { .. })
                    | (Fault::DropEveryNthDelete(n), BatchOp::Delete { .. }) => {
                        (self.counter.fetch_add(1, Ordering::SeqCst) + 1).is_multiple_of(n)
                    }
                    _ => false,
                };
                if !dropped {
                    match op {
                        BatchOp::Put { key, value } => kept.put(key.clone(), value.clone()),
                        BatchOp::Delete { key } => kept.delete(key.clone()),
                    };
                }
            }
            self.inner.write(&kept, options)
        }

        fn scan(
            &self,
            start: Bound<&[u8]>,
            end: Bound<&[u8]>,
            limit: usize,
        ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
            let mut entries = self.inner.scan(start, end, limit)?;
            if matches!(self.fault, Fault::ScanOffByOne) && entries.len() == limit && limit > 1 {
                entries.pop();
            }
            Ok(entries)
        }

        fn flush(&self) -> Result<()> {
            self.inner.flush()
        }

        fn compact(&self) -> Result<()> {
            self.inner.compact()
        }

        fn maintain(&self, budget_bytes: u64) -> Result<bool> {
            self.inner.maintain(budget_bytes)
        }

        fn stats(&self) -> EngineStats {
            self.inner.stats()
        }
    }

    fn run_reference(ops: &[ModelOp]) -> Result<(), ModelMismatch> {
        let engine = ReferenceMapEngine::default();
        run_model(ops, &mut || Ok(Box::new(engine.clone()) as Box<dyn Engine>))
    }

    fn run_faulty(ops: &[ModelOp], fault: Fault) -> Result<(), ModelMismatch> {
        let engine = ReferenceMapEngine::default();
        let counter = Arc::new(AtomicU64::new(0));
        run_model(ops, &mut || {
            let inner = match fault {
                Fault::VolatileAcrossReopen => ReferenceMapEngine::default(),
                _ => engine.clone(),
            };
            Ok(Box::new(Faulty {
                inner,
                fault,
                counter: counter.clone(),
            }) as Box<dyn Engine>)
        })
    }

    #[test]
    fn reference_engine_matches_the_model() {
        for seed in 0..20 {
            let ops = random_ops(seed, 400, 48);
            if let Err(m) = run_reference(&ops) {
                panic!("seed {seed}: {m}");
            }
        }
    }

    #[test]
    fn dropping_every_7th_put_is_caught() {
        for seed in 0..20 {
            let ops = random_ops(seed, 400, 48);
            let mismatch = run_faulty(&ops, Fault::DropEveryNthPut(7))
                .expect_err("an engine that drops every 7th put must fail the model test");
            assert!(mismatch.op_index <= ops.len(), "{mismatch}");
            assert!(!mismatch.expected.is_empty() && !mismatch.got.is_empty());
        }
    }

    #[test]
    fn other_faults_are_caught() {
        for fault in [
            Fault::DropEveryNthDelete(5),
            Fault::VolatileAcrossReopen,
            Fault::ScanOffByOne,
        ] {
            for seed in 0..10 {
                let ops = random_ops(seed, 400, 48);
                assert!(
                    run_faulty(&ops, fault).is_err(),
                    "{fault:?} was not caught with seed {seed}"
                );
            }
        }
    }

    #[test]
    fn mismatch_names_the_op() {
        let ops = vec![
            ModelOp::Put(b"k".to_vec(), b"v".to_vec()),
            ModelOp::Put(b"k".to_vec(), b"w".to_vec()),
            ModelOp::Get(b"k".to_vec()),
        ];
        // Drops the 2nd put: the get then sees the old value.
        let m = run_faulty(&ops, Fault::DropEveryNthPut(2)).expect_err("must fail");
        assert_eq!(m.op_index, 2);
        assert_eq!(m.op, "Get(b\"k\")");
        assert_eq!(m.expected, "Some(b\"w\")");
        assert_eq!(m.got, "Some(b\"v\")");
        let text = m.to_string();
        assert!(text.contains("op #2"), "{text}");
    }

    #[test]
    fn random_ops_is_deterministic() {
        assert_eq!(random_ops(7, 300, 32), random_ops(7, 300, 32));
        assert_ne!(random_ops(7, 300, 32), random_ops(8, 300, 32));
        assert_eq!(random_ops(7, 300, 32).len(), 300);
        assert!(random_ops(7, 0, 32).is_empty());
        // key_space 0 is treated as 1 rather than panicking.
        assert_eq!(random_ops(7, 50, 0).len(), 50);
        // Pins SplitMix64's output so the sequence cannot change silently across
        // platforms or refactors (reference outputs of splitmix64.c).
        assert_eq!(SplitMix64::new(0).next_u64(), 0xE220_A839_7B1D_CDAF);
        let mut rng = SplitMix64::new(1234567);
        assert_eq!(rng.next_u64(), 6457827717110365317);
        assert_eq!(rng.next_u64(), 3203168211198807973);
    }

    #[test]
    fn random_ops_fingerprint_is_pinned() {
        // The wasm test `model_ops_are_the_same_as_on_native` pins the same value.
        assert_eq!(
            ops_fingerprint(&random_ops(42, 1000, 64)),
            0x925F_4034_81DD_3840
        );
    }

    #[test]
    fn random_ops_has_the_promised_mix() {
        let ops = random_ops(1, 2000, 64);
        let mut live = BTreeSet::new();
        let (mut empty_values, mut large_values, mut absent_deletes, mut present_deletes) =
            (0, 0, 0, 0);
        let (mut scans, mut prefix_scans, mut reopens, mut batches, mut gets) = (0, 0, 0, 0, 0);
        let (mut flushes, mut compacts, mut maintains, mut overwrites) = (0, 0, 0, 0);
        for op in &ops {
            match op {
                ModelOp::Put(k, v) => {
                    empty_values += usize::from(v.is_empty());
                    large_values += usize::from(v.len() > 8 * 1024);
                    overwrites += usize::from(!live.insert(k.clone()));
                }
                ModelOp::Delete(k) => {
                    if live.remove(k) {
                        present_deletes += 1;
                    } else {
                        absent_deletes += 1;
                    }
                }
                ModelOp::Batch(entries) => {
                    batches += 1;
                    for (k, v) in entries {
                        if v.is_some() {
                            live.insert(k.clone());
                        } else {
                            live.remove(k);
                        }
                    }
                }
                ModelOp::Get(_) => gets += 1,
                ModelOp::Scan { .. } => scans += 1,
                ModelOp::ScanPrefix(_) => prefix_scans += 1,
                ModelOp::Flush => flushes += 1,
                ModelOp::Compact => compacts += 1,
                ModelOp::Maintain(_) => maintains += 1,
                ModelOp::Reopen => reopens += 1,
            }
        }
        for (what, n) in [
            ("empty values", empty_values),
            ("values > 8 KiB", large_values),
            ("deletes of present keys", present_deletes),
            ("deletes of absent keys", absent_deletes),
            ("overwrites", overwrites),
            ("batches", batches),
            ("gets", gets),
            ("scans", scans),
            ("prefix scans", prefix_scans),
            ("flushes", flushes),
            ("compactions", compacts),
            ("maintains", maintains),
            ("reopens", reopens),
        ] {
            assert!(n >= 5, "only {n} {what} in 2000 ops");
        }
    }

    #[test]
    fn bytes_display_is_short() {
        assert_eq!(
            Bytes(b"a/01\x00\xff\"").to_string(),
            "b\"a/01\\x00\\xff\\x22\""
        );
        let long = vec![b'x'; 100];
        assert!(Bytes(&long).to_string().ends_with("..(100 bytes)"));
    }
}
