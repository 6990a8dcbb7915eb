//! YCSB-style phases against one engine: load, workloads A/B/C/F/E under two request
//! distributions, then durable puts with 1 and 16 writers. Runs in the worker process;
//! each phase's measurements go to stdout as one JSON line.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use serde_json::{json, Value};

use crate::cli::{Sizes, WorkerArgs};
use crate::engines::{self, BenchEngine};
use crate::sysinfo::{dir_size, peak_rss_bytes, IoCounters};
use crate::zipf::{fnv_hash64, KeyChooser};

pub const KEY_BYTES: usize = 16;
pub const VALUE_BYTES: usize = 100;
/// YCSB workload E: scan lengths uniform in 1..=100.
const SCAN_LEN_MAX: usize = 100;
const DURABLE_WRITERS: [usize; 2] = [1, 16];

/// Operation mix of a core workload, as fractions of operations.
struct Mix {
    name: &'static str,
    read: f64,
    update: f64,
    rmw: f64,
    scan: f64,
    insert: f64,
}

const WORKLOADS: [Mix; 5] = [
    Mix {
        name: "A",
        read: 0.5,
        update: 0.5,
        rmw: 0.0,
        scan: 0.0,
        insert: 0.0,
    },
    Mix {
        name: "B",
        read: 0.95,
        update: 0.05,
        rmw: 0.0,
        scan: 0.0,
        insert: 0.0,
    },
    Mix {
        name: "C",
        read: 1.0,
        update: 0.0,
        rmw: 0.0,
        scan: 0.0,
        insert: 0.0,
    },
    Mix {
        name: "F",
        read: 0.5,
        update: 0.0,
        rmw: 0.5,
        scan: 0.0,
        insert: 0.0,
    },
    Mix {
        name: "E",
        read: 0.0,
        update: 0.0,
        rmw: 0.0,
        scan: 0.95,
        insert: 0.05,
    },
];

enum Op {
    Read,
    Update,
    ReadModifyWrite,
    Scan,
    Insert,
}

impl Mix {
    /// The operation for a uniform `p` in `[0, 1)`.
    fn choose(&self, p: f64) -> Op {
        let mut acc = 0.0;
        for (fraction, op) in [
            (self.insert, Op::Insert),
            (self.scan, Op::Scan),
            (self.read, Op::Read),
            (self.update, Op::Update),
            (self.rmw, Op::ReadModifyWrite),
        ] {
            acc += fraction;
            if p < acc {
                return op;
            }
        }
        // Only floating-point rounding of the fractions' sum gets here.
        Op::Read
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Dist {
    Zipfian,
    Uniform,
}

impl Dist {
    fn name(self) -> &'static str {
        match self {
            Dist::Zipfian => "zipfian",
            Dist::Uniform => "uniform",
        }
    }
}

/// YCSB's hashed insert order: key number n is stored under fnvhash64(n), so loads and
/// inserts land all over the key space. 16 hex digits make the 16-byte key.
pub fn key_of(keynum: u64) -> [u8; KEY_BYTES] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let hash = fnv_hash64(keynum);
    let mut key = [0u8; KEY_BYTES];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = HEX[((hash >> (60 - 4 * i)) & 0xf) as usize];
    }
    key
}

/// Random, incompressible values: 100-byte windows into a pool filled once.
struct Values {
    pool: Vec<u8>,
}

impl Values {
    fn new(seed: u64) -> Self {
        let mut rng = fastrand::Rng::with_seed(seed ^ 0x5eed_7a1e);
        let pool = (0..(1 << 20) + VALUE_BYTES).map(|_| rng.u8(..)).collect();
        Self { pool }
    }

    fn pick(&self, rng: &mut fastrand::Rng) -> &[u8] {
        let at = rng.usize(0..self.pool.len() - VALUE_BYTES);
        &self.pool[at..at + VALUE_BYTES]
    }
}

fn new_histogram() -> Result<Histogram<u64>> {
    // Nanoseconds, 1 ns .. 100 s, 3 significant digits.
    Ok(Histogram::new_with_bounds(1, 100_000_000_000, 3)?)
}

