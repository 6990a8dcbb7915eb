//! `ringkv-bench server` and `ringkv-bench scale`: ringkv processes on loopback under
//! `redis-benchmark` load, with the CPU each operation costs the servers.
//!
//! `server`: redis (`appendfsync everysec`, and `always`: every write fsynced before
//! its reply, the promise a ringkv node makes), one ringkv node, and a 3-node ringkv
//! cluster (N = 3, linearizable, clients spread over all nodes), SET then GET at
//! pipeline 1 and 16. ringkv acknowledges a SET only after its commit-log record is
//! fsynced on a quorum of replicas (group commit: one fsync per committer group).
//!
//! `scale`: clusters of 3, 6 and 9 ringkv processes, each confined to the same CPU
//! quota by a cgroup (a process stands in for a machine), clients spread over all
//! nodes; aggregate SET/GET throughput and its ratio to 3 nodes. `--shards 1,2` runs
//! every size with processes of 1 and of 2 shards (`ringkv serve --shards`), the quota
//! scaled with the shard count, so shards within a process are compared the same way.
//!
//! `cluster` (only with `--features etcd`): a 3-member etcd cluster and a 3-node ringkv
//! cluster, one after the other, under the same tokio load generator (etcd over gRPC
//! through `etcd-client`, ringkv over RESP) at the same concurrency; puts, then
//! linearizable gets.
//!
//! The ringkv binary is built (same profile as this one) before anything runs.

mod cgroup;
#[cfg(feature = "etcd")]
mod cluster;
mod cpu;
#[cfg(feature = "etcd")]
mod driver;
#[cfg(feature = "etcd")]
mod etcd;
pub mod load;
mod procs;
#[cfg(feature = "etcd")]
mod resp;

use std::path::Path;

use anyhow::{bail, Context as _, Result};
use serde_json::json;

use crate::cli::{ClusterArgs, ScaleArgs, ServerArgs};
use cgroup::CpuGroup;
use load::{Row, Target, CLIENTS, KEYSPACE, VALUE_BYTES};
use procs::{free_port, have, redis, ringkv_binary, Cluster, Fsync};

fn need_redis_tools() -> Result<()> {
    if !have("redis-server") || !have("redis-benchmark") {
        bail!("needs redis-server and redis-benchmark (apt-get install redis-server redis-tools)");
    }
    Ok(())
}

/// `tests` in order (by default SET then GET: GET reads what SET wrote) at
/// `pipeline`, `clients_per_node` connections to each node.
fn set_get(
    target: &Target,
    tests: &[String],
    pipeline: u32,
    requests: u32,
    clients_per_node: u32,
    rows: &mut Vec<Row>,
) -> Result<()> {
    for test in tests {
        let row = load::run(target, test, pipeline, requests, clients_per_node)?;
        eprintln!(
            "  {:<16} {} P{:<2} {:>9.0} ops/s  {:>6.1} µs CPU/op",
            row.target, row.test, row.pipeline, row.ops_per_s, row.cpu_us_per_op
        );
        rows.push(row);
    }
    Ok(())
}

fn requests(quick: bool, pipeline: u32) -> u32 {
    match (quick, pipeline) {
        (true, 1) => 20_000,
        (true, _) => 100_000,
        (false, 1) => 100_000,
        (false, _) => 500_000,
    }
}

fn redis_target(
    dir: &Path,
    name: &str,
    fsync: Fsync,
    tests: &[String],
    quick: bool,
    rows: &mut Vec<Row>,
) -> Result<()> {
    let port = free_port()?;
    let server = redis(&dir.join(name), port, fsync)?;
    let (ports, pids) = ([port], [server.pid()]);
    let target = Target {
        name,
        ports: &ports,
        pids: &pids,
    };
    for pipeline in [1, 16] {
        set_get(
            &target,
            tests,
            pipeline,
            requests(quick, pipeline),
            CLIENTS,
            rows,
        )?;
    }
    Ok(())
}

