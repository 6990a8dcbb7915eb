//! `ringkv serve`: opens the engine and the node, starts the node thread and the three
//! listeners, and shuts down gracefully on SIGTERM/SIGINT: stop accepting, let every
//! connection answer what it has in flight (bounded wait), then flush the engine.

pub mod client_ws;
pub mod committer;
pub mod conn;
pub mod context;
pub mod data_dir;
pub mod exec;
pub mod fail_stop;
pub mod group_commit;
pub mod health;
pub mod http;
pub mod join;
pub mod listener;
pub mod maintenance;
pub mod metrics;
pub mod node_host;
pub mod replica_ws;
pub mod seeds;
pub mod shards;
pub mod shutdown;
pub mod status_json;
pub mod tls;
pub mod ws;
mod ws_endpoint;

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use ringkv_core::node::{AdminRequest, Node, NodeConfig, Role};
use ringkv_core::ring::{NodeId, NodeSpec, ProcessId};
use ringkv_core::storage::blockstore::FileStore;
use ringkv_core::storage::lsm::{LsmEngine, LsmOptions};
use ringkv_core::storage::redb_engine::RedbEngine;
use ringkv_core::storage::Engine;
use tokio::net::TcpListener;

use crate::cli::{EngineKind, ServeArgs};
use crate::cmd::client::ConnectOptions;
use crate::config::ServeConfig;
use crate::error::{io, Error, Result};
use crate::peer::auth::PeerAuth;
use crate::peer::book::AddressBook;
use crate::peer::relay::Relays;
use crate::peer::route::{LinkSettings, Routes};
use crate::peer::router::PeerRouter;
use context::Context;
use listener::Gate;
use metrics::Metrics;
use node_host::Clock;
use shards::Shards;

/// Smallest block cache a shard gets when the process's budget is split among shards.
const BLOCK_CACHE_PER_SHARD_MIN_BYTES: u64 = 16 << 20;

/// Connections the HTTP listener serves at once (scrapes and health checks).
const HTTP_CONNECTIONS_MAX: usize = 64;

