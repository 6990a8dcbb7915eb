//! Command-line flags. Every `serve` flag is optional here: `config` merges flags, then
//! `RINGKV_*` environment variables (clap reads them), then the TOML file, then defaults.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "ringkv",
    version,
    about = "ringkv: a distributed key-value store"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a node.
    Serve(Box<ServeArgs>),
    /// Start a local cluster of separate `ringkv serve` processes (data under ./ringkv-data/).
    DevCluster(DevClusterArgs),
    /// Write KEY = VALUE.
    Put(PutArgs),
    /// Read KEY.
    Get(KeyArgs),
    /// Delete KEY.
    Del(KeyArgs),
    /// Add N (default 1) to KEY's integer value (absent: 0) and print the sum, in one
    /// linearizable round: concurrent increments are never lost.
    Incr(IncrArgs),
    /// Compare-and-set: write KEY = VALUE (or delete it) only if its current value is
    /// --expect's, or it is --absent, or --present, in one linearizable round; prints the
    /// value now. Exit code 1 (and the value that stood) when the condition did not hold.
    Cas(CasArgs),
    /// Show a node's view of the cluster.
    Status(ClientArgs),
    /// Decommission a node (default: the one --node points at): its data moves to the
    /// others, then it stops serving.
    Leave(LeaveArgs),
    /// Remove a node that is gone for good; its ranges are rebuilt from the others.
    Remove(RemoveArgs),
    /// Abort the membership change in progress (a node it adds died before it synced):
    /// the layout before it is committed again.
    Abort(ClientArgs),
    /// Write every {"key": ..., "value": ...} line of a JSON Lines file.
    Import(ImportArgs),
    /// Print every key and value as JSON Lines.
    Export(ClientArgs),
    /// List the cluster's keys in ring order (scan pages; PATTERN: a Redis glob).
    Keys(KeysArgs),
    /// Take an online, consistent backup of the whole cluster into a new or empty
    /// directory: every write acknowledged before it starts is in it.
    Backup(BackupArgs),
    /// Load a backup into a new or empty cluster (checked completely first).
    Restore(RestoreArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    Lsm,
    Redb,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// TOML file with any of these settings (flags and RINGKV_* variables win).
    #[arg(long, env = "RINGKV_CONFIG")]
    pub config: Option<PathBuf>,
    /// This node's id: `n1` or `1`. Fixed for the life of the data directory.
    #[arg(long, env = "RINGKV_NODE_ID")]
    pub node_id: Option<String>,
    /// Take the node id from the hostname's ordinal, as a Kubernetes StatefulSet names
    /// its pods: `ringkv-0` is n1, `ringkv-1` n2 (instead of --node-id).
    #[arg(long, env = "RINGKV_ID_FROM_HOSTNAME", conflicts_with = "node_id")]
    pub id_from_hostname: bool,
    /// Peer and client WebSocket address (paths /peer and /client).
    #[arg(long, env = "RINGKV_LISTEN")]
    pub listen: Option<String>,
    /// RESP (Redis protocol) address.
    #[arg(long, env = "RINGKV_RESP")]
    pub resp: Option<String>,
    /// HTTP address (/metrics, /health, /status).
    #[arg(long, env = "RINGKV_HTTP")]
    pub http: Option<String>,
    #[arg(long, env = "RINGKV_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// A cluster node's --listen address to join through (repeatable; one list may be
    /// shared by all nodes and name the node itself). With an empty data directory, a
    /// node that has no other seed, or is the first seed and finds no other seed in a
    /// cluster, starts a new cluster; any other joins through the seeds.
    #[arg(long, env = "RINGKV_SEEDS", value_delimiter = ',')]
    pub seed: Vec<String>,
    /// Seeds from DNS, `NAME:PORT` (a Kubernetes headless Service): every address NAME
    /// resolves to is a seed. Resolved at start (retried until it answers, up to 2
    /// minutes) and again on every join attempt. With an empty data directory, node n1
    /// starts a new cluster when no resolved seed is in one; the others join.
    #[arg(long, env = "RINGKV_SEEDS_DNS")]
    pub seeds_dns: Option<String>,
    /// Alternative to seeds: the full initial member list of a new cluster,
    /// `ID@HOST:PORT[/ZONE[/CAPACITY]]` (repeatable; every node gets the same list).
    #[arg(long, env = "RINGKV_MEMBERS", value_delimiter = ',')]
    pub member: Vec<String>,
    /// The address peers reach this node at (default: --listen), `HOST:PORT`; a DNS
    /// name is fine (a pod's `$(POD_NAME).SERVICE.NAMESPACE.svc.cluster.local:PORT`).
    #[arg(long, env = "RINGKV_ADVERTISE")]
    pub advertise: Option<String>,
    /// Dial node ID at HOST:PORT instead of its advertised address, `ID=HOST:PORT`
    /// (repeatable; local to this node: proxies, NAT).
    #[arg(long, env = "RINGKV_PEER_ADDRESSES", value_delimiter = ',')]
    pub peer_address: Vec<String>,
    #[arg(long, env = "RINGKV_ZONE")]
    pub zone: Option<String>,
    #[arg(long, env = "RINGKV_CAPACITY")]
    pub capacity: Option<u32>,
    #[arg(long, env = "RINGKV_REPLICAS")]
    pub replicas: Option<usize>,
    /// Ring members this process runs, each on its own thread with its own engine
    /// (`server/shards.rs`): shard 0 is --node-id, shard S is node-id + S x 1000000.
    /// `auto`: one per available core. Fixed for the life of the data directory
    /// (default 1).
    #[arg(long, env = "RINGKV_SHARDS")]
    pub shards: Option<String>,
    #[arg(long, env = "RINGKV_ENGINE")]
    pub engine: Option<EngineKind>,
    /// Shared secret peers prove they hold (HMAC challenge-response; never sent).
    #[arg(long, env = "RINGKV_CLUSTER_SECRET", hide_env_values = true)]
    pub cluster_secret: Option<String>,
    /// Token clients must present (RESP AUTH, first WebSocket message).
    #[arg(long, env = "RINGKV_AUTH_TOKEN", hide_env_values = true)]
    pub auth_token: Option<String>,
    #[arg(long, env = "RINGKV_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Requests one client connection may have in flight (pipelined).
    #[arg(long, env = "RINGKV_MAX_IN_FLIGHT")]
    pub max_in_flight_per_connection: Option<usize>,
    #[arg(long, env = "RINGKV_HANDSHAKE_TIMEOUT_MS")]
    pub handshake_timeout_ms: Option<u64>,
    /// A client connection idle this long is closed (0: never).
    #[arg(long, env = "RINGKV_IDLE_TIMEOUT_MS")]
    pub idle_timeout_ms: Option<u64>,
    #[arg(long, env = "RINGKV_KEY_SIZE_MAX")]
    pub key_size_bytes_max: Option<usize>,
    #[arg(long, env = "RINGKV_VALUE_SIZE_MAX")]
    pub value_size_bytes_max: Option<usize>,
    /// PEM certificate chain: enables TLS on every listener and for dialing peers.
    #[arg(long, env = "RINGKV_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "RINGKV_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// PEM roots peers are verified against (default: this node's own certificate).
    #[arg(long, env = "RINGKV_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// Per-phase quorum timeout of a request.
    #[arg(long, env = "RINGKV_REQUEST_TIMEOUT_MS")]
    pub request_timeout_ms: Option<u64>,
    /// At most one tombstone purge (a layout epoch bump) per this interval, while some
    /// member holds tombstones; 0 keeps every tombstone (default 60000).
    #[arg(long, env = "RINGKV_PURGE_INTERVAL_MS")]
    pub purge_interval_ms: Option<u64>,
    /// A membership change still pending this long, with a node it adds not synced and
    /// believed dead, is aborted; 0: only by `ringkv abort` (default 600000).
    #[arg(long, env = "RINGKV_CHANGE_TIMEOUT_MS")]
    pub change_timeout_ms: Option<u64>,
}