pub fn run(args: &ServerArgs) -> Result<()> {
    need_redis_tools()?;
    let binary = ringkv_binary()?;
    let tmp = tempfile::Builder::new()
        .prefix("ringkv-bench-server-")
        .tempdir()?;
    eprintln!(
        "ringkv-bench server: {CLIENTS} clients, {VALUE_BYTES}-byte values, {KEYSPACE} keys; data in {}",
        tmp.path().display()
    );
    let mut rows = Vec::new();
    let tests = &args.tests;
    redis_target(
        tmp.path(),
        "redis",
        Fsync::EverySec,
        tests,
        args.quick,
        &mut rows,
    )?;
    redis_target(
        tmp.path(),
        "redis-always",
        Fsync::Always,
        tests,
        args.quick,
        &mut rows,
    )?;
    for (name, n) in [("ringkv", 1), ("ringkv-3-nodes", 3)] {
        let cluster = Cluster::start(&binary, &tmp.path().join(name), n, &[])?;
        let (ports, pids) = (cluster.resp_ports(), cluster.pids());
        let target = Target {
            name,
            ports: &ports,
            pids: &pids,
        };
        for pipeline in [1, 16] {
            let clients_per_node = (CLIENTS / n as u32).max(1);
            set_get(
                &target,
                tests,
                pipeline,
                requests(args.quick, pipeline),
                clients_per_node,
                &mut rows,
            )?;
        }
    }
    let ratio = |r: &Row, base: &str| {
        rows.iter()
            .find(|o| o.target == base && o.test == r.test && o.pipeline == r.pipeline)
            .filter(|o| o.ops_per_s > 0.0 && r.target != base)
            .map(|o| r.ops_per_s / o.ops_per_s)
    };
    if args.json {
        for r in &rows {
            println!(
                "{}",
                json!({ "target": r.target, "nodes": r.nodes, "test": r.test,
                        "pipeline": r.pipeline, "ops_per_s": r.ops_per_s,
                        "p50_ms": r.p50_ms, "p99_ms": r.p99_ms,
                        "cpu_us_per_op": r.cpu_us_per_op,
                        "ratio_redis": ratio(r, "redis"),
                        "ratio_redis_always": ratio(r, "redis-always") })
            );
        }
        return Ok(());
    }
    println!(
        "target          test      P      ops/s   p50 ms   p99 ms  CPU µs/op  ÷ redis  ÷ redis-always"
    );
    let show = |x: Option<f64>| x.map(|x| format!("{x:.2}")).unwrap_or_default();
    for r in &rows {
        println!(
            "{:<15} {:<8} {:>2} {:>10.0} {:>8.3} {:>8.3} {:>10.1} {:>8} {:>15}",
            r.target,
            r.test,
            r.pipeline,
            r.ops_per_s,
            r.p50_ms,
            r.p99_ms,
            r.cpu_us_per_op,
            show(ratio(r, "redis")),
            show(ratio(r, "redis-always")),
        );
    }
    println!(
        "durability: redis appendfsync everysec acknowledges before fsync; redis-always and \
         ringkv after it (ringkv: on a quorum of N = 3 replicas for ringkv-3-nodes). \
         CPU µs/op: server processes' user + system time over the run, summed over nodes."
    );
    Ok(())
}

pub fn scale(args: &ScaleArgs) -> Result<()> {
    if let (Some(from), Some(plot)) = (&args.plot_from, &args.plot) {
        return replot(args, from, plot);
    }
    need_redis_tools()?;
    let binary = ringkv_binary()?;
    let tmp = tempfile::Builder::new()
        .prefix("ringkv-bench-scale-")
        .tempdir()?;
    let pipeline = args.pipeline;
    let requests_per_node = if args.quick { 20_000 } else { 100_000 };
    eprintln!(
        "ringkv-bench scale: {} CPU per shard (cgroup v1 quota per process), {}, pipeline \
         {pipeline}, {VALUE_BYTES}-byte values; data in {}",
        args.cpus,
        args.load_description(),
        tmp.path().display()
    );
    // (shards per process, row) and (nodes, shards, why) of sizes that failed.
    let mut rows: Vec<(u32, Row)> = Vec::new();
    let mut failures: Vec<(usize, u32, String)> = Vec::new();
    for &shards in &args.shards {
        let cpus = args.cpus * f64::from(shards.max(1));
        for &n in &args.nodes {
            let groups = (0..n)
                .map(|i| {
                    CpuGroup::create(&format!("ringkv-bench-{}-n{i}", std::process::id()), cpus)
                })
                .collect::<Result<Vec<_>>>()?;
            let name = if shards > 1 {
                format!("ringkv-{n}-nodes-{shards}-shards")
            } else {
                format!("ringkv-{n}-nodes")
            };
            let mut taken = Vec::new();
            {
                let cluster =
                    Cluster::start_sharded(&binary, &tmp.path().join(&name), n, shards, &groups)?;
                let (ports, pids) = (cluster.resp_ports(), cluster.pids());
                let target = Target {
                    name: &name,
                    ports: &ports,
                    pids: &pids,
                };
                // redis-benchmark stops at the first error reply (an overloaded cluster
                // answers INDETERMINATE past its request timeout); that size's row says
                // so and the larger sizes still run.
                let clients_per_node = args.clients_per_node(n);
                if let Err(error) = set_get(
                    &target,
                    &["set".to_string(), "get".to_string()],
                    pipeline,
                    requests_per_node * n as u32,
                    clients_per_node,
                    &mut taken,
                ) {
                    let reason = format!("{error:#}")
                        .lines()
                        .next()
                        .unwrap_or("")
                        .to_string();
                    eprintln!("  {name}: failed: {reason}");
                    failures.push((n, shards, reason));
                }
            } // the cluster stops before its cgroups are removed
            drop(groups);
            rows.extend(taken.into_iter().map(|row| (shards, row)));
        }
    }
    // Each row against the smallest cluster of the fewest shards, same test.
    let base = |r: &Row| {
        rows.iter()
            .filter(|(_, o)| o.test == r.test)
            .min_by_key(|(s, o)| (*s, o.nodes))
            .filter(|(_, o)| o.ops_per_s > 0.0)
            .map(|(_, o)| r.ops_per_s / o.ops_per_s)
    };
    if let Some(path) = &args.plot {
        let title = format!(
            "ringkv-bench scale: {} CPU per shard, {}, pipeline {pipeline}",
            args.cpus,
            args.load_description()
        );
        crate::plot_scale::write_svg(&rows, &title, path)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("chart written to {}", path.display());
    }
    if args.json {
        for (shards, r) in &rows {
            println!(
                "{}",
                json!({ "target": r.target, "nodes": r.nodes, "shards": shards,
                        "cpus_per_node": args.cpus * f64::from(*shards),
                        "clients": args.clients_per_node(r.nodes) as usize * r.nodes,
                        "test": r.test, "pipeline": r.pipeline, "ops_per_s": r.ops_per_s,
                        "p50_ms": r.p50_ms, "p99_ms": r.p99_ms,
                        "cpu_us_per_op": r.cpu_us_per_op,
                        "ratio_to_smallest": base(r) })
            );
        }
        for (n, shards, reason) in &failures {
            println!(
                "{}",
                json!({ "nodes": n, "shards": shards,
                        "cpus_per_node": args.cpus * f64::from(*shards), "failed": reason })
            );
        }
        return Ok(());
    }
    println!(
        "nodes shards  CPUs clients test       ops/s  × smallest   p50 ms   p99 ms  CPU µs/op"
    );
    for (shards, r) in &rows {
        let ratio = base(r).map(|x| format!("{x:.2}")).unwrap_or_default();
        let clients = args.clients_per_node(r.nodes) as usize * r.nodes;
        println!(
            "{:>5} {:>6} {:>5.2} {:>7} {:<4} {:>11.0} {:>11} {:>8.3} {:>8.3} {:>10.1}",
            r.nodes,
            shards,
            args.cpus * f64::from(*shards),
            clients,
            r.test,
            r.ops_per_s,
            ratio,
            r.p50_ms,
            r.p99_ms,
            r.cpu_us_per_op
        );
    }
    for (n, shards, reason) in &failures {
        println!("{n:>5} {shards:>6} failed: {reason}");
    }
    println!(
        "each node one process (of the given shards, each a ring member on its own \
         thread) confined to the CPUs shown; N = 3; the node a client reaches coordinates, \
         through the shard that is a replica of the key when it has one (no forwarding \
         to another process yet)."
    );
    Ok(())
}

