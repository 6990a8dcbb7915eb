//! Real `ringkv` processes on loopback for the integration tests, and a tiny RESP
//! client. Waits are bounded (a node that never becomes healthy fails the test) but
//! nothing asserts on timing.
#![allow(dead_code)] // each test file uses a different part

pub mod counter;
pub mod load;
pub mod peer;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const SECRET: &str = "integration-test-cluster-secret";

/// The `ringkv` binary every process test runs: `$RINGKV_BIN` when set (`scripts/test`
/// builds one optimized binary per run, in the `proc-test` profile, for every
/// process-level suite), else the one cargo built with these tests.
pub fn ringkv_bin() -> PathBuf {
    std::env::var_os("RINGKV_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_ringkv")))
}

/// A port that is free now, below the ephemeral range (32768+ on Linux) so outgoing
/// connections of other tests cannot take it before the node binds it. Each test
/// process walks its own sequence from a random base.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    // A random start per process (pid and clock), so concurrent test processes
    // (nextest) rarely walk the same ports; `bind` skips ports in use.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let start = (std::process::id().wrapping_mul(7_919) ^ nanos) % 12_000;
    let _ = NEXT.compare_exchange(0, 20_000 + start as u16, Ordering::SeqCst, Ordering::SeqCst);
    loop {
        let port = NEXT.fetch_add(1, Ordering::SeqCst);
        let port = 20_000 + port.wrapping_sub(20_000) % 12_000;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

pub struct NodeProc {
    pub id: u64,
    pub ws: String,
    pub resp: String,
    pub http: String,
    pub dir: PathBuf,
    pub args: Vec<String>,
    /// Extra environment of the process (e.g. an `LD_PRELOAD` fault shim).
    pub env: Vec<(String, String)>,
    /// A command the binary runs under, given the binary and `args` after its own
    /// arguments (e.g. `unshare -u sh -c 'hostname ringkv-0 && exec "$0" "$@"'`).
    pub wrapper: Vec<String>,
    child: Option<Child>,
}

impl NodeProc {
    /// Node `n{id}` on `ports` with its data in `dir`, not started: the flags every test
    /// node shares plus `extra`.
    pub fn new(id: u64, ports: Ports, dir: PathBuf, extra: &[&str]) -> NodeProc {
        let mut args = serve_args(id, &ports, &dir);
        args.extend(extra.iter().map(|s| s.to_string()));
        NodeProc {
            id,
            ws: format!("127.0.0.1:{}", ports.ws),
            resp: format!("127.0.0.1:{}", ports.resp),
            http: format!("127.0.0.1:{}", ports.http),
            dir,
            args,
            env: Vec::new(),
            wrapper: Vec::new(),
            child: None,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("running").id() as i32
    }

    pub fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.with_extension("log"))
            .expect("log file");
        let mut command = match self.wrapper.split_first() {
            Some((program, wrapper_args)) => {
                let mut command = Command::new(program);
                command.args(wrapper_args).arg(ringkv_bin());
                command
            }
            None => Command::new(ringkv_bin()),
        };
        let child = command
            .args(&self.args)
            .env("RUST_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn ringkv");
        self.child = Some(child);
    }

    pub fn wait_healthy(&mut self) {
        let start = Instant::now();
        let tls = self.args.iter().any(|a| a == "--tls-cert");
        while start.elapsed() < Duration::from_secs(60) {
            // Over TLS the health endpoint is HTTPS: wait for the "serving" log line.
            let ready = if tls {
                self.log().contains("ringkv serving")
            } else {
                http_get(&self.http, "/health").is_some_and(|r| r.starts_with("HTTP/1.1 200"))
            };
            if ready {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("node {} exited ({status}); log:\n{}", self.id, self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("node {} never became healthy; log: {}", self.id, self.log());
    }

    /// Waits until this node's `/status` shows it a member of a `members`-node cluster
    /// with no membership change in progress.
    pub fn wait_member_of(&mut self, members: usize) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(60) {
            let status = http_get(&self.http, "/status")
                .and_then(|r| r.split_once("\r\n\r\n").map(|(_, body)| body.to_string()))
                .and_then(|body| serde_json::from_str::<serde_json::Value>(&body).ok());
            if let Some(status) = status {
                if status["role"] == "member"
                    && status["members"].as_array().map(Vec::len) == Some(members)
                    && status["membership"]["pending_version"].is_null()
                {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "node {} never joined a {members}-node cluster; log:\n{}",
            self.id,
            self.log()
        );
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.with_extension("log")).unwrap_or_default()
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on a child we spawned and have not reaped.
        unsafe {
            libc::kill(self.pid(), signal);
        }
    }

    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits for the exit.
    pub fn terminate(&mut self) -> ExitStatus {
        self.signal(libc::SIGTERM);
        let mut child = self.child.take().expect("running");
        child.wait().expect("wait")
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    pub fn resp(&self) -> Resp {
        Resp::connect(&self.resp)
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub struct Cluster {
    pub nodes: Vec<NodeProc>,
    pub dir: tempfile::TempDir,
    /// Flags every node `add_joiner` starts gets besides the shared ones.
    pub joiner_extra: Vec<String>,
}

/// Ports of one node: peer/client WebSocket, RESP, HTTP.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub ws: u16,
    pub resp: u16,
    pub http: u16,
}

pub fn plan(n: usize) -> Vec<Ports> {
    (0..n)
        .map(|_| Ports {
            ws: free_port(),
            resp: free_port(),
            http: free_port(),
        })
        .collect()
}

impl Cluster {
    /// `n` nodes with one static member list; `extra` flags go to every node.
    pub fn start(n: u64, extra: &[&str]) -> Cluster {
        let ports = plan(n as usize);
        Cluster::launch(&ports, extra, &|_, _| None, false, n as usize)
    }

    /// `n` nodes given one shared `--seed` list: the first starts the cluster, the
    /// others join it. Returns once every node is a member of an `n`-node cluster.
    pub fn start_seeded(n: u64, extra: &[&str]) -> Cluster {
        let ports = plan(n as usize);
        let mut cluster = Cluster::launch(&ports, extra, &|_, _| None, true, n as usize);
        for node in &mut cluster.nodes {
            node.wait_member_of(n as usize);
        }
        cluster
    }

    /// Starts nodes on `ports`. Node `i` dials node `j` at `address(i, j)` when that is
    /// `Some` (`--peer-address`: tests put a fault-injecting proxy there). `seeded`:
    /// nodes join through a shared seed list instead of a static member list.
    pub fn launch(
        ports: &[Ports],
        extra: &[&str],
        address: &dyn Fn(usize, usize) -> Option<String>,
        seeded: bool,
        planned: usize,
    ) -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let n = ports.len();
        let mut nodes = Vec::new();
        for (i, p) in ports.iter().enumerate() {
            let id = i as u64 + 1;
            let node_dir = dir.path().join(format!("n{id}"));
            let mut args = serve_args(id, p, &node_dir);
            if n > 1 && seeded {
                let seeds: Vec<String> = ports
                    .iter()
                    .map(|q| format!("127.0.0.1:{}", q.ws))
                    .collect();
                args.push("--seed".into());
                args.push(seeds.join(","));
            } else if n > 1 {
                let members: Vec<String> = ports
                    .iter()
                    .enumerate()
                    .map(|(j, q)| format!("n{}@127.0.0.1:{}", j + 1, q.ws))
                    .collect();
                args.push("--member".into());
                args.push(members.join(","));
            }
            for j in (0..n.max(planned)).filter(|j| *j != i) {
                if let Some(at) = address(i, j) {
                    args.push("--peer-address".into());
                    args.push(format!("n{}={at}", j + 1));
                }
            }
            args.extend(extra.iter().map(|s| s.to_string()));
            let mut node = NodeProc::new(id, *p, node_dir, &[]);
            node.args = args;
            node.start();
            nodes.push(node);
        }
        for node in &mut nodes {
            node.wait_healthy();
        }
        Cluster {
            nodes,
            dir,
            joiner_extra: Vec::new(),
        }
    }
}

/// `ringkv serve` for node `n{id}` on `ports` with its data in `dir`: the arguments every
/// test node shares (the cluster secret, a short request timeout).
fn serve_args(id: u64, ports: &Ports, dir: &std::path::Path) -> Vec<String> {
    vec![
        "serve".into(),
        "--node-id".into(),
        format!("n{id}"),
        "--listen".into(),
        format!("127.0.0.1:{}", ports.ws),
        "--resp".into(),
        format!("127.0.0.1:{}", ports.resp),
        "--http".into(),
        format!("127.0.0.1:{}", ports.http),
        "--data-dir".into(),
        dir.display().to_string(),
        "--cluster-secret".into(),
        SECRET.into(),
        "--request-timeout-ms".into(),
        "500".into(),
    ]
}

impl Cluster {
    /// Starts node `index` (0-based) of a running cluster: it joins through `seeds`,
    /// dialing peer `j` at `address(j)` when `Some`.
    pub fn add_joiner(
        &mut self,
        index: usize,
        ports: Ports,
        seeds: &[String],
        planned: usize,
        address: &dyn Fn(usize) -> Option<String>,
    ) -> &mut NodeProc {
        let id = index as u64 + 1;
        let node_dir = self.dir.path().join(format!("n{id}"));
        let mut args = serve_args(id, &ports, &node_dir);
        args.push("--seed".into());
        args.push(seeds.join(","));
        args.extend(self.joiner_extra.iter().cloned());
        for j in (0..planned).filter(|j| *j != index) {
            if let Some(at) = address(j) {
                args.push("--peer-address".into());
                args.push(format!("n{}={at}", j + 1));
            }
        }
        let mut node = NodeProc::new(id, ports, node_dir, &[]);
        node.args = args;
        node.start();
        node.wait_healthy();
        self.nodes.push(node);
        self.nodes.last_mut().expect("just pushed")
    }
}

/// Compiles the `LD_PRELOAD` shim whose fsync fails on demand (`failfs/failfs.c`) into
/// `dir` with the system C compiler (`$CC`, else `cc`).
pub fn build_failfs_shim(dir: &std::path::Path) -> PathBuf {
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/failfs/failfs.c");
    let library = dir.join("failfs.so");
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&compiler)
        .args([
            "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror", "-o",
        ])
        .arg(&library)
        .arg(&source)
        .args(["-ldl", "-lpthread"])
        .status()
        .expect("a C compiler (cc) to build the fsync shim");
    assert!(
        status.success(),
        "{compiler} failed on {}",
        source.display()
    );
    library
}

/// Restarts `node` (same data directory) on a disk whose fsync fails once the returned
/// trigger file exists: the failfs shim, built into `dir`.
pub fn restart_on_failing_disk(node: &mut NodeProc, dir: &std::path::Path) -> PathBuf {
    let shim = build_failfs_shim(dir);
    let trigger = dir.join("fail-now");
    node.kill9();
    node.env = vec![
        ("LD_PRELOAD".into(), shim.display().to_string()),
        ("FAILFS_TRIGGER".into(), trigger.display().to_string()),
    ];
    node.start();
    node.wait_healthy();
    trigger
}

/// The status code and JSON body of an HTTP GET (`None` if the connection failed or
/// the body is not JSON).
pub fn http_json(address: &str, path: &str) -> Option<(u16, serde_json::Value)> {
    let response = http_get(address, path)?;
    let code = response.split(' ').nth(1)?.parse().ok()?;
    let (_, body) = response.split_once("\r\n\r\n")?;
    Some((code, serde_json::from_str(body).ok()?))
}

/// One HTTP/1.1 GET; the whole response as text, `None` if the connection failed.
pub fn http_get(address: &str, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(address).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response)
}

/// A RESP2 value as the tests compare it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Value>),
}

impl Value {
    pub fn bulk(text: &str) -> Value {
        Value::Bulk(Some(text.as_bytes().to_vec()))
    }
    pub fn ok() -> Value {
        Value::Simple("OK".into())
    }
    pub fn error_prefix(&self) -> Option<&str> {
        match self {
            Value::Error(text) => text.split(' ').next(),
            _ => None,
        }
    }
}

pub struct Resp {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

pub fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

impl Resp {
    pub fn connect(address: &str) -> Resp {
        let stream = TcpStream::connect(address).expect("connect RESP");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        Resp {
            reader: BufReader::new(stream.try_clone().expect("clone")),
            writer: stream,
        }
    }

    /// A connection that may fail (chaos tests): `None` if the node does not accept.
    pub fn try_connect(address: &str, read_timeout: Duration) -> Option<Resp> {
        let addr = address.parse().ok()?;
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
        stream.set_read_timeout(Some(read_timeout)).ok()?;
        stream.set_write_timeout(Some(read_timeout)).ok()?;
        Some(Resp {
            reader: BufReader::new(stream.try_clone().ok()?),
            writer: stream,
        })
    }

    /// `None` when the connection failed or timed out.
    pub fn try_call(&mut self, args: &[&str]) -> Option<Value> {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.send_raw(&encode(&args)).ok()?;
        self.read()
    }

    pub fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.writer.write_all(bytes)
    }

    pub fn call(&mut self, args: &[&str]) -> Value {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.call_bytes(&args)
    }

    pub fn call_bytes(&mut self, args: &[&[u8]]) -> Value {
        self.send_raw(&encode(args)).expect("send");
        self.read().expect("reply")
    }

    /// The next reply; `None` if the server closed the connection.
    pub fn read(&mut self) -> Option<Value> {
        let mut line = String::new();
        if self.reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end_matches("\r\n");
        let (kind, rest) = line.split_at(1);
        Some(match kind {
            "+" => Value::Simple(rest.into()),
            "-" => Value::Error(rest.into()),
            ":" => Value::Int(rest.parse().ok()?),
            "$" => {
                let len: i64 = rest.parse().ok()?;
                if len < 0 {
                    Value::Bulk(None)
                } else {
                    let mut data = vec![0u8; len as usize + 2];
                    self.reader.read_exact(&mut data).ok()?;
                    data.truncate(len as usize);
                    Value::Bulk(Some(data))
                }
            }
            "*" => {
                let len: i64 = rest.parse().ok()?;
                let mut items = Vec::new();
                for _ in 0..len.max(0) {
                    items.push(self.read()?);
                }
                Value::Array(items)
            }
            _ => return None,
        })
    }
}