pub fn run(args: ServeArgs) -> Result<ExitCode> {
    let config = ServeConfig::resolve(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(io("starting the runtime"))?;
    runtime.block_on(serve(config))
}

fn open_engine(config: &ServeConfig, data_dir: &std::path::Path) -> Result<Arc<dyn Engine>> {
    // The format marker first: nothing in a directory of a newer format is opened.
    match data_dir::check(data_dir)? {
        data_dir::Opened::Adopted => tracing::info!(
            dir = %data_dir.display(),
            format = data_dir::DATA_FORMAT_VERSION,
            "adopted a data directory from before format markers: marked as format {}",
            data_dir::DATA_FORMAT_VERSION
        ),
        data_dir::Opened::New | data_dir::Opened::Marked(_) => {}
    }
    let lsm_dir = data_dir.join("lsm");
    let redb_dir = data_dir.join("redb");
    // One data directory holds one engine's files: opening the other engine would start
    // an empty node with a new identity next to the real data.
    let (mine, other) = match config.engine {
        EngineKind::Lsm => (&lsm_dir, &redb_dir),
        EngineKind::Redb => (&redb_dir, &lsm_dir),
    };
    if other.exists() {
        return Err(Error::Config(format!(
            "{} holds data of the other engine ({}); use the engine it was created with",
            data_dir.display(),
            other.display()
        )));
    }
    std::fs::create_dir_all(mine).map_err(io(format!("creating {}", mine.display())))?;
    Ok(match config.engine {
        EngineKind::Lsm => {
            let store = Arc::new(FileStore::open(mine)?);
            // Flushes and compactions run on the maintenance thread (maintenance.rs).
            let defaults = LsmOptions::default();
            // The shards of a process share its block-cache budget: N shards must not
            // take N times the memory of one.
            let block_cache_capacity_bytes = (defaults.block_cache_capacity_bytes
                / u64::from(config.shards.max(1)))
            .max(BLOCK_CACHE_PER_SHARD_MIN_BYTES);
            let options = LsmOptions {
                background_maintenance: true,
                block_cache_capacity_bytes,
                ..defaults
            };
            Arc::new(LsmEngine::open(store, options)?)
        }
        EngineKind::Redb => Arc::new(RedbEngine::open_path(&mine.join("ringkv.redb"))?),
    })
}

/// The ring entries of this process's shards (one without `--shards`).
fn own_specs(config: &ServeConfig) -> Vec<NodeSpec> {
    process_specs(
        config.node_id,
        &config.zone,
        config.capacity,
        &config.advertise,
        config.shards,
    )
}

/// The ring entries of the shards of the process whose shard 0 is `base`: each a member
/// of its own in process `base` (no process without shards, exactly as before them).
fn process_specs(
    base: NodeId,
    zone: &str,
    capacity: u32,
    address: &str,
    count: u32,
) -> Vec<NodeSpec> {
    (0..count)
        .map(|shard| {
            let spec = NodeSpec::new(shards::shard_id(base, shard).0, zone, capacity)
                .with_address(address);
            if count > 1 {
                spec.in_process(ProcessId(base.0))
            } else {
                spec
            }
        })
        .collect()
}

/// How a node with an empty data directory starts (persisted membership overrides it).
enum Start {
    /// A new cluster of these members (`--member`, or this node alone).
    New(Vec<NodeSpec>),
    /// Wait to be added; ask the seeds.
    Join,
}

async fn start_mode(config: &ServeConfig, seeds: &seeds::Seeds, options: &ConnectOptions) -> Start {
    if !config.members.is_empty() {
        // Every process of a `--member` list runs this process's shard count.
        return Start::New(
            config
                .members
                .iter()
                .flat_map(|m| process_specs(m.id, &m.zone, m.capacity, &m.address, config.shards))
                .collect(),
        );
    }
    // With DNS seeds (and no --seed list naming the first seed), n1 may found the
    // cluster: a StatefulSet's first pod, ringkv-0 under --id-from-hostname.
    let founder =
        config.first_seed || (seeds.has_dns() && config.seeds.is_empty() && config.node_id.0 == 1);
    if seeds.is_empty()
        || (founder
            && !join::any_seed_is_member(&seeds.current().await, options, Duration::from_secs(2))
                .await)
    {
        return Start::New(own_specs(config));
    }
    Start::Join
}

fn node_config(config: &ServeConfig, start: &Start, own: &NodeSpec) -> NodeConfig {
    let specs = match start {
        Start::New(specs) => specs.clone(),
        Start::Join => Vec::new(),
    };
    let mut node_config = NodeConfig::new(own.id, config.zone.clone(), config.capacity, specs);
    node_config.process = own.process;
    // A new store's identity secret comes from this; unused once the store has one.
    if getrandom::fill(&mut node_config.fresh_identity).is_err() {
        tracing::warn!("no randomness for a new store's identity secret");
    }
    node_config.replicas = config.replicas;
    node_config.request_timeout_ms = config.request_timeout_ms;
    node_config.purge_interval_ms = config.purge_interval_ms;
    node_config.change_timeout_ms = config.change_timeout_ms;
    node_config.key_size_bytes_max = config.limits.key_size_bytes_max;
    node_config.value_size_bytes_max = config.limits.value_size_bytes_max;
    node_config
}

async fn node_spec_in_layout(
    handle: &node_host::NodeHandle,
    id: ringkv_core::ring::NodeId,
) -> Option<NodeSpec> {
    let status = handle.status().await.ok()?;
    status.layout.node(id).cloned()
}

async fn bind(address: &str, what: &str) -> Result<TcpListener> {
    TcpListener::bind(address)
        .await
        .map_err(io(format!("binding the {what} listener to {address}")))
}

async fn serve(config: ServeConfig) -> Result<ExitCode> {
    // Bind first: a port in use fails before anything is opened.
    let ws_listener = bind(&config.listen, "peer/client").await?;
    let resp_listener = match &config.resp {
        Some(address) => Some(bind(address, "RESP").await?),
        None => None,
    };
    let http_listener = match &config.http {
        Some(address) => Some(bind(address, "HTTP").await?),
        None => None,
    };

    let tls = match &config.tls {
        Some((cert, key, ca)) => Some(tls::Tls::load(cert, key, ca.as_deref())?),
        None => None,
    };
    let client_options = ConnectOptions {
        token: config.auth_token.clone(),
        tls: tls.clone(),
    };
    shards::check_count(&config.data_dir, config.shards)?;
    let clock = Clock::start();
    let seeds = seeds::Seeds::start(&config).await?;
    let start = start_mode(&config, &seeds, &client_options).await;
    let (trigger, shutdown) = shutdown::channel();
    let metrics = Arc::new(Metrics::default());
    // Replicas attach to shard 0 (`/replica`); the other shards reach them through it.
    let relays = Relays::default();
    let published = Arc::new(RwLock::new(None));
    let mut opened = Vec::new();
    for (index, own) in own_specs(&config).iter().enumerate() {
        let first = index == 0;
        opened.push(open_shard(ShardSetup {
            config: &config,
            start: &start,
            own,
            index: index as u32,
            clock,
            metrics: &metrics,
            shutdown: &shutdown,
            tls: &tls,
            relays: if first {
                relays.clone()
            } else {
                Relays::default()
            },
            publish: first.then(|| published.clone()),
        })?);
    }
    let router = Arc::new(Shards::new(
        opened.iter().map(|shard| shard.handle.clone()).collect(),
    ));
    *published.write().unwrap_or_else(|e| e.into_inner()) = Some(router.clone());
    let contexts: Arc<[Arc<Context>]> = opened
        .iter()
        .map(|shard| {
            Arc::new(Context {
                node: shard.handle.clone(),
                shards: router.clone(),
                metrics: metrics.clone(),
                limits: config.limits.clone(),
                auth_token: config.auth_token.clone(),
                peer_auth: shard.peer_auth.clone(),
                book: shard.book.clone(),
                routes: shard.routes.clone(),
                shutdown: shutdown.clone(),
                tls: tls.clone(),
            })
        })
        .collect();
    let ctx = contexts[0].clone();

    let ws_gate = Gate::new(config.limits.max_connections);
    let resp_gate = Gate::new(config.limits.max_connections);
    let http_gate = Gate::new(HTTP_CONNECTIONS_MAX);
    {
        let contexts = contexts.clone();
        tokio::spawn(listener::accept_loop(
            ws_listener,
            ws_gate.clone(),
            metrics.clone(),
            shutdown.clone(),
            ws_endpoint::REJECT,
            move |stream, _| ws_endpoint::handle(stream, contexts.clone()),
        ));
    }
    if let Some(listener) = resp_listener {
        let ctx = ctx.clone();
        tokio::spawn(listener::accept_loop(
            listener,
            resp_gate.clone(),
            metrics.clone(),
            shutdown.clone(),
            crate::resp::conn::REJECT,
            move |stream, _| crate::resp::conn::serve(stream, ctx.clone()),
        ));
    }
    if let Some(listener) = http_listener {
        let ctx = ctx.clone();
        tokio::spawn(listener::accept_loop(
            listener,
            http_gate.clone(),
            metrics.clone(),
            shutdown.clone(),
            http::REJECT,
            move |stream, _| http::serve(stream, ctx.clone()),
        ));
    }
    for (shard, shard_ctx) in opened.iter().zip(contexts.iter()) {
        start_role(
            &config,
            shard,
            shard_ctx,
            &seeds,
            &client_options,
            &shutdown,
        )
        .await;
    }
    tracing::info!(
        node = %opened[0].id,
        shards = opened.len(),
        listen = %config.listen,
        resp = config.resp.as_deref().unwrap_or("-"),
        http = config.http.as_deref().unwrap_or("-"),
        role = ?opened[0].role,
        "ringkv serving"
    );

    wait_for_signal().await?;
    tracing::info!("shutting down: finishing requests in flight");
    trigger.trigger();
    // A request answers within two phase timeouts; leave room for writing the reply.
    let deadline = Duration::from_millis(2 * config.request_timeout_ms + 2_000);
    let (ws_left, resp_left, _) = tokio::join!(
        ws_gate.drain(deadline),
        resp_gate.drain(deadline),
        http_gate.drain(deadline)
    );
    if ws_left + resp_left > 0 {
        tracing::warn!(
            connections = ws_left + resp_left,
            "closing connections still open"
        );
    }
    let mut failed = false;
    for shard in &opened {
        if let Err(error) = shard.handle.shutdown().await {
            tracing::error!(node = %shard.id, %error, "shutdown");
            failed = true;
        }
    }
    drop(ctx);
    drop(contexts);
    drop(router);
    let _ = tokio::task::spawn_blocking(move || {
        for shard in opened {
            let Shard {
                handle,
                thread,
                maintenance,
                ..
            } = shard;
            drop(handle);
            let _ = thread.join();
            if let Some(maintenance) = maintenance {
                maintenance.stop();
            }
        }
    })
    .await;
    if failed {
        Ok(ExitCode::from(1))
    } else {
        tracing::info!("stopped cleanly");
        Ok(ExitCode::SUCCESS)
    }
}

/// One shard: a node on its own thread with its own engine, and its peer transport.
struct Shard {
    id: NodeId,
    handle: node_host::NodeHandle,
    thread: std::thread::JoinHandle<()>,
    maintenance: Option<maintenance::Maintenance>,
    role: Role,
    join_spec: NodeSpec,
    identity_secret: Vec<u8>,
    peer_auth: Option<PeerAuth>,
    book: AddressBook,
    routes: Routes,
}

struct ShardSetup<'a> {
    config: &'a ServeConfig,
    start: &'a Start,
    /// The shard's ring entry.
    own: &'a NodeSpec,
    index: u32,
    clock: Clock,
    metrics: &'a Arc<Metrics>,
    shutdown: &'a shutdown::Shutdown,
    tls: &'a Option<tls::Tls>,
    relays: Relays,
    /// Shard 0 publishes its layout here for routing (`shards.rs`).
    publish: Option<Arc<RwLock<Option<Arc<Shards>>>>>,
}

