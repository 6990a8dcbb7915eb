//! `serve` settings: flags and `RINGKV_*` variables (via clap) win over the TOML file
//! (`--config`), which wins over the defaults here. Resolved once at startup into a
//! [`ServeConfig`]; nothing reads flags after that.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ringkv_core::protocol::FRAME_SIZE_BYTES_MAX;
use ringkv_core::ring::NodeId;
use serde::Deserialize;

use crate::cli::{EngineKind, ServeArgs};
use crate::error::{Error, Result};
use crate::server::shards::{SHARDS_MAX, SHARD_ID_STRIDE};

/// The TOML file: the same names as the flags, with underscores.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub node_id: Option<String>,
    pub id_from_hostname: Option<bool>,
    pub seeds_dns: Option<String>,
    pub listen: Option<String>,
    pub resp: Option<String>,
    pub http: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub seeds: Option<Vec<String>>,
    pub members: Option<Vec<String>>,
    pub advertise: Option<String>,
    pub peer_addresses: Option<Vec<String>>,
    pub zone: Option<String>,
    pub capacity: Option<u32>,
    pub replicas: Option<usize>,
    pub shards: Option<String>,
    pub engine: Option<EngineKind>,
    pub cluster_secret: Option<String>,
    pub auth_token: Option<String>,
    pub max_connections: Option<usize>,
    pub max_in_flight_per_connection: Option<usize>,
    pub handshake_timeout_ms: Option<u64>,
    pub idle_timeout_ms: Option<u64>,
    pub key_size_bytes_max: Option<usize>,
    pub value_size_bytes_max: Option<usize>,
    pub request_timeout_ms: Option<u64>,
    pub purge_interval_ms: Option<u64>,
    pub change_timeout_ms: Option<u64>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_ca: Option<PathBuf>,
}

/// One static cluster member (interim, until membership changes by admin requests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: NodeId,
    /// Its peer WebSocket address (`--listen`).
    pub address: String,
    pub zone: String,
    pub capacity: u32,
}

/// Bounds on everything a client or peer can make this node hold.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Open connections over all listeners (peers, clients, RESP, HTTP) together.
    pub max_connections: usize,
    pub max_in_flight_per_connection: usize,
    /// Time from accept to a finished handshake (WebSocket upgrade + auth message).
    pub handshake_timeout: Duration,
    /// A client connection without a request this long is closed.
    pub idle_timeout: Option<Duration>,
    pub key_size_bytes_max: usize,
    pub value_size_bytes_max: usize,
    /// Largest WebSocket message or RESP command (the core's frame limit).
    pub frame_size_bytes_max: usize,
}

#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub node_id: NodeId,
    pub listen: String,
    pub resp: Option<String>,
    pub http: Option<String>,
    pub data_dir: PathBuf,
    /// Where peers reach this node (its `NodeSpec::address`).
    pub advertise: String,
    /// Seeds other than this node, in the order given.
    pub seeds: Vec<String>,
    /// This node is the first entry of its seed list (it may start the cluster).
    pub first_seed: bool,
    /// `--seeds-dns`: a name whose addresses are seeds, resolved at start and on every
    /// join attempt (`server/seeds.rs`).
    pub seeds_dns: Option<HostPort>,
    /// A static initial member list (`--member`); empty when joining by seeds.
    pub members: Vec<Member>,
    pub peer_addresses: std::collections::HashMap<NodeId, String>,
    pub zone: String,
    pub capacity: u32,
    pub replicas: usize,
    /// Ring members this process runs (`server/shards.rs`).
    pub shards: u32,
    pub engine: EngineKind,
    /// `None`: this node accepts no peer (single-node cluster without a secret).
    pub cluster_secret: Option<Vec<u8>>,
    pub auth_token: Option<String>,
    pub limits: Limits,
    pub request_timeout_ms: u64,
    /// Tombstone purge interval (`NodeConfig::purge_interval_ms`).
    pub purge_interval_ms: u64,
    /// `NodeConfig::change_timeout_ms`.
    pub change_timeout_ms: u64,
    /// `(certificate, key, peer roots)` when TLS is on.
    pub tls: Option<(PathBuf, PathBuf, Option<PathBuf>)>,
}

/// `NAME:PORT` of `--seeds-dns`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for HostPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:7001";
pub const DEFAULT_ZONE: &str = "default";

