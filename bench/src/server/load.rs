//! Load from `redis-benchmark`, spread over every node of a target: one benchmark
//! process per node, started together, each with its share of the clients and the
//! requests. Throughput is all requests over the wall time of the slowest process;
//! the servers' CPU over the same span, divided by the requests, is the CPU each
//! operation cost (summed over the nodes: replication included).

use std::process::{Command, Output};
use std::time::Instant;

use anyhow::{bail, Context, Result};

use super::cpu::total_cpu_s;

/// Connections in all for `server`, split over the nodes.
pub const CLIENTS: u32 = 50;
pub const VALUE_BYTES: u32 = 100;
pub const KEYSPACE: u32 = 100_000;

#[derive(Debug, Clone)]
pub struct Row {
    pub target: String,
    pub nodes: usize,
    /// `SET` or `GET`.
    pub test: String,
    pub pipeline: u32,
    pub ops_per_s: f64,
    /// The median of the benchmark processes' medians.
    pub p50_ms: f64,
    /// The worst of their 99th percentiles.
    pub p99_ms: f64,
    /// Server CPU (every process of the target) per operation.
    pub cpu_us_per_op: f64,
}

pub struct Target<'a> {
    pub name: &'a str,
    pub ports: &'a [u16],
    /// The server processes whose CPU counts.
    pub pids: &'a [u32],
}

/// Runs `test` (`set` or `get`) against every port of `target` at once, with
/// `clients_per_node` connections to each node.
pub fn run(
    target: &Target,
    test: &str,
    pipeline: u32,
    requests: u32,
    clients_per_node: u32,
) -> Result<Row> {
    // Updates all go through one node, with every client: through one coordinator a
    // key's updates join its per-key batches; updates of one key through several
    // coordinators outbid each other, and one that loses after its accept reached a
    // replica answers INDETERMINATE, which stops redis-benchmark (random keys collide
    // often enough for that within a run; ARCHITECTURE.md, "Conditional writes").
    let (ports, clients_per_node) = match test {
        "incr" | "setnx" | "incr-hot" => (
            target.ports.get(..1).unwrap_or_default(),
            clients_per_node.saturating_mul(target.ports.len() as u32),
        ),
        _ => (target.ports, clients_per_node),
    };
    let n = ports.len() as u32;
    if n == 0 {
        bail!("{} has no nodes", target.name);
    }
    let clients = clients_per_node.max(1);
    let per_node = (requests / n).max(clients * pipeline);
    let cpu_before = total_cpu_s(target.pids)?;
    let started = Instant::now();
    let children = ports
        .iter()
        .map(|port| {
            Command::new("redis-benchmark")
                .args(["-h", "127.0.0.1", "-p", &port.to_string()])
                .args(["-n", &per_node.to_string(), "-c", &clients.to_string()])
                .args(["-P", &pipeline.to_string(), "-d", &VALUE_BYTES.to_string()])
                .args(["-r", &KEYSPACE.to_string(), "--csv"])
                .args(test_args(test)?)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .context("running redis-benchmark")
        })
        .collect::<Result<Vec<_>>>()?;
    let outputs = children
        .into_iter()
        .map(|c| c.wait_with_output().context("waiting for redis-benchmark"))
        .collect::<Result<Vec<_>>>()?;
    let wall_s = started.elapsed().as_secs_f64();
    let cpu_s = total_cpu_s(target.pids)? - cpu_before;
    let mut p50s = Vec::new();
    let mut p99 = 0.0f64;
    for out in &outputs {
        let (p50, p99_one) = parse(out, target.name)?;
        p50s.push(p50);
        p99 = p99.max(p99_one);
    }
    p50s.sort_by(f64::total_cmp);
    let total = f64::from(per_node * n);
    Ok(Row {
        target: target.name.to_string(),
        nodes: target.ports.len(),
        test: test.to_uppercase(),
        pipeline,
        ops_per_s: total / wall_s,
        p50_ms: p50s[p50s.len() / 2],
        p99_ms: p99,
        cpu_us_per_op: cpu_s * 1e6 / total,
    })
}

/// redis-benchmark's arguments for `test`: one of its own tests, or a command of ours.
fn test_args(test: &str) -> Result<Vec<String>> {
    let value = "v".repeat(VALUE_BYTES as usize);
    let args: Vec<&str> = match test {
        "set" | "get" | "incr" => vec!["-t", test],
        "setnx" => vec!["SET", "key:__rand_int__", &value, "NX"],
        "incr-hot" => vec!["INCR", "hot-counter"],
        other => bail!("unknown test {other:?} (set, get, incr, setnx, incr-hot)"),
    };
    Ok(args.into_iter().map(str::to_string).collect())
}

/// The p50 and p99 of one benchmark process's CSV.
fn parse(out: &Output, target: &str) -> Result<(f64, f64)> {
    if !out.status.success() {
        // redis-benchmark warns first (it cannot read a server's CONFIG); the error
        // reply that stopped it is the line worth reporting.
        let stderr = String::from_utf8_lossy(&out.stderr);
        let reason = stderr
            .lines()
            .find(|line| !line.trim().is_empty() && !line.starts_with("WARNING"))
            .unwrap_or(stderr.trim());
        bail!("redis-benchmark against {target}: {reason}");
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .context("empty redis-benchmark output")?
        .split(',')
        .map(|f| f.trim_matches('"').to_string())
        .collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .with_context(|| format!("redis-benchmark CSV has no {name} column"))
    };
    let (p50, p99) = (col("p50_latency_ms")?, col("p99_latency_ms")?);
    let line = lines.next().context("redis-benchmark printed no result")?;
    let fields: Vec<&str> = line.split(',').map(|f| f.trim_matches('"')).collect();
    let get = |i: usize| -> Result<f64> {
        fields
            .get(i)
            .context("short redis-benchmark row")?
            .parse::<f64>()
            .context("redis-benchmark latency is not a number")
    };
    Ok((get(p50)?, get(p99)?))
}
