//! ringkv-bench: `cargo run --release -p ringkv-bench -- engine [--quick] [--json]`, and
//! `... -- server [--quick] [--json]` (the ringkv server against redis-server), and
//! `... --features etcd -- cluster [--quick] [--json]` (3-member etcd against 3-node ringkv).
//!
//! The parent runs each engine in its own child process (this binary again, with the
//! hidden `engine-worker` subcommand) so that peak RSS, `/proc/self/io` counters and
//! background threads belong to that engine alone, then prints the comparison.

mod cli;
mod engines;
mod plot;
mod plot_scale;
mod report;
mod server;
mod sysinfo;
mod workload;
mod zipf;

use std::io::{BufRead, BufReader};
use std::process::{Command as Process, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Parser;
use serde_json::Value;

use cli::{Cli, Command, EngineArgs};
use report::EngineRun;

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Engine(args) => run_engines(&args),
        Command::EngineWorker(args) => workload::run_worker(&args),
        Command::Server(args) => server::run(&args),
        Command::Scale(args) => server::scale(&args),
        Command::Cluster(args) => server::cluster(&args),
    }
}

fn run_engines(args: &EngineArgs) -> Result<()> {
    let started = Instant::now();
    let sizes = args.sizes.resolve(args.quick);
    let names: Vec<String> = if args.engines.is_empty() {
        engines::ALL
            .iter()
            .filter(|n| engines::available(n))
            .map(|n| n.to_string())
            .collect()
    } else {
        args.engines.clone()
    };
    for name in &names {
        if !engines::available(name) {
            bail!(
                "engine {name} is not available (known: {})",
                engines::ALL.join(", ")
            );
        }
    }
    let tmp = match &args.dir {
        Some(dir) => tempfile::Builder::new()
            .prefix("ringkv-bench-")
            .tempdir_in(dir)?,
        None => tempfile::Builder::new().prefix("ringkv-bench-").tempdir()?,
    };
    eprintln!(
        "ringkv-bench engine: {} records, {} ops/workload, {} scan ops, {} durable puts, seed {}; data in {}",
        sizes.records,
        sizes.ops,
        sizes.scan_ops,
        sizes.durable_ops,
        sizes.seed,
        tmp.path().display()
    );

    let exe = std::env::current_exe().context("locating this binary to re-run it")?;
    let mut runs = Vec::new();
    for name in &names {
        eprintln!("{name}:");
        let t = Instant::now();
        let mut child = Process::new(&exe)
            .arg("engine-worker")
            .args(["--engine", name])
            .arg("--data-dir")
            .arg(tmp.path().join(name))
            .args(["--records", &sizes.records.to_string()])
            .args(["--ops", &sizes.ops.to_string()])
            .args(["--scan-ops", &sizes.scan_ops.to_string()])
            .args(["--durable-ops", &sizes.durable_ops.to_string()])
            .args(["--seed", &sizes.seed.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting the {name} worker"))?;
        let stdout = child.stdout.take().context("worker stdout")?;
        let mut rows = Vec::new();
        let mut summary = None;
        for line in BufReader::new(stdout).lines() {
            let value: Value = serde_json::from_str(&line?).context("worker output")?;
            if value.get("summary").is_some() {
                summary = Some(value);
            } else {
                rows.push(value);
            }
        }
        let status = child.wait()?;
        if !status.success() {
            bail!("the {name} worker failed: {status}");
        }
        // The worker's files go now, so the next engine starts on a quiet disk.
        let _ = std::fs::remove_dir_all(tmp.path().join(name));
        runs.push(EngineRun {
            engine: name.clone(),
            rows,
            summary: summary.with_context(|| format!("the {name} worker printed no summary"))?,
            wall_s: t.elapsed().as_secs_f64(),
        });
    }

    if args.json {
        report::print_json(&runs);
    } else {
        report::print_tables(&runs, &args.baseline);
    }
    if let Some(path) = &args.plot {
        plot::write_svg(&runs, path).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    eprintln!("total wall time {:.1}s", started.elapsed().as_secs_f64());
    Ok(())
}
