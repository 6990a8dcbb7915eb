//! `ringkv-bench cluster`: a 3-member etcd cluster, then a 3-node ringkv cluster, on
//! loopback, each driven by the load generator of `driver.rs` at every concurrency
//! asked for: puts for a fixed time, then linearizable gets of keys the puts wrote.
//! The two clusters never run at the same time; each is stopped (its processes
//! killed) before the next starts.
//!
//! Durability is alike: etcd acknowledges a put after its raft log entry is fsynced on
//! a quorum (2 of 3); ringkv after its commit-log record is fsynced on a quorum of its
//! N = 3 replicas.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};
use serde_json::json;

use super::driver::{self, Keys, Op, Outcome, Phase, Proto, KEYSPACE, VALUE_BYTES};
use super::etcd::EtcdCluster;
use super::procs::{have, ringkv_binary, Cluster};
use crate::cli::ClusterArgs;

const MEMBERS: usize = 3;

struct Row {
    target: &'static str,
    concurrency: usize,
    /// Client connections to the members together.
    connections: usize,
    op: Op,
    ops_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    server_cpu_us_per_op: f64,
    client_cpu_us_per_op: f64,
    errors: u64,
    misses: u64,
}

fn row(target: &'static str, proto: Proto, phase: &Phase, o: &Outcome) -> Row {
    let per_op = |s: f64| {
        if o.ops == 0 {
            0.0
        } else {
            s * 1e6 / o.ops as f64
        }
    };
    let ms = |q: f64| o.hist.value_at_quantile(q) as f64 / 1000.0;
    Row {
        target,
        concurrency: phase.concurrency,
        connections: phase.connections(proto),
        op: phase.op,
        ops_per_s: o.ops as f64 / o.seconds,
        p50_ms: ms(0.50),
        p99_ms: ms(0.99),
        server_cpu_us_per_op: per_op(o.server_cpu_s),
        client_cpu_us_per_op: per_op(o.client_cpu_s),
        errors: o.errors,
        misses: o.misses,
    }
}

/// Puts then gets at every concurrency against one running cluster.
async fn drive(
    target: &'static str,
    proto: Proto,
    endpoints: &[String],
    pids: &[u32],
    args: &ClusterArgs,
    (warmup, measure): (Duration, Duration),
    rows: &mut Vec<Row>,
) -> Result<()> {
    driver::wait_ready(proto, endpoints).await?;
    let keys = Arc::new(Keys::default());
    for &concurrency in &args.concurrency {
        for op in [Op::Put, Op::Get] {
            let phase = Phase {
                op,
                concurrency,
                etcd_connections: args.etcd_connections,
                warmup,
                measure,
            };
            let outcome = driver::run_phase(proto, endpoints, &phase, &keys, pids).await?;
            let r = row(target, proto, &phase, &outcome);
            eprintln!(
                "  {target:<7} C={concurrency:<4} {:<7} {:>9.0} ops/s  p50 {:>7.2} ms  p99 {:>7.2} ms  \
                 {:>6.1} µs server CPU/op  {} errors{}",
                op.name(),
                r.ops_per_s,
                r.p50_ms,
                r.p99_ms,
                r.server_cpu_us_per_op,
                r.errors,
                outcome
                    .first_error
                    .as_deref()
                    .map(|e| format!(" (first: {e})"))
                    .unwrap_or_default(),
            );
            rows.push(r);
        }
    }
    Ok(())
}

