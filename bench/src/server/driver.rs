//! The load generator of `ringkv-bench cluster`: one program for both targets. A phase
//! is `concurrency` tokio tasks, each with its own connection to one member (task `i`
//! to member `i mod n`, so clients are spread over every member) and exactly one
//! request in flight, for a warm-up then a measured span. etcd is spoken to through
//! `etcd-client` (gRPC KV API; a default `Get` is linearizable), ringkv over RESP
//! (`SET`/`GET`, linearizable in ringkv) with the minimal client of `resp.rs`.
//!
//! Counted: requests that complete inside the measured span (latency from send to
//! reply, into an HDR histogram), failures in the same span, and the CPU the servers
//! and this process used over it. A failure never stops a task: it is counted, a
//! broken RESP connection is reopened, and the task goes on after a short pause.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use etcd_client::{Client, ConnectOptions, KvClient};
use hdrhistogram::Histogram;

use super::cpu::{cpu_s, total_cpu_s};
use super::resp::{RespConn, RespError};

/// Keys are `key:NNNNNNNN` over this many numbers.
pub const KEYSPACE: u64 = 100_000;
pub const VALUE_BYTES: usize = 100;
/// A request not answered in this time is a failure.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause after a failure, so a refused connection does not spin.
const ERROR_PAUSE: Duration = Duration::from_millis(20);
/// How long a started cluster may take to accept a write on every member.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// etcd's gRPC KV API.
    Etcd,
    /// RESP (ringkv).
    Resp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Put,
    /// A linearizable read of a key an earlier put phase wrote.
    Get,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Put => "put",
            Op::Get => "get-lin",
        }
    }
}

/// One client connection.
enum Conn {
    Etcd(Box<KvClient>),
    /// `None` after the connection broke; the next request reconnects.
    Resp {
        addr: String,
        conn: Option<RespConn>,
    },
}

impl Conn {
    async fn open(proto: Proto, addr: &str) -> Result<Self> {
        Ok(match proto {
            Proto::Etcd => {
                let options = ConnectOptions::new()
                    .with_connect_timeout(REQUEST_TIMEOUT)
                    .with_timeout(REQUEST_TIMEOUT);
                let client = Client::connect([addr], Some(options))
                    .await
                    .with_context(|| format!("connecting to etcd at {addr}"))?;
                Conn::Etcd(Box::new(client.kv_client()))
            }
            Proto::Resp => Conn::Resp {
                addr: addr.to_string(),
                conn: Some(
                    RespConn::connect(addr)
                        .await
                        .map_err(|e| anyhow::anyhow!("connecting to ringkv at {addr}: {e}"))?,
                ),
            },
        })
    }

    async fn put(&mut self, key: &[u8], value: &[u8]) -> Result<(), String> {
        match self {
            Conn::Etcd(kv) => {
                let request = kv.put(key, value, None);
                match tokio::time::timeout(REQUEST_TIMEOUT, request).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => Err(format!("etcd put: {e}")),
                    Err(_) => Err("etcd put: timed out".into()),
                }
            }
            Conn::Resp { addr, conn } => {
                let c = resp_conn(addr, conn).await?;
                let result = tokio::time::timeout(REQUEST_TIMEOUT, c.set(key, value)).await;
                resp_result(conn, "SET", result)
            }
        }
    }

    /// Whether the key had a value.
    async fn get(&mut self, key: &[u8]) -> Result<bool, String> {
        match self {
            Conn::Etcd(kv) => {
                // No options: etcd's default range request is linearizable.
                let request = kv.get(key, None);
                match tokio::time::timeout(REQUEST_TIMEOUT, request).await {
                    Ok(Ok(reply)) => Ok(!reply.kvs().is_empty()),
                    Ok(Err(e)) => Err(format!("etcd get: {e}")),
                    Err(_) => Err("etcd get: timed out".into()),
                }
            }
            Conn::Resp { addr, conn } => {
                let c = resp_conn(addr, conn).await?;
                let result = tokio::time::timeout(REQUEST_TIMEOUT, c.get(key)).await;
                resp_result(conn, "GET", result).map(|v| v.is_some())
            }
        }
    }
}

/// The open connection, reopened first if it broke.
async fn resp_conn<'a>(
    addr: &str,
    conn: &'a mut Option<RespConn>,
) -> Result<&'a mut RespConn, String> {
    if conn.is_none() {
        let fresh = RespConn::connect(addr)
            .await
            .map_err(|e| format!("reconnecting to {addr}: {e}"))?;
        *conn = Some(fresh);
    }
    conn.as_mut().ok_or_else(|| "no connection".to_string())
}

