//! Command line: `engine` runs the comparison; `engine-worker` (hidden) is one engine's
//! run in a child process, so each engine's peak RSS is its own.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "ringkv-bench", about = "ringkv benchmarks")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// YCSB-style workloads and durable-put phases on ringkv-lsm, ringkv-redb, redb and fjall.
    Engine(EngineArgs),
    /// One ringkv node and redis-server side by side under redis-benchmark, then a
    /// 3-node ringkv cluster (needs redis-server and redis-tools installed).
    Server(ServerArgs),
    /// Clusters of 3, 6 and 9 ringkv processes, each confined to the same CPU quota by a
    /// cgroup v1 group (needs root), clients spread over all nodes: does throughput grow
    /// with the nodes? (needs redis-tools installed)
    Scale(ScaleArgs),
    /// A 3-member etcd cluster and a 3-node ringkv cluster, one after the other, driven
    /// by the same load generator (etcd over gRPC, ringkv over RESP) at the same
    /// concurrency, clients spread over all members: puts, then linearizable gets (needs
    /// etcd installed — apt-get install etcd-server — and a build with `--features etcd`).
    Cluster(ClusterArgs),
    /// Runs one engine and prints its results as JSON lines (used by `engine`).
    #[command(hide = true)]
    EngineWorker(WorkerArgs),
}

#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Fewer requests (20k at pipeline 1, 100k at 16, per test and target).
    #[arg(long)]
    pub quick: bool,
    /// Tests to run, in order: `set`, `get` and `incr` (redis-benchmark's, random keys
    /// of the keyspace), `setnx` (`SET key NX` on random keys: a conditional write
    /// that mostly fails once keys exist) and `incr-hot` (`INCR` of one key from
    /// every client). The three update tests send everything through the target's
    /// first node (updates of one key through several nodes can contend).
    #[arg(long, value_delimiter = ',', default_values_t = ["set".to_string(), "get".to_string()])]
    pub tests: Vec<String>,
    /// One JSON object per (target, test, pipeline).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// Fewer requests (20k per node and test instead of 100k).
    #[arg(long)]
    pub quick: bool,
    /// One JSON object per (nodes, test).
    #[arg(long)]
    pub json: bool,
    /// Cluster sizes to run, in order.
    #[arg(long, value_delimiter = ',', default_values_t = [3, 6, 9])]
    pub nodes: Vec<usize>,
    /// CPU quota of each node process (cgroup v1 CFS quota), in CPUs, per shard: a
    /// process of S shards gets S times this.
    #[arg(long, default_value_t = 0.2)]
    pub cpus: f64,
    /// Shards per process (`ringkv serve --shards`), comma separated: every cluster size
    /// runs once per count, e.g. `--nodes 3 --shards 1,2` compares 1 and 2 shards at
    /// 1x and 2x the quota.
    #[arg(long, value_delimiter = ',', default_values_t = [1])]
    pub shards: Vec<u32>,
    /// redis-benchmark pipeline depth.
    #[arg(long, default_value_t = 16)]
    pub pipeline: u32,
    /// Connections to each node: the offered load grows with the cluster, as it does
    /// when an operator adds nodes to absorb more clients.
    #[arg(long, default_value_t = 16, conflicts_with = "total_clients")]
    pub clients_per_node: u32,
    /// Instead: this many connections in all, split over the nodes (a fixed load: each
    /// node sees fewer clients as the cluster grows).
    #[arg(long)]
    pub total_clients: Option<u32>,
    /// Also write the run as an SVG chart here (ops/s against nodes; p50/p99 latency).
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Instead of running: chart the rows an earlier `scale --json` printed (this file)
    /// into `--plot`.
    #[arg(long, requires = "plot")]
    pub plot_from: Option<PathBuf>,
}

impl ScaleArgs {
    /// Connections to each node of an `n`-node cluster.
    pub fn clients_per_node(&self, n: usize) -> u32 {
        match self.total_clients {
            Some(total) => (total / (n.max(1) as u32)).max(1),
            None => self.clients_per_node.max(1),
        }
    }

