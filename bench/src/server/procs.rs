//! Starting and stopping the processes a server benchmark drives: redis-server and
//! ringkv nodes on loopback, each killed when its handle drops (also on errors).

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::cgroup::CpuGroup;

const SECRET: &str = "ringkv-bench-cluster-secret";
/// How long a started server may take to answer PING.
const STARTUP_TIMEOUT_S: u64 = 60;

/// Kills the child when dropped.
pub struct Proc(pub Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

pub fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The `ringkv` binary next to this one, built first (same profile) so a bench never
/// measures a stale build; or `RINGKV_BENCH_BIN` if set (A/B runs of two builds).
pub fn ringkv_binary() -> Result<PathBuf> {
    // A given binary instead (A/B runs of two builds with the same bench).
    if let Some(path) = std::env::var_os("RINGKV_BENCH_BIN") {
        let path = PathBuf::from(path);
        if !path.exists() {
            bail!("RINGKV_BENCH_BIN={} does not exist", path.display());
        }
        eprintln!("using ringkv binary {}", path.display());
        return Ok(path);
    }
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
pub fn wait_ping(port: u16, what: &str) -> Result<()> {
    use std::io::{Read, Write};
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(STARTUP_TIMEOUT_S) {
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

/// When redis fsyncs its append-only file.
#[derive(Debug, Clone, Copy)]
pub enum Fsync {
    /// Once a second, in the background: a write is acknowledged before it is on disk.
    EverySec,
    /// Before every reply: the promise ringkv makes (per node).
    Always,
}

impl Fsync {
    fn arg(self) -> &'static str {
        match self {
            Fsync::EverySec => "everysec",
            Fsync::Always => "always",
        }
    }
}

pub fn redis(dir: &Path, port: u16, fsync: Fsync) -> Result<Proc> {
    std::fs::create_dir_all(dir)?;
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--appendonly", "yes", "--appendfsync", fsync.arg()])
        .args(["--save", ""])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting redis-server")?;
    let proc = Proc(child);
    wait_ping(port, "redis-server")?;
    Ok(proc)
}

pub struct NodePorts {
    pub ws: u16,
    pub resp: u16,
    pub http: u16,
}

/// A ringkv cluster of `n` nodes on loopback (each its own process), every process in
/// `group` when one is given (each node then stands in for a machine of that CPU).
pub struct Cluster {
    pub procs: Vec<Proc>,
    pub ports: Vec<NodePorts>,
}

impl Cluster {
    pub fn start(binary: &Path, dir: &Path, n: usize, groups: &[CpuGroup]) -> Result<Self> {
        Self::start_sharded(binary, dir, n, 1, groups)
    }

    /// `n` processes of `shards` ring members each (`ringkv serve --shards`).
    pub fn start_sharded(
        binary: &Path,
        dir: &Path,
        n: usize,
        shards: u32,
        groups: &[CpuGroup],
    ) -> Result<Self> {
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
            if n > 1 || shards > 1 {
                command.args(["--member", &members.join(","), "--cluster-secret", SECRET]);
            }
            if shards > 1 {
                command.args(["--shards", &shards.to_string()]);
            }
            let proc = Proc(command.spawn().context("starting ringkv")?);
            if let Some(group) = groups.get(i) {
                group.add(proc.pid())?;
            }
            procs.push(proc);
        }
        for p in &ports {
            wait_ping(p.resp, "ringkv")?;
        }
        Ok(Self { procs, ports })
    }

    pub fn resp_ports(&self) -> Vec<u16> {
        self.ports.iter().map(|p| p.resp).collect()
    }

    pub fn pids(&self) -> Vec<u32> {
        self.procs.iter().map(Proc::pid).collect()
    }
}