/// Times one operation into `hist`.
fn timed<T>(hist: &mut Histogram<u64>, op: impl FnOnce() -> Result<T>) -> Result<T> {
    let start = Instant::now();
    let out = op()?;
    hist.saturating_record(start.elapsed().as_nanos() as u64);
    Ok(out)
}

/// Byte counters at a point in time, for write amplification over a span.
#[derive(Clone, Copy)]
struct Mark {
    io: IoCounters,
    engine: Option<(u64, u64)>,
    user_bytes: u64,
}

struct Runner<'a> {
    engine_name: &'a str,
    engine: Box<dyn BenchEngine>,
    sizes: Sizes,
    values: Values,
    /// Records in the database: keys 0..inserted exist.
    inserted: u64,
    /// Key and value bytes handed to the engine so far.
    user_bytes: u64,
    out: std::io::Stdout,
}

impl Runner<'_> {
    fn mark(&self) -> Result<Mark> {
        Ok(Mark {
            io: IoCounters::read()?,
            engine: self.engine.engine_bytes(),
            user_bytes: self.user_bytes,
        })
    }

    fn rng(&self, phase: &str) -> fastrand::Rng {
        // One stream per phase, so a phase's choices do not depend on earlier phases.
        let salt = phase
            .bytes()
            .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64));
        fastrand::Rng::with_seed(self.sizes.seed ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    fn emit(&mut self, row: Value) -> Result<()> {
        writeln!(self.out, "{row}")?;
        self.out.flush()?;
        Ok(())
    }

    fn load(&mut self) -> Result<()> {
        let mut rng = self.rng("load");
        let mut hist = new_histogram()?;
        let before = self.mark()?;
        let start = Instant::now();
        for keynum in 0..self.sizes.records {
            let value = self.values.pick(&mut rng);
            timed(&mut hist, || self.engine.put(&key_of(keynum), value))?;
        }
        let elapsed = start.elapsed();
        self.inserted = self.sizes.records;
        self.user_bytes += self.sizes.records * (KEY_BYTES + VALUE_BYTES) as u64;
        let settle_start = Instant::now();
        self.engine.settle().context("settle after load")?;
        let settle = settle_start.elapsed();
        let after = self.mark()?;
        let mut row = phase_row("load", "uniform", self.sizes.records, elapsed, &hist);
        add_write_amp(&mut row, &before, &after);
        row["settle_s"] = json!(settle.as_secs_f64());
        self.emit(row)
    }

    fn workload(&mut self, mix: &Mix, dist: Dist) -> Result<()> {
        let phase = format!("{}-{}", mix.name, dist.name());
        let mut rng = self.rng(&phase);
        let ops = if mix.scan > 0.0 {
            self.sizes.scan_ops
        } else {
            self.sizes.ops
        };
        // As YCSB's CoreWorkload: the chooser's range covers the keys inserts may add,
        // and a choice not inserted yet is drawn again.
        let expected_new = (ops as f64 * mix.insert * 2.0) as u64;
        let chooser = match dist {
            Dist::Zipfian => KeyChooser::zipfian(self.inserted + expected_new),
            Dist::Uniform => KeyChooser::uniform(self.inserted + expected_new),
        };
        let mut hist = new_histogram()?;
        let mut not_found = 0u64;
        let mut scanned = 0u64;
        let before = self.mark()?;
        let start = Instant::now();
        for _ in 0..ops {
            match mix.choose(rng.f64()) {
                Op::Insert => {
                    let key = key_of(self.inserted);
                    let value = self.values.pick(&mut rng);
                    timed(&mut hist, || self.engine.put(&key, value))?;
                    self.inserted += 1;
                    self.user_bytes += (KEY_BYTES + VALUE_BYTES) as u64;
                }
                Op::Scan => {
                    let key = key_of(existing_key(&chooser, &mut rng, self.inserted));
                    let len = rng.usize(1..=SCAN_LEN_MAX);
                    scanned += timed(&mut hist, || self.engine.scan(&key, len))? as u64;
                }
                Op::Read => {
                    let key = key_of(existing_key(&chooser, &mut rng, self.inserted));
                    let found = timed(&mut hist, || self.engine.get(&key))?;
                    not_found += u64::from(found.is_none());
                }
                Op::Update => {
                    let key = key_of(existing_key(&chooser, &mut rng, self.inserted));
                    let value = self.values.pick(&mut rng);
                    timed(&mut hist, || self.engine.put(&key, value))?;
                    self.user_bytes += (KEY_BYTES + VALUE_BYTES) as u64;
                }
                Op::ReadModifyWrite => {
                    // YCSB times the read and the write as one operation.
                    let key = key_of(existing_key(&chooser, &mut rng, self.inserted));
                    let value = self.values.pick(&mut rng);
                    let found = timed(&mut hist, || {
                        let old = self.engine.get(&key)?;
                        self.engine.put(&key, value)?;
                        Ok(old)
                    })?;
                    not_found += u64::from(found.is_none());
                    self.user_bytes += (KEY_BYTES + VALUE_BYTES) as u64;
                }
            }
        }
        let elapsed = start.elapsed();
        let after = self.mark()?;
        let mut row = phase_row(mix.name, dist.name(), ops, elapsed, &hist);
        add_write_amp(&mut row, &before, &after);
        row["not_found"] = json!(not_found);
        if mix.scan > 0.0 {
            row["entries_scanned"] = json!(scanned);
        }
        self.emit(row)
    }

    fn durable(&mut self, writers: usize) -> Result<()> {
        let name = format!("durable-{writers}");
        let total = self.sizes.durable_ops.max(writers as u64);
        let per_writer = total / writers as u64;
        let inserted = self.inserted;
        let before = self.mark()?;
        let start = Instant::now();
        let engine = self.engine.as_ref();
        let values = &self.values;
        let base_rng = self.rng(&name);
        let hists = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..writers)
                .map(|w| {
                    let mut rng = fastrand::Rng::with_seed(base_rng.get_seed() ^ (w as u64 + 1));
                    scope.spawn(move || -> Result<Histogram<u64>> {
                        let mut hist = new_histogram()?;
                        for _ in 0..per_writer {
                            let key = key_of(rng.u64(0..inserted));
                            let value = values.pick(&mut rng);
                            timed(&mut hist, || engine.put_durable(&key, value))?;
                        }
                        Ok(hist)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .map_err(|_| anyhow::anyhow!("writer thread panicked"))?
                })
                .collect::<Result<Vec<_>>>()
        })?;
        let elapsed = start.elapsed();
        let mut hist = new_histogram()?;
        for h in &hists {
            hist.add(h)?;
        }
        let ops = per_writer * writers as u64;
        self.user_bytes += ops * (KEY_BYTES + VALUE_BYTES) as u64;
        let after = self.mark()?;
        let mut row = phase_row(&name, "uniform", ops, elapsed, &hist);
        add_write_amp(&mut row, &before, &after);
        row["writers"] = json!(writers);
        self.emit(row)
    }
}

