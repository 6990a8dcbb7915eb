//! `ringkv-bench server [--quick] [--json]`: one ringkv node and `redis-server` side by
//! side in one run, both driven by `redis-benchmark` (SET and GET, 50 clients, pipeline
//! 1 and 16), then a 3-node ringkv cluster (linearizable SET/GET through one node).
//!
//! Durability differs, and the table says so: redis runs `appendonly yes, appendfsync
//! everysec` (a write is acknowledged before it is on disk; up to a second of writes can
//! be lost), ringkv acknowledges a SET only after its commit-log record is fsynced on a
//! quorum of replicas (group commit: one fsync per node-thread turn).
//!
//! The ringkv binary is built (`cargo build --release -p ringkv`) if it is not already
//! next to this one.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::json;

use crate::cli::ServerArgs;

const CLIENTS: u32 = 50;
const VALUE_BYTES: u32 = 100;
const KEYSPACE: u32 = 100_000;
const SECRET: &str = "ringkv-bench-cluster-secret";

struct Row {
    target: String,
    test: String,
    pipeline: u32,
    ops: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// Kills the child when dropped (also on errors).
struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn ringkv_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating this binary")?;
    let dir = exe.parent().context("binary directory")?;
    let ringkv = dir.join("ringkv");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let profile = if dir.ends_with("release") {
        "--release"
    } else {
        "--profile=dev"
    };
    eprintln!("building ringkv ({profile})");
    // The target directory this binary lives in, so ringkv lands next to it.
    let target_dir = dir.parent().context("target directory")?;
    let status = Command::new(cargo)
        .args(["build", "-p", "ringkv", profile])
        .arg("--manifest-path")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir)
        .status()
        .context("running cargo build -p ringkv")?;
    if !status.success() || !ringkv.exists() {
        bail!("could not build {}", ringkv.display());
    }
    Ok(ringkv)
}

/// Waits until `port` answers PING (RESP).
fn wait_ping(port: u16, what: &str) -> Result<()> {
    use std::io::{Read, Write};
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = [0u8; 7];
            if s.write_all(b"PING\r\n").is_ok()
                && s.read_exact(&mut buf).is_ok()
                && &buf == b"+PONG\r\n"
            {
                return Ok(());
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("{what} on port {port} never answered PING")
}

fn redis(dir: &Path, port: u16) -> Result<Proc> {
    std::fs::create_dir_all(dir)?;
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args([
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
        ])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting redis-server")?;
    Ok(Proc(child))
}

struct NodePorts {
    ws: u16,
    resp: u16,
    http: u16,
}

fn ringkv_nodes(binary: &Path, dir: &Path, n: usize) -> Result<(Vec<Proc>, Vec<NodePorts>)> {
    let ports: Vec<NodePorts> = (0..n)
        .map(|_| {
            Ok(NodePorts {
                ws: free_port()?,
                resp: free_port()?,
                http: free_port()?,
            })
        })
        .collect::<Result<_>>()?;
    let members: Vec<String> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| format!("n{}@127.0.0.1:{}", i + 1, p.ws))
        .collect();
    let mut procs = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        let mut command = Command::new(binary);
        command
            .args(["serve", "--node-id", &format!("n{}", i + 1)])
            .args(["--listen", &format!("127.0.0.1:{}", p.ws)])
            .args(["--resp", &format!("127.0.0.1:{}", p.resp)])
            .args(["--http", &format!("127.0.0.1:{}", p.http)])
            .arg("--data-dir")
            .arg(dir.join(format!("n{}", i + 1)))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if n > 1 {
            command.args(["--member", &members.join(","), "--cluster-secret", SECRET]);
        }
        procs.push(Proc(command.spawn().context("starting ringkv")?));
    }
    for p in &ports {
        wait_ping(p.resp, "ringkv")?;
    }
    Ok((procs, ports))
}