impl ServeConfig {
    pub fn resolve(args: ServeArgs) -> Result<ServeConfig> {
        let file = match &args.config {
            Some(path) => load_file(path)?,
            None => FileConfig::default(),
        };
        if file.node_id.is_some() && file.id_from_hostname == Some(true) {
            return Err(Error::Config(
                "the config file sets both node_id and id_from_hostname; keep one".into(),
            ));
        }
        // Flags win over the file, as everywhere: --node-id or --id-from-hostname first.
        let node_id = match (args.node_id, args.id_from_hostname) {
            (Some(id), _) => parse_node_id(&id)?,
            (None, true) => node_id_from_hostname(&current_hostname()?)?,
            (None, false) => match (file.node_id, file.id_from_hostname) {
                (Some(id), _) => parse_node_id(&id)?,
                (None, Some(true)) => node_id_from_hostname(&current_hostname()?)?,
                _ => {
                    return Err(Error::Config(
                        "--node-id (or --id-from-hostname) is required".into(),
                    ))
                }
            },
        };
        let seeds_dns = args
            .seeds_dns
            .or(file.seeds_dns)
            .map(|text| parse_host_port(&text, "--seeds-dns"))
            .transpose()?;
        let listen = args
            .listen
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.into());
        let data_dir = args
            .data_dir
            .or(file.data_dir)
            .ok_or_else(|| Error::Config("--data-dir is required".into()))?;
        let seeds = non_empty(args.seed).or(file.seeds).unwrap_or_default();
        let member_specs = non_empty(args.member).or(file.members).unwrap_or_default();
        let zone_flag = args.zone.or(file.zone);
        let capacity_flag = args.capacity.or(file.capacity);