#[derive(Debug, Clone, Args)]
pub struct DevClusterArgs {
    #[arg(long, default_value_t = 3)]
    pub nodes: u16,
    /// Where node data goes (one directory per node).
    #[arg(long, default_value = "ringkv-data")]
    pub data_dir: PathBuf,
    /// First RESP port; node i gets base + i - 1 (peer port 7000 + i, HTTP 8000 + i).
    #[arg(long, default_value_t = 6381)]
    pub resp_port: u16,
    #[arg(long, default_value_t = 7001)]
    pub peer_port: u16,
    #[arg(long, default_value_t = 8001)]
    pub http_port: u16,
    /// Ring members per node process (`serve --shards`); fixed once the data exists.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub shards: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ConsistencyArg {
    Linearizable,
    Eventual,
}

#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// A node's WebSocket address (its --listen).
    #[arg(long, env = "RINGKV_NODE", default_value = "127.0.0.1:7001")]
    pub node: String,
    #[arg(long, env = "RINGKV_AUTH_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Connect over TLS, trusting the PEM roots in this file.
    #[arg(long, env = "RINGKV_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct KeysArgs {
    /// Only keys matching this Redis glob (`*`, `?`, `[a-z]`, `\x`).
    pub pattern: Option<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Clone, Args)]
