//! Turns the workers' JSON lines into the JSON output or human tables.
//!
//! Metrics, as measured by the worker process that hosts exactly one engine:
//! - `ops_per_sec`: operations / wall time of the phase (one client thread for YCSB
//!   phases, 1 or 16 writer threads for durable phases);
//! - `p50_us`, `p99_us`: per-operation latency from an HDR histogram;
//! - `write_amp`: bytes the process passed to write syscalls (`/proc/self/io` wchar) ÷
//!   key+value bytes put; `write_amp_block`: same with bytes sent to the block layer
//!   (`write_bytes`, page-granular, coalesced by the page cache); `engine_write_amp`: the
//!   engine's own `EngineStats` (ringkv engines only). Per phase for writes in that phase
//!   (background work may land in a later phase); `*_total` over load..E plus a final
//!   settle (flush and compaction), which is the fair comparison;
//! - `space_bytes`: blocks allocated under the data directory after load + settle;
//! - `peak_rss_bytes`: the worker's `VmHWM` at exit.

use serde_json::Value;

/// One engine's run: its phase rows and its summary.
#[derive(Debug)]
pub struct EngineRun {
    pub engine: String,
    pub rows: Vec<Value>,
    pub summary: Value,
    pub wall_s: f64,
}

const SUMMARY_FIELDS: [&str; 7] = [
    "space_bytes",
    "space_apparent_bytes",
    "space_after_workloads_bytes",
    "peak_rss_bytes",
    "write_amp_total",
    "write_amp_block_total",
    "engine_write_amp_total",
];

/// One JSON object per (engine, workload, distribution), each carrying the engine's
/// summary fields too, so every line stands alone.
pub fn print_json(runs: &[EngineRun]) {
    for run in runs {
        for row in &run.rows {
            let mut row = row.clone();
            row["engine"] = Value::from(run.engine.as_str());
            for field in SUMMARY_FIELDS {
                if let Some(v) = run.summary.get(field) {
                    row[field] = v.clone();
                }
            }
            println!("{row}");
        }
    }
}

fn num(v: &Value, field: &str) -> Option<f64> {
    v.get(field).and_then(Value::as_f64)
}

fn label(row: &Value) -> String {
    let w = row.get("workload").and_then(Value::as_str).unwrap_or("?");
    let d = row
        .get("distribution")
        .and_then(Value::as_str)
        .unwrap_or("?");
    format!("{w:<10} {d:<8}")
}

/// Phase labels in the order the first engine ran them.
fn phases(runs: &[EngineRun]) -> Vec<String> {
    runs.first()
        .map(|r| r.rows.iter().map(label).collect())
        .unwrap_or_default()
}

fn find<'a>(run: &'a EngineRun, phase: &str) -> Option<&'a Value> {
    run.rows.iter().find(|r| label(r) == phase)
}

fn mib(bytes: Option<f64>) -> String {
    bytes.map_or("-".into(), |b| format!("{:.1}", b / (1024.0 * 1024.0)))
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or("-".into(), |x| format!("{x:.decimals$}"))
}

pub fn print_tables(runs: &[EngineRun], baseline: &str) {
    let mut header = format!("{:<19}", "workload dist");
    let mut sub = format!("{:<19}", "");
    for run in runs {
        header.push_str(&format!(" | {:<28}", run.engine));
        sub.push_str(&format!(
            " | {:>10} {:>8} {:>8}",
            "ops/s", "p50 µs", "p99 µs"
        ));
    }
    println!("{header}\n{sub}");
    for phase in phases(runs) {
        let mut line = format!("{phase:<19}");
        for run in runs {
            let row = find(run, &phase);
            let f = |field| row.and_then(|r| num(r, field));
            line.push_str(&format!(
                " | {:>10} {:>8} {:>8}",
                opt(f("ops_per_sec"), 0),
                opt(f("p50_us"), 1),
                opt(f("p99_us"), 1)
            ));
        }
        println!("{line}");
    }

    println!();
    println!(
        "{:<12} {:>9} {:>11} {:>10} {:>11} {:>11} {:>9}",
        "engine", "write-amp", "w-amp(blk)", "w-amp(eng)", "space MiB", "peak RSS MiB", "wall s"
    );
    for run in runs {
        let s = &run.summary;
        println!(
            "{:<12} {:>9} {:>11} {:>10} {:>11} {:>11} {:>9.1}",
            run.engine,
            opt(num(s, "write_amp_total"), 2),
            opt(num(s, "write_amp_block_total"), 2),
            opt(num(s, "engine_write_amp_total"), 2),
            mib(num(s, "space_bytes")),
            mib(num(s, "peak_rss_bytes")),
            run.wall_s,
        );
    }

    print_ratios(runs, baseline);
}

/// ops/s of the baseline engine divided by each peer's, per phase (> 1: baseline faster),
/// and the same ratio for space, peak RSS and write amplification (< 1: baseline smaller).
fn print_ratios(runs: &[EngineRun], baseline: &str) {
    println!();
    let Some(base) = runs.iter().find(|r| r.engine == baseline) else {
        println!("ratios: {baseline} was not run (pick another with --baseline)");
        return;
    };
    let peers: Vec<&EngineRun> = runs.iter().filter(|r| r.engine != baseline).collect();
    let mut header = format!("{:<19}", format!("{baseline} ÷"));
    for peer in &peers {
        header.push_str(&format!(" {:>12}", peer.engine));
    }
    println!("{header}");
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "-".into(),
    };
    for phase in phases(runs) {
        let mut line = format!("{phase:<19}");
        let mine = find(base, &phase).and_then(|r| num(r, "ops_per_sec"));
        for peer in &peers {
            let theirs = find(peer, &phase).and_then(|r| num(r, "ops_per_sec"));
            line.push_str(&format!(" {:>12}", ratio(mine, theirs)));
        }
        println!("{line}");
    }
    for (name, field) in [
        ("space", "space_bytes"),
        ("peak RSS", "peak_rss_bytes"),
        ("write-amp", "write_amp_total"),
    ] {
        let mut line = format!("{name:<19}");
        for peer in &peers {
            line.push_str(&format!(
                " {:>12}",
                ratio(num(&base.summary, field), num(&peer.summary, field))
            ));
        }
        println!("{line}");
    }
}