        let advertise = args
            .advertise
            .or(file.advertise)
            .unwrap_or_else(|| listen.clone());
        if advertise.starts_with("0.0.0.0:") || advertise.starts_with("[::]:") {
            tracing::warn!(
                %advertise,
                "peers on other hosts cannot dial this address: set --advertise"
            );
        }
        let members = member_specs
            .iter()
            .map(|spec| parse_member(spec))
            .collect::<Result<Vec<_>>>()?;
        let own = match members.iter().find(|member| member.id == node_id) {
            Some(own) => own.clone(),
            None if members.is_empty() => Member {
                id: node_id,
                address: advertise.clone(),
                zone: zone_flag.clone().unwrap_or_else(|| DEFAULT_ZONE.into()),
                capacity: capacity_flag.unwrap_or(1),
            },
            None => {
                return Err(Error::Config(format!(
                    "--member does not list this node ({node_id})"
                )))
            }
        };
        if !members.is_empty() && (!seeds.is_empty() || seeds_dns.is_some()) {
            return Err(Error::Config(
                "use either --member or --seed/--seeds-dns, not both".into(),
            ));
        }
        let first_seed = seeds
            .first()
            .is_some_and(|s| *s == advertise || *s == listen);
        let seeds: Vec<String> = seeds
            .into_iter()
            .filter(|s| *s != advertise && *s != listen)
            .collect();
        let peer_addresses = non_empty(args.peer_address)
            .or(file.peer_addresses)
            .unwrap_or_default()
            .iter()
            .map(|entry| {
                let (id, address) = entry.split_once('=').ok_or_else(|| {
                    Error::Config(format!("peer address {entry:?}: expected ID=HOST:PORT"))
                })?;
                Ok((parse_node_id(id)?, address.to_string()))
            })
            .collect::<Result<std::collections::HashMap<_, _>>>()?;
        let mut ids: Vec<NodeId> = members.iter().map(|member| member.id).collect();
        ids.sort();
        ids.dedup();
        if ids.len() != members.len() {
            return Err(Error::Config("--member lists a node id twice".into()));
        }
        let shards = match args.shards.or(file.shards) {
            None => 1,
            Some(text) => parse_shards(&text)?,
        };
        if shards > 1 && node_id.0 >= SHARD_ID_STRIDE {
            return Err(Error::Config(format!(
                "with --shards, node ids must be below {SHARD_ID_STRIDE} (shard S of n is \
                 n + S x {SHARD_ID_STRIDE}); {node_id} is not"
            )));
        }
        if let Some(member) = members
            .iter()
            .find(|m| m.id.0 >= SHARD_ID_STRIDE && shards > 1)
        {
            return Err(Error::Config(format!(
                "with --shards, --member ids must be below {SHARD_ID_STRIDE}; {} is not",
                member.id
            )));
        }
        let cluster_secret = args.cluster_secret.or(file.cluster_secret);
        // Shards of one process are peers too: they talk over the peer protocol.
        if (members.len() > 1 || shards > 1 || !seeds.is_empty() || seeds_dns.is_some())
            && cluster_secret.as_ref().is_none_or(|s| s.len() < 16)
        {
            return Err(Error::Config(
                "a cluster of several nodes (or --shards above 1) needs --cluster-secret (at \
                 least 16 bytes)"
                    .into(),
            ));
        }
        let limits = Limits {
            max_connections: args
                .max_connections
                .or(file.max_connections)
                .unwrap_or(1024),
            max_in_flight_per_connection: args
                .max_in_flight_per_connection
                .or(file.max_in_flight_per_connection)
                .unwrap_or(128),
            handshake_timeout: Duration::from_millis(
                args.handshake_timeout_ms
                    .or(file.handshake_timeout_ms)
                    .unwrap_or(5_000),
            ),
            idle_timeout: match args
                .idle_timeout_ms
                .or(file.idle_timeout_ms)
                .unwrap_or(300_000)
            {
                0 => None,
                ms => Some(Duration::from_millis(ms)),
            },
            key_size_bytes_max: args
                .key_size_bytes_max
                .or(file.key_size_bytes_max)
                .unwrap_or(8 << 10),
            value_size_bytes_max: args
                .value_size_bytes_max
                .or(file.value_size_bytes_max)
                .unwrap_or(1 << 20),
            frame_size_bytes_max: FRAME_SIZE_BYTES_MAX,
        };
        if limits.max_connections == 0 || limits.max_in_flight_per_connection == 0 {
            return Err(Error::Config(
                "max_connections and max_in_flight_per_connection must be positive".into(),
            ));
        }
        let tls = match (
            args.tls_cert.or(file.tls_cert),
            args.tls_key.or(file.tls_key),
        ) {
            (Some(cert), Some(key)) => Some((cert, key, args.tls_ca.or(file.tls_ca))),
            (None, None) => None,
            _ => {
                return Err(Error::Config(
                    "TLS needs both --tls-cert and --tls-key".into(),
                ))
            }
        };
        Ok(ServeConfig {
            tls,
            node_id,
            listen,
            resp: args.resp.or(file.resp),
            http: args.http.or(file.http),
            data_dir,
            advertise,
            seeds,
            first_seed,
            seeds_dns,
            peer_addresses,
            zone: own.zone.clone(),
            capacity: own.capacity,
            members,
            replicas: args.replicas.or(file.replicas).unwrap_or(3),
            shards,
            engine: args.engine.or(file.engine).unwrap_or(EngineKind::Lsm),
            cluster_secret: cluster_secret.map(String::into_bytes),
            auth_token: args.auth_token.or(file.auth_token),
            limits,
            request_timeout_ms: args
                .request_timeout_ms
                .or(file.request_timeout_ms)
                .unwrap_or(1_000),
            purge_interval_ms: args
                .purge_interval_ms
                .or(file.purge_interval_ms)
                .unwrap_or(60_000),
            change_timeout_ms: args
                .change_timeout_ms
                .or(file.change_timeout_ms)
                .unwrap_or(600_000),
        })
    }
}

/// `--shards`: a count in 1..=SHARDS_MAX, or `auto` (the available cores).
fn parse_shards(text: &str) -> Result<u32> {
    let count = if text == "auto" {
        std::thread::available_parallelism()
            .map(|n| n.get() as u32)
            .unwrap_or(1)
            .min(SHARDS_MAX)
    } else {
        text.parse::<u32>()
            .map_err(|_| Error::Config(format!("--shards {text:?}: expected a count or auto")))?
    };
    if count == 0 || count > SHARDS_MAX {
        return Err(Error::Config(format!(
            "--shards {count}: expected 1 to {SHARDS_MAX}"
        )));
    }
    Ok(count)
}

fn non_empty(list: Vec<String>) -> Option<Vec<String>> {
    (!list.is_empty()).then_some(list)
}

fn load_file(path: &Path) -> Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .map_err(crate::error::io(format!("reading {}", path.display())))?;
    toml::from_str(&text).map_err(|error| Error::Config(format!("{}: {error}", path.display())))
}