pub fn run(args: &ClusterArgs) -> Result<()> {
    if !have("etcd") {
        bail!("needs etcd on the PATH (apt-get install etcd-server)");
    }
    if args.concurrency.contains(&0) {
        bail!("--concurrency must be at least 1");
    }
    let (warmup, measure) = if args.quick { (1.0, 3.0) } else { (2.0, 10.0) };
    let secs = |s: Option<f64>, default: f64| -> Result<Duration> {
        Duration::try_from_secs_f64(s.unwrap_or(default))
            .map_err(|e| anyhow::anyhow!("bad duration: {e}"))
    };
    let spans = (secs(args.warmup, warmup)?, secs(args.duration, measure)?);
    if spans.1.is_zero() {
        bail!("--duration must be positive");
    }
    let binary = ringkv_binary()?;
    let tmp = tempfile::Builder::new()
        .prefix("ringkv-bench-cluster-")
        .tempdir()?;
    eprintln!(
        "ringkv-bench cluster: {MEMBERS} members each, concurrency {:?} (one request in flight \
         per client, clients round-robin over the members), {:.0} s warm-up + {:.0} s per phase, \
         {VALUE_BYTES}-byte values, {KEYSPACE} keys, etcd {}; data in {}",
        args.concurrency,
        spans.0.as_secs_f64(),
        spans.1.as_secs_f64(),
        match args.etcd_connections {
            Some(k) => format!("clients sharing {k} gRPC connections"),
            None => "clients on one gRPC connection each".into(),
        },
        tmp.path().display()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut rows = Vec::new();
    {
        let etcd = EtcdCluster::start(&tmp.path().join("etcd"), MEMBERS)?;
        eprintln!("etcd ({} members):", MEMBERS);
        let pids = etcd.pids();
        runtime.block_on(drive(
            "etcd",
            Proto::Etcd,
            &etcd.endpoints,
            &pids,
            args,
            spans,
            &mut rows,
        ))?;
    } // etcd stops here, before ringkv starts
    {
        let cluster = Cluster::start(&binary, &tmp.path().join("ringkv"), MEMBERS, &[])?;
        eprintln!("ringkv ({} nodes):", MEMBERS);
        let endpoints: Vec<String> = cluster
            .resp_ports()
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        let pids = cluster.pids();
        runtime.block_on(drive(
            "ringkv",
            Proto::Resp,
            &endpoints,
            &pids,
            args,
            spans,
            &mut rows,
        ))?;
    }
    print(&rows, args.json);
    Ok(())
}

fn print(rows: &[Row], json: bool) {
    // ringkv's ops/s over etcd's at the same concurrency and operation.
    let ratio = |r: &Row| {
        if r.target == "etcd" {
            return None;
        }
        rows.iter()
            .find(|o| o.target == "etcd" && o.concurrency == r.concurrency && o.op == r.op)
            .filter(|o| o.ops_per_s > 0.0)
            .map(|o| r.ops_per_s / o.ops_per_s)
    };
    if json {
        for r in rows {
            println!(
                "{}",
                json!({ "target": r.target, "members": MEMBERS, "concurrency": r.concurrency,
                        "connections": r.connections,
                        "op": r.op.name(), "ops_per_s": r.ops_per_s,
                        "p50_ms": r.p50_ms, "p99_ms": r.p99_ms,
                        "server_cpu_us_per_op": r.server_cpu_us_per_op,
                        "client_cpu_us_per_op": r.client_cpu_us_per_op,
                        "errors": r.errors, "misses": r.misses,
                        "ratio_ringkv_etcd": ratio(r) })
            );
        }
        return;
    }
    println!(
        "target  conc conns op          ops/s   p50 ms   p99 ms  server CPU µs/op  client CPU µs/op  errors  ringkv ÷ etcd"
    );
    for r in rows {
        println!(
            "{:<7} {:>4} {:>5} {:<7} {:>10.0} {:>8.3} {:>8.3} {:>17.1} {:>17.1} {:>7} {:>14}",
            r.target,
            r.concurrency,
            r.connections,
            r.op.name(),
            r.ops_per_s,
            r.p50_ms,
            r.p99_ms,
            r.server_cpu_us_per_op,
            r.client_cpu_us_per_op,
            r.errors,
            ratio(r).map(|x| format!("{x:.2}")).unwrap_or_default(),
        );
    }
    let misses: u64 = rows.iter().map(|r| r.misses).sum();
    println!(
        "3 members each on loopback, run one after the other; writes acknowledged after an \
         fsync on a quorum in both. get-lin: etcd's default (linearizable) range request, \
         ringkv's RESP GET (linearizable). Server CPU: all member processes, user + system, \
         over the measured span; client CPU: this load generator (gRPC client for etcd, \
         RESP for ringkv), which shares the machine's cores with the servers.{}",
        if misses > 0 {
            format!(" {misses} gets found no value.")
        } else {
            String::new()
        }
    );
}