/// A RESP reply as a result; drops the connection when it is out of step (IO error,
/// unexpected reply, or a timeout whose reply may still arrive).
fn resp_result<T>(
    conn: &mut Option<RespConn>,
    command: &str,
    result: Result<Result<T, RespError>, tokio::time::error::Elapsed>,
) -> Result<T, String> {
    match result {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e @ RespError::Server(_))) => Err(format!("{command}: {e}")),
        Ok(Err(e @ RespError::Broken(_))) => {
            *conn = None;
            Err(format!("{command}: {e}"))
        }
        Err(_) => {
            *conn = None;
            Err(format!("{command}: timed out"))
        }
    }
}

/// Which keys puts write and gets read. Put number `i` writes key `perm(i mod KEYSPACE)`
/// (a fixed permutation, so consecutive puts scatter over the keyspace yet the first
/// `KEYSPACE` puts cover it); a get reads one of the keys puts have reached.
#[derive(Default)]
pub struct Keys {
    puts: AtomicU64,
}

impl Keys {
    /// How many distinct keys puts have been sent for.
    pub fn written(&self) -> u64 {
        self.puts.load(Ordering::Relaxed).min(KEYSPACE)
    }
}

fn key_into(buf: &mut Vec<u8>, i: u64) {
    // 7919 is prime and divides no power of ten: i ↦ 7919·i mod 10^5 is a bijection.
    let n = (i % KEYSPACE) * 7919 % KEYSPACE;
    buf.clear();
    let _ = write!(buf, "key:{n:08}");
}

pub struct Phase {
    pub op: Op,
    pub concurrency: usize,
    /// etcd only: gRPC connections the clients share (connection `j` to member
    /// `j mod n`, client `i` on connection `i mod k`); `None`: one per client.
    pub etcd_connections: Option<usize>,
    pub warmup: Duration,
    pub measure: Duration,
}

impl Phase {
    /// Connections the clients use, together.
    pub fn connections(&self, proto: Proto) -> usize {
        match (proto, self.etcd_connections) {
            (Proto::Etcd, Some(k)) => k.clamp(1, self.concurrency),
            _ => self.concurrency,
        }
    }
}

/// What a phase measured.
pub struct Outcome {
    /// Requests completed in the measured span.
    pub ops: u64,
    pub errors: u64,
    /// Gets that found no value (a put that failed, or a bug).
    pub misses: u64,
    pub seconds: f64,
    pub hist: Histogram<u64>,
    pub server_cpu_s: f64,
    pub client_cpu_s: f64,
    pub first_error: Option<String>,
}

struct TaskOutcome {
    ops: u64,
    errors: u64,
    misses: u64,
    hist: Histogram<u64>,
    first_error: Option<String>,
}

fn new_histogram() -> Result<Histogram<u64>> {
    // Microseconds, 1 µs to 100 s.
    Ok(Histogram::new_with_bounds(1, 100_000_000, 3)?)
}

/// What one client task does, besides its connection.
struct TaskPlan {
    op: Op,
    keys: Arc<Keys>,
    /// Gets read key numbers below this.
    readable: u64,
    value: Vec<u8>,
    measure_from: Instant,
    end: Instant,
    seed: u64,
}

async fn client_task(mut conn: Conn, plan: TaskPlan) -> Result<TaskOutcome> {
    let TaskPlan {
        op,
        keys,
        readable,
        value,
        measure_from,
        end,
        seed,
    } = plan;
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut out = TaskOutcome {
        ops: 0,
        errors: 0,
        misses: 0,
        hist: new_histogram()?,
        first_error: None,
    };
    let mut key = Vec::with_capacity(16);
    while Instant::now() < end {
        let i = match op {
            Op::Put => keys.puts.fetch_add(1, Ordering::Relaxed),
            Op::Get => rng.u64(0..readable.max(1)),
        };
        key_into(&mut key, i);
        let start = Instant::now();
        let result = match op {
            Op::Put => conn.put(&key, &value).await.map(|()| true),
            Op::Get => conn.get(&key).await,
        };
        let done = Instant::now();
        let counted = done >= measure_from && done <= end;
        match result {
            Ok(found) => {
                if counted {
                    out.ops += 1;
                    out.misses += u64::from(!found);
                    out.hist.saturating_record(
                        u64::try_from(done.duration_since(start).as_micros()).unwrap_or(u64::MAX),
                    );
                }
            }
            Err(e) => {
                out.errors += u64::from(counted);
                out.first_error.get_or_insert(e);
                tokio::time::sleep(ERROR_PAUSE).await;
            }
        }
    }
    Ok(out)
}