/// `n7` or `7`.
pub fn parse_node_id(text: &str) -> Result<NodeId> {
    let digits = text.strip_prefix('n').unwrap_or(text);
    digits
        .parse::<u64>()
        .ok()
        .filter(|id| *id > 0)
        .map(NodeId)
        .ok_or_else(|| {
            Error::Config(format!(
                "node id {text:?}: expected n1, n2, ... or 1, 2, ..."
            ))
        })
}

/// Longest hostname read (HOST_NAME_MAX is 64 on Linux; room for other systems).
const HOSTNAME_BYTES_MAX: usize = 256;

/// This machine's (pod's) hostname.
fn current_hostname() -> Result<String> {
    let mut buffer = [0u8; HOSTNAME_BYTES_MAX];
    // SAFETY: gethostname writes at most `len` bytes into the buffer we own.
    let rc = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    if rc != 0 {
        return Err(Error::Io {
            context: "reading the hostname (--id-from-hostname)".into(),
            source: std::io::Error::last_os_error(),
        });
    }
    let len = buffer.iter().position(|b| *b == 0).unwrap_or(buffer.len());
    String::from_utf8(buffer[..len].to_vec())
        .map_err(|_| Error::Config("--id-from-hostname: the hostname is not UTF-8".into()))
}

/// The node id of a StatefulSet pod: `NAME-ORDINAL` (domain, if any, ignored) is node
/// `ORDINAL + 1`, so `ringkv-0` is n1 (node ids start at 1).
pub fn node_id_from_hostname(hostname: &str) -> Result<NodeId> {
    let short = hostname.split('.').next().unwrap_or_default();
    let ordinal = short
        .rsplit_once('-')
        .filter(|(name, ordinal)| {
            !name.is_empty() && !ordinal.is_empty() && ordinal.bytes().all(|b| b.is_ascii_digit())
        })
        .and_then(|(_, ordinal)| ordinal.parse::<u64>().ok())
        .ok_or_else(|| {
            Error::Config(format!(
                "--id-from-hostname: hostname {hostname:?} does not end in -ORDINAL \
                 (a StatefulSet pod such as ringkv-0); set --node-id instead"
            ))
        })?;
    ordinal.checked_add(1).map(NodeId).ok_or_else(|| {
        Error::Config(format!(
            "--id-from-hostname: ordinal of {hostname:?} out of range"
        ))
    })
}

/// `HOST:PORT` (a DNS name or an address; `[v6]:PORT` for IPv6).
pub fn parse_host_port(text: &str, flag: &str) -> Result<HostPort> {
    let bad = || Error::Config(format!("{flag} {text:?}: expected NAME:PORT"));
    let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(bad)?;
    if host.is_empty() || host.len() > HOSTNAME_BYTES_MAX || host.contains(char::is_whitespace) {
        return Err(bad());
    }
    Ok(HostPort {
        host: host.to_string(),
        port,
    })
}

