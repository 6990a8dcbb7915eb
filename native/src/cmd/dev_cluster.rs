//! `ringkv dev-cluster`: N `ringkv serve` child processes on loopback, one shared
//! random cluster secret, data and logs under `./ringkv-data/`. Stops the children
//! with SIGTERM (graceful) on Ctrl-C or SIGTERM, and kills any still running 15 s later.

use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::cli::DevClusterArgs;
use crate::error::{io, Error, Result};
use crate::peer::auth::random_hex;

pub fn run(args: DevClusterArgs) -> Result<ExitCode> {
    if args.nodes == 0 || args.nodes > 32 {
        return Err(Error::Config("--nodes must be 1..=32".into()));
    }
    std::fs::create_dir_all(&args.data_dir)
        .map_err(io(format!("creating {}", args.data_dir.display())))?;
    let secret = cluster_secret(&args.data_dir)?;
    let exe = std::env::current_exe().map_err(io("finding the ringkv executable"))?;
    let port = |base: u16, i: u16| base.saturating_add(i - 1);
    // One seed list for every node: n1 (first seed) starts the cluster, the others join.
    let seeds: Vec<String> = (1..=args.nodes)
        .map(|i| format!("127.0.0.1:{}", port(args.peer_port, i)))
        .collect();
    let mut children: Vec<(u16, Child)> = Vec::new();
    for i in 1..=args.nodes {
        let log_path = args.data_dir.join(format!("n{i}.log"));
        let log = std::fs::File::create(&log_path)
            .map_err(io(format!("creating {}", log_path.display())))?;
        let mut command = Command::new(&exe);
        command
            .arg("serve")
            .args(["--node-id", &format!("n{i}")])
            .args([
                "--listen",
                &format!("127.0.0.1:{}", port(args.peer_port, i)),
            ])
            .args(["--resp", &format!("127.0.0.1:{}", port(args.resp_port, i))])
            .args(["--http", &format!("127.0.0.1:{}", port(args.http_port, i))])
            .arg("--data-dir")
            .arg(args.data_dir.join(format!("n{i}")))
            .args(["--seed", &seeds.join(",")])
            .args(["--shards", &args.shards.to_string()])
            .env("RINGKV_CLUSTER_SECRET", &secret)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        match command.spawn() {
            Ok(child) => children.push((i, child)),
            Err(error) => {
                stop(&mut children);
                return Err(Error::Io {
                    context: "starting a node".into(),
                    source: error,
                });
            }
        }
    }
    let outcome = super::block_on(supervise(&args, &mut children))?;
    stop(&mut children);
    match outcome {
        Ok(()) => {
            println!("ringkv dev-cluster: stopped");
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => Err(error),
    }
}

/// Reuses the secret of an earlier run, so restarted nodes still recognise each other.
fn cluster_secret(dir: &Path) -> Result<String> {
    let path = dir.join("cluster-secret");
    if let Ok(secret) = std::fs::read_to_string(&path) {
        if secret.trim().len() >= 16 {
            return Ok(secret.trim().to_owned());
        }
    }
    let secret = random_hex(32).map_err(|e| Error::Config(e.to_string()))?;
    std::fs::write(&path, &secret).map_err(io(format!("writing {}", path.display())))?;
    Ok(secret)
}

async fn supervise(args: &DevClusterArgs, children: &mut [(u16, Child)]) -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).map_err(io("installing SIGTERM handler"))?;
    let mut int = signal(SignalKind::interrupt()).map_err(io("installing SIGINT handler"))?;
    let nodes = children.len();
    for (i, _) in children.iter() {
        let address = format!("127.0.0.1:{}", args.http_port + i - 1);
        let ready = tokio::select! {
            ready = wait_member(&address, nodes, Duration::from_secs(60)) => ready,
            _ = term.recv() => return Ok(()),
            _ = int.recv() => return Ok(()),
        };
        if !ready {
            return Err(Error::Connection(format!(
                "node n{i} did not join the cluster; see {}",
                args.data_dir.join(format!("n{i}.log")).display()
            )));
        }
    }
    println!(
        "ringkv dev-cluster: {} nodes running (data and logs in {}/)",
        children.len(),
        args.data_dir.display()
    );
    for (i, _) in children.iter() {
        println!(
            "  n{i}: redis-cli -p {}    ringkv get KEY --node 127.0.0.1:{}    http://127.0.0.1:{}/status",
            args.resp_port + i - 1,
            args.peer_port + i - 1,
            args.http_port + i - 1
        );
    }
    println!(
        "try:  redis-cli -p {} set a 1 && redis-cli -p {} get a",
        args.resp_port,
        args.resp_port + 1
    );
    println!("Ctrl-C stops the cluster.");
    let mut check = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = term.recv() => return Ok(()),
            _ = int.recv() => return Ok(()),
            _ = check.tick() => {
                for (i, child) in children.iter_mut() {
                    if let Ok(Some(status)) = child.try_wait() {
                        println!("node n{i} exited ({status}); see {}", args.data_dir.join(format!("n{i}.log")).display());
                    }
                }
            }
        }
    }
}

/// Polls `GET /status` until the node is a member of a cluster of `nodes` members
/// with no change in progress, or `limit` passes.
pub async fn wait_member(address: &str, nodes: usize, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(status) = status(address).await {
            let members = status["members"].as_array().map_or(0, Vec::len);
            if status["role"] == "member"
                && members == nodes
                && status["membership"]["pending_version"].is_null()
            {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

async fn status(address: &str) -> Option<serde_json::Value> {
    let mut stream = tokio::net::TcpStream::connect(address).await.ok()?;
    stream
        .write_all(b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .ok()?;
    let mut response = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut response));
    read.await.ok()?.ok()?;
    let text = String::from_utf8_lossy(&response);
    let body = text.split_once("\r\n\r\n")?.1;
    serde_json::from_str(body).ok()
}

/// SIGTERM to every running child, then wait; SIGKILL what is left after 15 s.
fn stop(children: &mut [(u16, Child)]) {
    for (_, child) in children.iter_mut() {
        if let Ok(None) = child.try_wait() {
            if let Ok(pid) = i32::try_from(child.id()) {
                // SAFETY: kill(2) with a pid we spawned and have not reaped (try_wait
                // returned None), so it cannot name another process.
                unsafe {
                    libc::kill(pid, libc::SIGTERM);
                }
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    for (i, child) in children.iter_mut() {
        loop {
            match child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() >= deadline => {
                    eprintln!("node n{i} did not stop in time; killing it");
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}