fn open_shard(setup: ShardSetup<'_>) -> Result<Shard> {
    let ShardSetup {
        config,
        start,
        own,
        index,
        clock,
        metrics,
        shutdown,
        tls,
        relays,
        publish,
    } = setup;
    let dir = shards::shard_dir(&config.data_dir, index);
    let raw_engine = open_engine(config, &dir)?;
    let commit = Arc::new(group_commit::GroupCommit::new(raw_engine));
    let engine: Arc<dyn Engine> = commit.clone();
    let maintenance = match config.engine {
        EngineKind::Lsm => Some(
            maintenance::Maintenance::spawn(engine.clone())
                .map_err(io("starting the maintenance thread".to_string()))?,
        ),
        // redb has no background work.
        EngineKind::Redb => None,
    };
    let mut seed = [0u8; 8];
    getrandom::fill(&mut seed).map_err(|e| Error::Config(format!("no randomness: {e}")))?;
    let node = Node::open(
        node_config(config, start, own),
        engine.clone(),
        u64::from_le_bytes(seed),
        clock.now_ms(),
    )?;
    // Opening wrote the new incarnation and tag lease: durable before anything is sent.
    let _ = commit.sync()?;
    let join_spec = node.join_spec(config.advertise.clone());
    let identity_secret = node.identity_secret().to_vec();
    let id = node.id();
    for note in node.status().notes {
        tracing::info!(shard = index, %note, "opened");
    }
    if id != own.id {
        tracing::warn!(persisted = %id, flag = %own.id, "the data directory's identity wins over --node-id");
    }
    let role = node.status().membership.role;
    let book = AddressBook::new(peer_overrides(config), HashMap::new());
    let peer_auth = config
        .cluster_secret
        .clone()
        .map(|secret| PeerAuth::new(secret, id).with_address(config.advertise.clone()));
    let routes = Routes::new(
        id,
        book.clone(),
        relays.clone(),
        LinkSettings {
            runtime: tokio::runtime::Handle::current(),
            auth: peer_auth.clone(),
            metrics: metrics.clone(),
            shutdown: shutdown.clone(),
            handshake_timeout: config.limits.handshake_timeout,
            frame_size_bytes_max: config.limits.frame_size_bytes_max,
            tls: tls.clone(),
        },
    );
    let router = PeerRouter {
        routes: routes.clone(),
        metrics: metrics.clone(),
    };
    let mut observe_book = crate::peer::router::layout_observer(book.clone());
    let observe: Box<dyn FnMut(&Node) + Send> = match publish {
        Some(slot) => {
            let mut publish = shards::layout_publisher(slot);
            Box::new(move |node: &Node| {
                observe_book(node);
                publish(node);
            })
        }
        None => observe_book,
    };
    let transport = node_host::TransportHooks {
        observe,
        forward: Box::new(move |to, from, frame| relays.forward(to, from, frame)),
    };
    let (handle, thread) = node_host::spawn(
        node,
        engine,
        commit,
        clock,
        router,
        transport,
        metrics.clone(),
    )?;
    Ok(Shard {
        id,
        handle,
        thread,
        maintenance,
        role,
        join_spec,
        identity_secret,
        peer_auth,
        book,
        routes,
    })
}