/// `ID@HOST:PORT[/ZONE[/CAPACITY]]`.
pub fn parse_member(text: &str) -> Result<Member> {
    let bad = || {
        Error::Config(format!(
            "member {text:?}: expected ID@HOST:PORT[/ZONE[/CAPACITY]]"
        ))
    };
    let (id, rest) = text.split_once('@').ok_or_else(bad)?;
    let mut parts = rest.split('/');
    let address = parts.next().filter(|a| !a.is_empty()).ok_or_else(bad)?;
    let zone = parts.next().unwrap_or(DEFAULT_ZONE);
    let capacity = match parts.next() {
        Some(c) => c.parse().map_err(|_| bad())?,
        None => 1,
    };
    if parts.next().is_some() || zone.is_empty() {
        return Err(bad());
    }
    Ok(Member {
        id: parse_node_id(id)?,
        address: address.into(),
        zone: zone.into(),
        capacity,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(args: &[&str]) -> Result<ServeConfig> {
        use clap::Parser;
        let cli =
            crate::cli::Cli::try_parse_from(args).map_err(|e| Error::Config(e.to_string()))?;
        match cli.command {
            crate::cli::Command::Serve(args) => ServeConfig::resolve(*args),
            _ => Err(Error::Config("not serve".into())),
        }
    }

    /// `ringkv serve --config FILE EXTRA...` with `text` in FILE.
    fn resolve_with_file(text: &str, extra: &[&str]) -> Result<ServeConfig> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ringkv.toml");
        std::fs::write(&path, text).expect("write");
        let path = path.display().to_string();
        let mut args = vec!["ringkv", "serve", "--config", &path];
        args.extend_from_slice(extra);
        resolve(&args)
    }

    #[test]
    fn toml_settings_apply_and_flags_win() {
        let config = resolve_with_file(
            "node_id = \"n3\"\nlisten = \"127.0.0.1:7003\"\ndata_dir = \"/tmp/x\"\n\
             zone = \"z9\"\nmax_connections = 7\nidle_timeout_ms = 0\n",
            &["--listen", "127.0.0.1:9"],
        )
        .expect("config");
        assert_eq!(config.node_id, NodeId(3));
        assert_eq!(config.listen, "127.0.0.1:9", "flags win over the file");
        assert_eq!(config.advertise, "127.0.0.1:9");
        assert_eq!(config.zone, "z9");
        assert_eq!(config.limits.max_connections, 7);
        assert_eq!(config.limits.idle_timeout, None);
        assert_eq!(config.members.len(), 0);

        assert!(
            resolve_with_file("node_idd = \"n3\"\n", &[]).is_err(),
            "unknown keys fail"
        );
        // Several nodes need a cluster secret.
        assert!(resolve(&[
            "ringkv",
            "serve",
            "--node-id",
            "1",
            "--data-dir",
            "/tmp/x",
            "--seed",
            "h:1"
        ])
        .is_err());
        assert!(resolve(&[
            "ringkv",
            "serve",
            "--node-id",
            "1",
            "--data-dir",
            "/tmp/x",
            "--seed",
            "h:1",
            "--cluster-secret",
            "0123456789abcdef"
        ])
        .is_ok());
    }

    #[test]
    fn shards_flag_is_bounded_and_needs_a_secret_and_small_ids() {
        let base = ["ringkv", "serve", "--node-id", "n2", "--data-dir", "/tmp/x"];
        let with = |extra: &[&str]| {
            let mut args = base.to_vec();
            args.extend_from_slice(extra);
            resolve(&args)
        };
        let secret = ["--cluster-secret", "0123456789abcdef"];
        assert_eq!(with(&[]).expect("default").shards, 1);
        let two = with(&["--shards", "2", secret[0], secret[1]]).expect("two shards");
        assert_eq!(two.shards, 2);
        let auto = with(&["--shards", "auto", secret[0], secret[1]]).expect("auto");
        assert!((1..=SHARDS_MAX).contains(&auto.shards));
        for bad in ["0", "65", "-1", "many"] {
            assert!(
                with(&["--shards", bad, secret[0], secret[1]]).is_err(),
                "--shards {bad}"
            );
        }
        // Shards of one process talk over the peer protocol: a secret is required.
        let error = with(&["--shards", "2"]).expect_err("no secret");
        assert!(error.to_string().contains("--cluster-secret"), "{error}");
        // Shard ids are base + S x stride: a base id at or above the stride is refused.
        let mut big = base.to_vec();
        big[3] = "n1000000";
        big.extend_from_slice(&["--shards", "2", secret[0], secret[1]]);
        assert!(resolve(&big).is_err());
        big.truncate(6);
        assert!(resolve(&big).is_ok(), "one shard keeps any id");
    }

    #[test]
    fn node_id_from_a_statefulset_hostname() {
        assert_eq!(node_id_from_hostname("ringkv-0").expect("id"), NodeId(1));
        assert_eq!(node_id_from_hostname("ringkv-2").expect("id"), NodeId(3));
        assert_eq!(
            node_id_from_hostname("my-ring-kv-11.ringkv-headless.ns.svc.cluster.local")
                .expect("id"),
            NodeId(12)
        );
        for bad in [
            "ringkv",
            "ringkv-",
            "-0",
            "ringkv-a",
            "ringkv-1x",
            "ringkv-+1",
            "",
            "ringkv-18446744073709551615",
            "ringkv-99999999999999999999",
        ] {
            let error = node_id_from_hostname(bad).expect_err(bad).to_string();
            assert!(error.contains("--id-from-hostname"), "{bad}: {error}");
        }
        let error = node_id_from_hostname("web")
            .expect_err("no ordinal")
            .to_string();
        assert!(error.contains("does not end in -ORDINAL"), "{error}");
    }

    #[test]
    fn id_from_hostname_and_seeds_dns_flags() {
        // The flag and --node-id exclude each other (clap).
        assert!(resolve(&[
            "ringkv",
            "serve",
            "--node-id",
            "1",
            "--id-from-hostname",
            "--data-dir",
            "/tmp/x"
        ])
        .is_err());
        // This test process's hostname decides: either it has an ordinal and gives its
        // id, or the error names the flag.
        let from_host = resolve(&["ringkv", "serve", "--id-from-hostname", "--data-dir", "/x"]);
        let hostname = current_hostname().expect("hostname");
        match node_id_from_hostname(&hostname) {
            Ok(id) => assert_eq!(from_host.expect("config").node_id, id),
            Err(_) => assert!(from_host
                .expect_err("no ordinal")
                .to_string()
                .contains("--id-from-hostname")),
        }

        let base = ["ringkv", "serve", "--node-id", "2", "--data-dir", "/tmp/x"];
        let with = |extra: &[&str]| {
            let mut args = base.to_vec();
            args.extend_from_slice(extra);
            resolve(&args)
        };
        let config = with(&[
            "--seeds-dns",
            "ringkv-headless.ns.svc.cluster.local:7001",
            "--cluster-secret",
            "0123456789abcdef",
            "--advertise",
            "ringkv-1.ringkv-headless.ns.svc.cluster.local:7001",
        ])
        .expect("config");
        assert_eq!(
            config.seeds_dns,
            Some(HostPort {
                host: "ringkv-headless.ns.svc.cluster.local".into(),
                port: 7001
            })
        );
        assert_eq!(
            config.advertise,
            "ringkv-1.ringkv-headless.ns.svc.cluster.local:7001"
        );
        // DNS seeds make a cluster: the secret is required.
        let error = with(&["--seeds-dns", "h:7001"]).expect_err("no secret");
        assert!(error.to_string().contains("--cluster-secret"), "{error}");
        for bad in ["h", "h:", ":7001", "h:0", "h:70000", "h:x", "a b:1"] {
            let error = with(&["--seeds-dns", bad, "--cluster-secret", "0123456789abcdef"])
                .expect_err(bad)
                .to_string();
            assert!(error.contains("--seeds-dns"), "{bad}: {error}");
        }
        assert_eq!(
            parse_host_port("[::1]:7001", "--seeds-dns").expect("v6"),
            HostPort {
                host: "::1".into(),
                port: 7001
            }
        );
        // Not with a static member list.
        assert!(with(&[
            "--seeds-dns",
            "h:1",
            "--member",
            "n2@h:1",
            "--cluster-secret",
            "0123456789abcdef"
        ])
        .is_err());
    }

    /// The example configuration shipped with the systemd unit resolves (every key
    /// known, its seed list makes n1 the founder), given the unit's data directory and
    /// the secret its environment file provides.
    #[test]
    fn systemd_example_config_resolves() {
        let text = include_str!("../../deploy/systemd/ringkv.toml");
        let file: FileConfig = toml::from_str(text).expect("deploy/systemd/ringkv.toml");
        assert_eq!(file.node_id.as_deref(), Some("n1"));
        let config = resolve_with_file(
            text,
            &[
                "--data-dir",
                "/var/lib/ringkv",
                "--cluster-secret",
                "0123456789abcdef",
            ],
        )
        .expect("example config");
        assert!(config.first_seed, "n1 is its list's first seed");
        assert_eq!(config.seeds, ["10.0.0.2:7001", "10.0.0.3:7001"]);
        assert_eq!(config.advertise, "10.0.0.1:7001");
    }

    #[test]
    fn members_parse_and_reject_garbage() {
        let member = parse_member("n2@127.0.0.1:7002/z2/3").expect("member");
        assert_eq!(member.id, NodeId(2));
        assert_eq!(member.address, "127.0.0.1:7002");
        assert_eq!((member.zone.as_str(), member.capacity), ("z2", 3));
        assert_eq!(parse_member("3@h:1").expect("member").zone, DEFAULT_ZONE);
        for bad in [
            "",
            "n1",
            "@h:1",
            "n0@h:1",
            "x@h:1",
            "1@h:1/z/notanumber",
            "1@h:1/z/1/x",
        ] {
            assert!(parse_member(bad).is_err(), "{bad} accepted");
        }
    }
}