/// A key number below `inserted`, drawn from `chooser` (redrawn past the end, as YCSB).
fn existing_key(chooser: &KeyChooser, rng: &mut fastrand::Rng, inserted: u64) -> u64 {
    for _ in 0..64 {
        let k = chooser.next(rng);
        if k < inserted {
            return k;
        }
    }
    // Only reachable with a tiny database; keep the workload going.
    rng.u64(0..inserted.max(1))
}

fn phase_row(
    workload: &str,
    distribution: &str,
    ops: u64,
    elapsed: Duration,
    hist: &Histogram<u64>,
) -> Value {
    let us = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    json!({
        "workload": workload,
        "distribution": distribution,
        "ops": ops,
        "elapsed_s": elapsed.as_secs_f64(),
        "ops_per_sec": ops as f64 / elapsed.as_secs_f64().max(1e-9),
        "p50_us": us(0.50),
        "p99_us": us(0.99),
        "p999_us": us(0.999),
        "max_us": hist.max() as f64 / 1000.0,
    })
}

/// Write amplification over a span, three ways (see README in `report.rs`):
/// `write_amp` from write-syscall bytes (`/proc/self/io` wchar), `write_amp_block` from
/// bytes sent to the block layer (`write_bytes`), `engine_write_amp` from the engine's
/// own counters where it has them.
fn add_write_amp(row: &mut Value, before: &Mark, after: &Mark) {
    let user = after.user_bytes - before.user_bytes;
    let wchar = after.io.wchar - before.io.wchar;
    let block = after.io.write_bytes.saturating_sub(before.io.write_bytes);
    row["user_bytes"] = json!(user);
    row["syscall_write_bytes"] = json!(wchar);
    row["block_write_bytes"] = json!(block);
    let ratio = |x: u64| (user > 0).then(|| x as f64 / user as f64);
    row["write_amp"] = json!(ratio(wchar));
    row["write_amp_block"] = json!(ratio(block));
    if let (Some((u0, s0)), Some((u1, s1))) = (before.engine, after.engine) {
        let user = u1 - u0;
        row["engine_write_amp"] = json!((user > 0).then(|| (s1 - s0) as f64 / user as f64));
    }
}