/// `--peer-address` overrides, each also for the shards of the process it names: every
/// shard of a process is dialed at its one listener.
fn peer_overrides(config: &ServeConfig) -> HashMap<NodeId, String> {
    let mut overrides = config.peer_addresses.clone();
    for (id, address) in &config.peer_addresses {
        if id.0 < shards::SHARD_ID_STRIDE {
            for shard in 1..shards::SHARDS_MAX {
                overrides
                    .entry(shards::shard_id(*id, shard))
                    .or_insert_with(|| address.clone());
            }
        }
    }
    overrides
}

/// What a shard does once its process serves: ask to join, or tell the cluster about
/// a changed address or spec.
async fn start_role(
    config: &ServeConfig,
    shard: &Shard,
    ctx: &Context,
    seeds: &seeds::Seeds,
    client_options: &ConnectOptions,
    shutdown: &shutdown::Shutdown,
) {
    let id = shard.id;
    let handle = &shard.handle;
    match shard.role {
        Role::Joining => {
            if seeds.is_empty() {
                tracing::warn!(node = %id, "waiting to be added to a cluster, and no --seed to ask");
            }
            tokio::spawn(join::join(
                handle.clone(),
                shard.join_spec.clone(),
                seeds.clone(),
                client_options.clone(),
                ctx.book.clone(),
                shutdown.clone(),
                Duration::from_millis(4 * config.request_timeout_ms + 1_000),
            ));
        }
        Role::Left => {
            tracing::warn!(node = %id, "this node has left its cluster; it serves no requests")
        }
        Role::Displaced => tracing::error!(
            "this data directory is not the store of member {id}: the cluster bound {id} to \
             another store's identity (data lost or replaced?); it serves no requests. \
             Remove {id} from the cluster and start this node under a new id"
        ),
        Role::Member => {
            // Restarted with a different address, zone or capacity: tell the cluster
            // (`Join` of an existing member updates zone and capacity; a new address of a
            // member bound to an identity takes its secret: `Rehome`).
            if let Some(known) = node_spec_in_layout(handle, id).await {
                let mine = &shard.join_spec;
                if known.address != mine.address && known.identity.is_some() {
                    tracing::info!(node = %id, address = %mine.address, "announcing this node's new address");
                    let rehome = AdminRequest::Rehome {
                        id,
                        address: mine.address.clone(),
                        secret: shard.identity_secret.clone(),
                    };
                    tokio::spawn(join::announce(handle.clone(), rehome, shutdown.clone()));
                } else if (&known.zone, known.capacity, &known.address)
                    != (&mine.zone, mine.capacity, &mine.address)
                {
                    tracing::info!(spec = ?mine, "announcing this node's new spec");
                    let spec = NodeSpec {
                        identity: known.identity,
                        ..mine.clone()
                    };
                    tokio::spawn(join::announce(
                        handle.clone(),
                        AdminRequest::Join(spec),
                        shutdown.clone(),
                    ));
                }
            }
        }
    }
}

async fn wait_for_signal() -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).map_err(io("installing SIGTERM handler"))?;
    let mut int = signal(SignalKind::interrupt()).map_err(io("installing SIGINT handler"))?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