/// One redis-benchmark run: SET and GET rows.
fn bench(target: &str, port: u16, pipeline: u32, requests: u32) -> Result<Vec<Row>> {
    let out = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-t", "set,get"])
        .args(["-n", &requests.to_string(), "-c", &CLIENTS.to_string()])
        .args(["-P", &pipeline.to_string(), "-d", &VALUE_BYTES.to_string()])
        .args(["-r", &KEYSPACE.to_string(), "--csv"])
        .output()
        .context("running redis-benchmark")?;
    if !out.status.success() {
        bail!(
            "redis-benchmark against {target}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .context("empty redis-benchmark output")?
        .split(',')
        .map(|f| f.trim_matches('"').to_string())
        .collect();
    let col = |name: &str| header.iter().position(|h| h == name);
    let (rps, p50, p99) = (col("rps"), col("p50_latency_ms"), col("p99_latency_ms"));
    let mut rows = Vec::new();
    for line in lines {
        let fields: Vec<&str> = line.split(',').map(|f| f.trim_matches('"')).collect();
        let get = |i: Option<usize>| {
            i.and_then(|i| fields.get(i))
                .and_then(|f| f.parse::<f64>().ok())
        };
        rows.push(Row {
            target: target.into(),
            test: fields.first().unwrap_or(&"?").to_string(),
            pipeline,
            ops: get(rps).unwrap_or(0.0),
            p50_ms: get(p50).unwrap_or(0.0),
            p99_ms: get(p99).unwrap_or(0.0),
        });
    }
    eprintln!(
        "  {target:<16} P{pipeline:<2} {}",
        rows.iter()
            .map(|r| format!("{} {:.0} ops/s", r.test, r.ops))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(rows)
}

pub fn run(args: &ServerArgs) -> Result<()> {
    if !have("redis-server") || !have("redis-benchmark") {
        bail!("needs redis-server and redis-benchmark (apt-get install redis-server redis-tools)");
    }
    let binary = ringkv_binary()?;
    let tmp = tempfile::Builder::new()
        .prefix("ringkv-bench-server-")
        .tempdir()?;
    let requests = |pipeline: u32| match (args.quick, pipeline) {
        (true, 1) => 20_000,
        (true, _) => 100_000,
        (false, 1) => 100_000,
        (false, _) => 500_000,
    };
    let mut rows = Vec::new();
    eprintln!(
        "ringkv-bench server: {CLIENTS} clients, {VALUE_BYTES}-byte values, {KEYSPACE} keys; data in {}",
        tmp.path().display()
    );
    {
        let redis_port = free_port()?;
        let _redis = redis(&tmp.path().join("redis"), redis_port)?;
        wait_ping(redis_port, "redis-server")?;
        let (_node, ports) = ringkv_nodes(&binary, &tmp.path().join("single"), 1)?;
        for pipeline in [1, 16] {
            rows.extend(bench("redis", redis_port, pipeline, requests(pipeline))?);
            rows.extend(bench(
                "ringkv",
                ports[0].resp,
                pipeline,
                requests(pipeline),
            )?);
        }
    }
    {
        let (_nodes, ports) = ringkv_nodes(&binary, &tmp.path().join("cluster"), 3)?;
        for pipeline in [1, 16] {
            rows.extend(bench(
                "ringkv-3-nodes",
                ports[0].resp,
                pipeline,
                requests(pipeline),
            )?);
        }
    }
    if args.json {
        for r in &rows {
            println!(
                "{}",
                json!({ "target": r.target, "test": r.test, "pipeline": r.pipeline,
                        "ops_per_s": r.ops, "p50_ms": r.p50_ms, "p99_ms": r.p99_ms })
            );
        }
        return Ok(());
    }
    println!("target          test pipeline      ops/s   p50 ms   p99 ms   ÷ redis");
    for r in &rows {
        let redis = rows
            .iter()
            .find(|o| o.target == "redis" && o.test == r.test && o.pipeline == r.pipeline)
            .map(|o| o.ops);
        let ratio = match redis {
            Some(base) if base > 0.0 && r.target != "redis" => format!("{:.2}", r.ops / base),
            _ => "".into(),
        };
        println!(
            "{:<15} {:<4} {:>8} {:>10.0} {:>8.3} {:>8.3}   {ratio}",
            r.target, r.test, r.pipeline, r.ops, r.p50_ms, r.p99_ms
        );
    }
    println!(
        "durability: redis appendonly yes + appendfsync everysec (acknowledged before fsync); \
         ringkv acknowledges after the commit-log fsync on a quorum"
    );
    Ok(())
}