pub struct KeyArgs {
    pub key: String,
    #[arg(long, value_enum, default_value = "linearizable")]
    pub consistency: ConsistencyArg,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Clone, Args)]
pub struct PutArgs {
    pub key: String,
    pub value: String,
    #[arg(long, value_enum, default_value = "linearizable")]
    pub consistency: ConsistencyArg,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Clone, Args)]
pub struct IncrArgs {
    pub key: String,
    /// The amount to add (negative subtracts).
    #[arg(long, default_value_t = 1, allow_negative_numbers = true)]
    pub by: i64,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Clone, Args)]
#[command(group(clap::ArgGroup::new("condition").required(true)))]
pub struct CasArgs {
    pub key: String,
    /// The value to write when the condition holds.
    #[arg(required_unless_present = "delete", conflicts_with = "delete")]
    pub value: Option<String>,
    /// Delete the key (instead of writing VALUE) when the condition holds.
    #[arg(long)]
    pub delete: bool,
    /// Only if the key's current value is exactly this.
    #[arg(long, group = "condition", allow_hyphen_values = true)]
    pub expect: Option<String>,
    /// Only if the key is absent (never written, or deleted).
    #[arg(long, group = "condition")]
    pub absent: bool,
    /// Only if the key has a value.
    #[arg(long, group = "condition")]
    pub present: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Clone, Args)]
pub struct LeaveArgs {
    /// The node to decommission (`n3` or `3`); default: the node --node points at.
    pub id: Option<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Clone, Args)]
pub struct RemoveArgs {
    /// The node to remove (`n3` or `3`). It must never be restarted with its data.
    pub id: String,
    /// The node is down for good: rebuild its ranges from their surviving replicas even
    /// where those are fewer than a majority of a range's replicas (every one of them
    /// must be up; refused, naming the range, if a range would lose its last copy).
    /// Writes only it held in eventual mode, and the hints it held, are lost. For a node
    /// that was joining when it died, this aborts its change.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    pub file: PathBuf,
    /// Writes in flight at once.
    #[arg(long, default_value_t = 32)]
    pub parallel: usize,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Clone, Args)]
pub struct BackupArgs {
    /// Directory to write the backup into (created; must be empty if it exists).
    #[arg(long)]
    pub to: PathBuf,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Clone, Args)]
pub struct RestoreArgs {
    /// A directory `ringkv backup` wrote.
    #[arg(long)]
    pub from: PathBuf,
    /// Write even if the cluster already holds keys (keys in the backup are
    /// overwritten, others stay).
    #[arg(long)]
    pub force: bool,
    /// Writes in flight at once.
    #[arg(long, default_value_t = 32)]
    pub parallel: usize,
    #[command(flatten)]
    pub client: ClientArgs,
}