/// Runs one phase against `endpoints` (connections opened before the clock starts),
/// with the CPU of `server_pids` and of this process over the measured span.
pub async fn run_phase(
    proto: Proto,
    endpoints: &[String],
    phase: &Phase,
    keys: &Arc<Keys>,
    server_pids: &[u32],
) -> Result<Outcome> {
    if endpoints.is_empty() || phase.concurrency == 0 {
        bail!("a phase needs at least one endpoint and one client");
    }
    // etcd's clients may share fewer gRPC connections (HTTP/2 multiplexes them); a RESP
    // connection carries one client's requests only.
    let opened = phase.connections(proto);
    let mut shared = Vec::with_capacity(opened);
    for j in 0..opened {
        shared.push(Conn::open(proto, &endpoints[j % endpoints.len()]).await?);
    }
    let conns: Vec<Conn> = if opened == phase.concurrency {
        shared
    } else {
        (0..phase.concurrency)
            .map(|i| match &shared[i % opened] {
                Conn::Etcd(kv) => Ok(Conn::Etcd(kv.clone())),
                Conn::Resp { .. } => Err(anyhow::anyhow!("a RESP connection is not shared")),
            })
            .collect::<Result<_>>()?
    };
    let readable = keys.written();
    if phase.op == Op::Get && readable == 0 {
        bail!("a get phase needs a put phase before it");
    }
    let started = Instant::now();
    let measure_from = started + phase.warmup;
    let end = measure_from + phase.measure;
    let tasks: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(i, conn)| {
            let mut rng = fastrand::Rng::with_seed(i as u64);
            let value: Vec<u8> = (0..VALUE_BYTES).map(|_| rng.alphanumeric() as u8).collect();
            let plan = TaskPlan {
                op: phase.op,
                keys: keys.clone(),
                readable,
                value,
                measure_from,
                end,
                seed: 0x5eed ^ i as u64,
            };
            tokio::spawn(client_task(conn, plan))
        })
        .collect();
    let me = std::process::id();
    tokio::time::sleep_until(measure_from.into()).await;
    let (server0, client0) = (total_cpu_s(server_pids)?, cpu_s(me)?);
    tokio::time::sleep_until(end.into()).await;
    let (server1, client1) = (total_cpu_s(server_pids)?, cpu_s(me)?);
    let mut total = Outcome {
        ops: 0,
        errors: 0,
        misses: 0,
        // The span the tasks count completions in (the CPU samples, taken when this
        // task wakes at its ends, may lag it by a scheduling delay).
        seconds: phase.measure.as_secs_f64(),
        hist: new_histogram()?,
        server_cpu_s: server1 - server0,
        client_cpu_s: client1 - client0,
        first_error: None,
    };
    for task in tasks {
        let t = task.await.context("a client task failed")??;
        total.ops += t.ops;
        total.errors += t.errors;
        total.misses += t.misses;
        total.hist.add(&t.hist)?;
        if total.first_error.is_none() {
            total.first_error = t.first_error;
        }
    }
    Ok(total)
}

/// Waits until a put through every member succeeds: the cluster has a leader (etcd)
/// or its peers connected (ringkv).
pub async fn wait_ready(proto: Proto, endpoints: &[String]) -> Result<()> {
    let started = Instant::now();
    for addr in endpoints {
        let mut last = String::new();
        loop {
            if started.elapsed() > READY_TIMEOUT {
                bail!("{addr} accepted no write within {READY_TIMEOUT:?}: {last}");
            }
            match Conn::open(proto, addr).await {
                Ok(mut conn) => match conn.put(b"ringkv-bench-ready", b"1").await {
                    Ok(()) => break,
                    Err(e) => last = e,
                },
                Err(e) => last = format!("{e:#}"),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_keyspace_puts_write_every_key_once() {
        let mut seen = std::collections::HashSet::new();
        let mut buf = Vec::new();
        for i in 0..KEYSPACE {
            key_into(&mut buf, i);
            assert!(seen.insert(buf.clone()));
        }
        key_into(&mut buf, KEYSPACE);
        assert!(seen.contains(&buf));
    }
}