/// The worker: runs every phase on one engine, then a summary line.
pub fn run_worker(args: &WorkerArgs) -> Result<()> {
    let sizes = args.sizes();
    std::fs::create_dir_all(&args.data_dir)?;
    let engine = engines::open(&args.engine, &args.data_dir)
        .with_context(|| format!("opening {}", args.engine))?;
    let mut runner = Runner {
        engine_name: &args.engine,
        engine,
        sizes,
        values: Values::new(sizes.seed),
        inserted: 0,
        user_bytes: 0,
        out: std::io::stdout(),
    };
    let progress = |what: &str, t: Instant| {
        eprintln!(
            "  [{}] {what} done in {:.1}s",
            args.engine,
            t.elapsed().as_secs_f64()
        );
    };

    let t = Instant::now();
    let start = runner.mark()?;
    runner.load()?;
    let space_after_load = dir_size(&args.data_dir)?;
    progress("load", t);
    for dist in [Dist::Zipfian, Dist::Uniform] {
        for mix in &WORKLOADS {
            let t = Instant::now();
            runner.workload(mix, dist)?;
            progress(&format!("{}/{}", mix.name, dist.name()), t);
        }
    }
    runner.engine.settle().context("settle after workloads")?;
    let end = runner.mark()?;
    let space_after_workloads = dir_size(&args.data_dir)?;
    for writers in DURABLE_WRITERS {
        let t = Instant::now();
        runner.durable(writers)?;
        progress(&format!("durable-{writers}"), t);
    }
    let Runner {
        engine,
        engine_name,
        ..
    } = runner;
    engine
        .close()
        .with_context(|| format!("closing {engine_name}"))?;

    let mut summary = json!({
        "summary": true,
        "space_bytes": space_after_load.allocated,
        "space_apparent_bytes": space_after_load.apparent,
        "space_after_workloads_bytes": space_after_workloads.allocated,
        "peak_rss_bytes": peak_rss_bytes()?,
    });
    let mut totals = json!({});
    add_write_amp(&mut totals, &start, &end);
    for field in ["write_amp", "write_amp_block", "engine_write_amp"] {
        if let Some(v) = totals.get(field) {
            summary[format!("{field}_total")] = v.clone();
        }
    }
    writeln!(std::io::stdout(), "{summary}")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::key_of;

    #[test]
    fn keys_are_16_hex_bytes_and_distinct() {
        let keys: std::collections::HashSet<_> = (0..100_000).map(key_of).collect();
        assert_eq!(keys.len(), 100_000);
        assert!(keys.iter().all(|k| k.iter().all(u8::is_ascii_hexdigit)));
    }
}