    pub fn load_description(&self) -> String {
        match self.total_clients {
            Some(total) => format!("{total} clients in all, split over the nodes"),
            None => format!("{} clients per node", self.clients_per_node),
        }
    }
}

#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// Shorter phases (3 s measured after 1 s of warm-up instead of 10 s after 2 s).
    #[arg(long)]
    pub quick: bool,
    /// One JSON object per (target, concurrency, operation).
    #[arg(long)]
    pub json: bool,
    /// Concurrent clients (each one request in flight), comma separated: each value is
    /// one run of both targets.
    #[arg(long, value_delimiter = ',', default_values_t = [64])]
    pub concurrency: Vec<usize>,
    /// etcd only: gRPC connections the clients share, spread over the members (HTTP/2
    /// multiplexes their requests) [default: one per client, as for ringkv's RESP].
    #[arg(long)]
    pub etcd_connections: Option<usize>,
    /// Measured seconds of each phase [default: 10; quick 3].
    #[arg(long)]
    pub duration: Option<f64>,
    /// Warm-up seconds before each phase's measurement [default: 2; quick 1].
    #[arg(long)]
    pub warmup: Option<f64>,
}

#[derive(Debug, Args)]
pub struct EngineArgs {
    /// Small sizes (100k records, 50k ops per workload, 2k durable puts): < 2 minutes.
    #[arg(long)]
    pub quick: bool,
    /// Print one JSON object per (engine, workload, distribution) instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Also write a grouped bar chart of ops/s to this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Engines to run, comma separated [default: every engine this build has].
    #[arg(long, value_delimiter = ',')]
    pub engines: Vec<String>,
    /// Engine whose ops/s the ratio table divides by each peer's.
    #[arg(long, default_value = "ringkv-lsm")]
    pub baseline: String,
    #[command(flatten)]
    pub sizes: SizeArgs,
    /// Directory for the temporary data directories [default: the system temp dir].
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// Sizes and seeds; `None` means the `--quick` or full default.
#[derive(Debug, Args, Clone)]
pub struct SizeArgs {
    /// Records inserted by the load phase [default: 1M; quick 100k].
    #[arg(long)]
    pub records: Option<u64>,
    /// Operations per YCSB workload and distribution [default: 1M; quick 50k].
    #[arg(long)]
    pub ops: Option<u64>,
    /// Operations of workload E, whose scans read ~50 entries each [default: 1M; quick 50k].
    #[arg(long)]
    pub scan_ops: Option<u64>,
    /// Durable puts in each of durable-1 and durable-16 [default: 20k; quick 2k].
    #[arg(long)]
    pub durable_ops: Option<u64>,
    /// Seed of every random choice, so runs are repeatable.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    #[arg(long)]
    pub engine: String,
    /// Data directory (created, not removed: the parent owns it).
    #[arg(long)]
    pub data_dir: PathBuf,
    #[arg(long)]
    pub records: u64,
    #[arg(long)]
    pub ops: u64,
    #[arg(long)]
    pub scan_ops: u64,
    #[arg(long)]
    pub durable_ops: u64,
    #[arg(long)]
    pub seed: u64,
}

/// Sizes after applying defaults.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    pub records: u64,
    pub ops: u64,
    pub scan_ops: u64,
    pub durable_ops: u64,
    pub seed: u64,
}

impl SizeArgs {
    pub fn resolve(&self, quick: bool) -> Sizes {
        let (records, ops, scan_ops, durable_ops) = if quick {
            (100_000, 50_000, 50_000, 2_000)
        } else {
            (1_000_000, 1_000_000, 1_000_000, 20_000)
        };
        Sizes {
            records: self.records.unwrap_or(records),
            ops: self.ops.unwrap_or(ops),
            scan_ops: self.scan_ops.unwrap_or(scan_ops),
            durable_ops: self.durable_ops.unwrap_or(durable_ops),
            seed: self.seed,
        }
    }
}

impl WorkerArgs {
    pub fn sizes(&self) -> Sizes {
        Sizes {
            records: self.records,
            ops: self.ops,
            scan_ops: self.scan_ops,
            durable_ops: self.durable_ops,
            seed: self.seed,
        }
    }
}