/// Charts the rows of an earlier `scale --json` run (failed sizes skipped).
fn replot(args: &ScaleArgs, from: &std::path::Path, plot: &std::path::Path) -> Result<()> {
    let text =
        std::fs::read_to_string(from).with_context(|| format!("reading {}", from.display()))?;
    let mut rows = Vec::new();
    for line in text.lines().filter(|l| l.trim_start().starts_with('{')) {
        let v: serde_json::Value =
            serde_json::from_str(line).with_context(|| format!("a row of {}", from.display()))?;
        if v.get("failed").is_some() {
            continue;
        }
        let number = |field: &str| {
            v[field]
                .as_f64()
                .with_context(|| format!("row without {field}: {line}"))
        };
        let shards = v["shards"].as_u64().unwrap_or(1) as u32;
        rows.push((
            shards,
            Row {
                target: v["target"].as_str().unwrap_or("ringkv").to_string(),
                nodes: number("nodes")? as usize,
                test: v["test"].as_str().unwrap_or("?").to_string(),
                pipeline: number("pipeline")? as u32,
                ops_per_s: number("ops_per_s")?,
                p50_ms: number("p50_ms")?,
                p99_ms: number("p99_ms")?,
                cpu_us_per_op: number("cpu_us_per_op")?,
            },
        ));
    }
    let title = format!(
        "ringkv-bench scale: {} CPU per shard, {}, pipeline {}",
        args.cpus,
        args.load_description(),
        args.pipeline
    );
    crate::plot_scale::write_svg(&rows, &title, plot)
        .with_context(|| format!("writing {}", plot.display()))?;
    eprintln!("chart of {} rows written to {}", rows.len(), plot.display());
    Ok(())
}

/// `ringkv-bench cluster`: etcd against ringkv (see `cluster.rs`).
#[cfg(feature = "etcd")]
pub fn cluster(args: &ClusterArgs) -> Result<()> {
    cluster::run(args)
}

/// Without the `etcd` feature there is no gRPC client to drive etcd with: say how to
/// get one rather than measure half the comparison.
#[cfg(not(feature = "etcd"))]
pub fn cluster(_args: &ClusterArgs) -> Result<()> {
    bail!(
        "`ringkv-bench cluster` needs the `etcd` feature (etcd-client, tonic and prost, \
         whose build needs protoc: apt-get install protobuf-compiler etcd-server); run \
         `cargo run --release -p ringkv-bench --features etcd -- cluster`"
    )
}
