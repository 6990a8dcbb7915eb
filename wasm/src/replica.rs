//! `Replica`: the JS class. Opening builds the engine on the chosen store, loads the
//! durable image, opens a real `Node` (a single-member cluster when standalone) and
//! commits the node's opening writes (its incarnation bump) before resolving.

use std::rc::Rc;
use std::sync::Arc;

use js_sys::{Function, Promise};
use ringkv_core::node::local_keys::count_local_keys;
use ringkv_core::node::NodeError;
use ringkv_core::node::{ClientRequest, Node, NodeConfig, Role};
use ringkv_core::protocol::{self, AdminRequest};
use ringkv_core::ring::{key_position, NodeId, NodeSpec};
use ringkv_core::storage::blockstore::MemoryStore;
use ringkv_core::storage::lsm::{LsmEngine, LsmOptions};
use ringkv_core::storage::{BlockStore, Engine, StorageError};
use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::backend::{Backend, IdbBackend, JsBackend};
use crate::client::{self, Conn};
use crate::error::{Code, Error};
use crate::host::{self, Host, Kind, Persistence, Shared};
use crate::image::ImageStore;
use crate::options::{self, OpenOptions, Storage};
use crate::request::{self, Defaults};
use crate::transport::js::JsTransport;
use crate::transport::relay::RelayTransport;
use crate::transport::{NoPeers, Transport, TransportState};
use crate::value;

#[wasm_bindgen]
pub struct Replica {
    host: Shared,
    defaults: Defaults,
    storage_kind: &'static str,
    /// Frames come in through `deliver` (a JS network).
    js_network: bool,
    /// A memory store joined through `seeds` (`ephemeral: true`): leaves on close.
    ephemeral: bool,
}

/// Engine tuning for a browser tab: a smaller memtable and block cache than a server
/// (the image store already holds every byte in memory), and compaction driven by the
/// host in bounded steps.
fn lsm_options() -> LsmOptions {
    LsmOptions {
        memtable_size_bytes_max: 4 << 20,
        block_cache_capacity_bytes: 8 << 20,
        background_maintenance: true,
        ..LsmOptions::default()
    }
}

fn random_seed() -> u64 {
    let mut b = [0u8; 8];
    // Only gossip target choice and jitter use it; a fixed seed is still correct.
    let _ = getrandom::fill(&mut b);
    u64::from_le_bytes(b)
}

async fn open_inner(opts: OpenOptions) -> Result<Replica, Error> {
    // Everything that can be refused without the store is checked first: a failed open
    // must not leave the store locked (IndexedDB's Web Lock, OPFS's sync handle).
    for seed in opts.seeds.iter().flatten() {
        crate::ws::endpoint(seed, "/replica")?;
    }
    if opts.seeds.is_some() {
        crate::ws::available()?;
    }
    let js_transport = match &opts.transport {
        Some(object) => Some(Rc::new(JsTransport::new(object.clone())?)),
        None => None,
    };
    let (backend, storage_kind) = match &opts.storage {
        Storage::Memory => (None, "memory"),
        Storage::IndexedDb { database } => (
            Some(Backend::IndexedDb(IdbBackend::open(database).await?)),
            "indexeddb",
        ),
        Storage::Js(object) => {
            let opfs = js_sys::Reflect::get(object, &"kind".into())
                .ok()
                .and_then(|k| k.as_string())
                .is_some_and(|k| k == "opfs");
            let kind = if opfs { "opfs" } else { "custom" };
            (Some(Backend::Js(JsBackend::new(object.clone())?)), kind)
        }
    };
    match open_on(opts, backend.clone(), storage_kind, js_transport).await {
        Ok(replica) => Ok(replica),
        Err(Failed { error, closed }) => {
            if let (Some(backend), false) = (backend, closed) {
                backend.close().await;
            }
            Err(error)
        }
    }
}

/// Why `open_on` failed, and whether it closed the backend already (through the host).
struct Failed {
    error: Error,
    closed: bool,
}

impl From<Error> for Failed {
    fn from(error: Error) -> Self {
        Failed {
            error,
            closed: false,
        }
    }
}

impl From<NodeError> for Failed {
    fn from(e: NodeError) -> Self {
        Error::from(e).into()
    }
}

impl From<StorageError> for Failed {
    fn from(e: StorageError) -> Self {
        Error::from(e).into()
    }
}

/// The rest of `open` once the backend is open; the caller closes it on error.
async fn open_on(
    opts: OpenOptions,
    backend: Option<Backend>,
    storage_kind: &'static str,
    js_transport: Option<Rc<JsTransport>>,
) -> Result<Replica, Failed> {
    let deadline_ms = js_sys::Date::now() + opts.join_timeout_ms as f64;
    let (store, persistence_store): (Arc<dyn BlockStore>, Option<ImageStore>) = match &backend {
        None => (Arc::new(MemoryStore::new()), None),
        Some(b) => {
            let image = ImageStore::from_files(b.load().await?, opts.storage_bytes_max)?;
            (Arc::new(image.clone()), Some(image))
        }
    };
    let engine = Arc::new(LsmEngine::open(store, lsm_options())?);
    // A store a node opened before holds its id (and secret): that id wins, and a given
    // `nodeId` must be it. A new store joining a cluster learns its id from its first
    // host before the node opens (and records it then), asking for the given one or,
    // without one, for a fresh one the host picks.
    let stored = Node::stored_id(engine.as_ref())?.is_some();
    let relay = match (&opts.seeds, stored) {
        (Some(seeds), false) => {
            let relay = Rc::new(RelayTransport::connect(
                opts.node_id.map(NodeId),
                Vec::new(),
                seeds,
                opts.token.clone(),
            )?);
            if let Err(error) = attach(&relay, &opts, deadline_ms).await {
                relay.close();
                return Err(error.into());
            }
            Some(relay)
        }
        _ => None,
    };
    let id = match &relay {
        Some(relay) => relay.id().ok_or_else(|| {
            relay.close();
            Error::new(
                Code::Unavailable,
                "the host welcomed the replica without an id",
            )
        })?,
        None => NodeId(opts.node_id.unwrap_or(options::NODE_ID_DEFAULT)),
    };
    let mut spec = NodeSpec::new(id.0, opts.zone.clone(), opts.capacity);
    let config = if opts.seeds.is_some() {
        // A joiner: the cluster sends it the layout once a member adds it.
        NodeConfig::new(spec.id, spec.zone.clone(), spec.capacity, Vec::new())
    } else if opts.transport.is_some() {
        spec = spec.with_address(format!("js:{}", id.0));
        let members = opts.members.clone().unwrap_or_default();
        let mut config = NodeConfig::for_member(&spec, members);
        if let Some(n) = opts.replicas {
            config.replicas = n;
            config.eventual_r = config.eventual_r.min(n);
            config.eventual_w = config.eventual_w.min(n);
        }
        config
    } else {
        standalone_config(&spec)
    };
    let value_size_bytes_max = config.value_size_bytes_max;
    let mut config = config;
    // A new store's identity secret (`NodeSpec::identity`); unused once it has one.
    let _ = getrandom::fill(&mut config.fresh_identity);
    let opened = Node::open(
        config,
        engine.clone() as Arc<dyn Engine>,
        random_seed(),
        js_sys::Date::now() as u64,
    );
    let node = match opened {
        Ok(node) => node,
        Err(e) => {
            if let Some(relay) = &relay {
                relay.close();
            }
            return Err(e.into());
        }
    };
    if let Some(given) = opts.node_id.filter(|given| *given != node.id().0) {
        // Refused before anything of this open is committed.
        if let Some(relay) = &relay {
            relay.close();
        }
        return Err(Error::new(
            Code::InvalidArgument,
            format!(
                "this store belongs to node {} (its id is kept with its data), not nodeId \
                 {given}: open it without nodeId or with {0}, or use another store for \
                 node {given}",
                node.id().0
            ),
        )
        .into());
    }
    let persistence = match (persistence_store, backend) {
        (Some(store), Some(backend)) => {
            // The incarnation bump (and a new store's identity) must be durable before
            // any request is served.
            if let Err(e) = backend.commit(&store.take_changes()).await {
                if let Some(relay) = &relay {
                    relay.close();
                }
                return Err(e.into());
            }
            Some(Persistence { store, backend })
        }
        _ => None,
    };
    let relay = match (&opts.seeds, relay) {
        (Some(_), Some(relay)) => {
            relay.set_secret(node.identity_secret().to_vec());
            Some(relay)
        }
        (Some(seeds), None) => Some(Rc::new(RelayTransport::connect(
            Some(node.id()),
            node.identity_secret().to_vec(),
            seeds,
            opts.token.clone(),
        )?)),
        (None, _) => None,
    };
    let join_spec = node.join_spec(String::new());
    let transport: Rc<dyn Transport> = match (&relay, js_transport) {
        (Some(relay), _) => relay.clone(),
        (None, Some(js)) => js,
        (None, None) => Rc::new(NoPeers::default()),
    };
    let host = Host::new(
        node,
        engine,
        persistence,
        transport,
        opts.maintenance_budget_bytes,
    );
    let replica = Replica {
        host,
        defaults: Defaults {
            consistency: opts.consistency,
            raw: opts.raw,
            value_size_bytes_max,
        },
        storage_kind,
        js_network: opts.transport.is_some(),
        ephemeral: opts.ephemeral,
    };
    if let Some(relay) = relay {
        let joined = join_through_relay(&replica, &relay, join_spec, &opts, deadline_ms).await;
        if let Err(error) = joined {
            // Waits for in-flight commits and closes the backend.
            let _ = wasm_bindgen_futures::JsFuture::from(host::close(&replica.host)).await;
            return Err(Failed {
                error,
                closed: true,
            });
        }
    }
    Ok(replica)
}

/// A single member: one copy, quorums of one. Gossip and anti-entropy have nobody to
/// talk to, so their timers are slowed / off to keep an idle tab from waking often.
fn standalone_config(spec: &NodeSpec) -> NodeConfig {
    let mut config = NodeConfig::for_member(spec, vec![spec.clone()]);
    config.replicas = 1;
    config.eventual_r = 1;
    config.eventual_w = 1;
    config.gossip_interval_ms = 1000;
    config.suspect_after_ms = 5000;
    config.dead_after_ms = 10_000;
    config.anti_entropy_interval_ms = 0;
    config
}

/// Resolves once `relay` is attached to some seed (within `deadline_ms`), with the
/// layout address it gave (`relay:<host>`).
async fn attach(
    relay: &RelayTransport,
    opts: &OpenOptions,
    deadline_ms: f64,
) -> Result<String, Error> {
    let left_ms = (deadline_ms - js_sys::Date::now()).max(1.0) as u64;
    match crate::wait::within(relay.attached(), left_ms).await {
        Some(Ok(address)) => Ok(address.as_string().unwrap_or_default()),
        Some(Err(e)) => Err(Error::from_js(e)),
        None => Err(Error::new(
            Code::Unavailable,
            format!(
                "no seed accepted the replica within {} ms (last error: {})",
                opts.join_timeout_ms,
                relay.last_error().unwrap_or_else(|| "none".into())
            ),
        )),
    }
}

/// The error for a replica whose store is not the member its id names.
fn displaced(id: NodeId, why: &str) -> Error {
    Error::new(
        Code::Identity,
        format!(
            "node id {0}: {why}. This store cannot prove it is member {0} (it lost its data, \
             or the id is another store's); acting as it could lose acknowledged writes. \
             Rejoin under a new id: open without nodeId (the cluster assigns one), after \
             removing {0} from the cluster (`ringkv remove {0}`) if it is gone for good",
            id.0
        ),
    )
}

/// The core's refusal of a `Join` that would rebind a member bound to another store.
const JOIN_REBIND_REFUSED: &str = "is bound to another store";

/// Attaches to a seed's relay and, unless the replica is a member already (reopened),
/// asks that seed to add it; resolves once the replica's node sees itself in the
/// layout. Bounded by `deadline_ms` (`joinTimeoutMs` from the start of `open`). A
/// store that is not the member its id names fails at once with IDENTITY.
async fn join_through_relay(
    replica: &Replica,
    relay: &RelayTransport,
    spec: NodeSpec,
    opts: &OpenOptions,
    deadline_ms: f64,
) -> Result<(), Error> {
    let address = attach(relay, opts, deadline_ms).await?;
    let role = |r: &Replica| r.host.borrow().node().status().membership.role;
    let id = spec.id;
    if role(replica) == Role::Joining {
        let url = relay
            .attached_endpoint("/client")
            .ok_or_else(|| Error::new(Code::Unavailable, "the relay detached while joining"))?;
        // Each step gets what is left of the join timeout, not all of it.
        let left_ms = (deadline_ms - js_sys::Date::now()).max(1000.0) as u64;
        let conn = Conn::new(&[url], opts.token.clone(), left_ms)?;
        Conn::connect(&conn).await?;
        let join = ClientRequest::Admin(AdminRequest::Join(spec.with_address(address)));
        let joined = client::admin(&conn, join, deadline_ms).await;
        client::close(&conn);
        match joined {
            Err(e) if e.message.contains(JOIN_REBIND_REFUSED) => {
                return Err(displaced(
                    id,
                    &format!("the cluster refused the join ({})", e.message),
                ))
            }
            other => other?,
        }
    }
    while role(replica) == Role::Joining {
        if js_sys::Date::now() > deadline_ms {
            return Err(Error::new(
                Code::Unavailable,
                format!(
                    "the cluster accepted the join but the layout did not arrive within {} ms",
                    opts.join_timeout_ms
                ),
            ));
        }
        crate::wait::sleep_ms(50).await;
    }
    if role(replica) == Role::Displaced {
        return Err(displaced(
            id,
            "the cluster's layout binds it to another store",
        ));
    }
    Ok(())
}

/// How long an ephemeral replica's `close()` tries to leave the cluster (the change
/// chosen, then committed) before closing anyway.
const EPHEMERAL_LEAVE_MS: f64 = 10_000.0;

/// An ephemeral member asks the cluster to let it leave (retrying while another change
/// is in progress) and runs until the change has committed as far as it can tell, so
/// its ranges' new replicas can stream from it. Best effort: if the cluster cannot
/// choose the change in time, the replica stays a (dead, once closed) member until
/// removed (`ringkv remove ID`).
async fn leave_before_close(shared: &Shared) {
    let deadline_ms = js_sys::Date::now() + EPHEMERAL_LEAVE_MS;
    let status = |shared: &Shared| {
        let h = shared.borrow();
        (h.failed().is_some(), h.node().status().membership)
    };
    let mut backoff_ms = 200;
    loop {
        let (failed, membership) = status(shared);
        if failed || membership.role != Role::Member {
            break;
        }
        let id = shared.borrow().node().id();
        let leave = ClientRequest::Admin(AdminRequest::Leave(id));
        let outcome =
            wasm_bindgen_futures::JsFuture::from(host::submit(shared, leave, Kind::Write))
                .await
                .map_err(Error::from_js);
        match outcome {
            Ok(_) => break,
            Err(e) if e.code == Code::Unavailable && js_sys::Date::now() < deadline_ms => {
                crate::wait::sleep_ms(backoff_ms).await;
                backoff_ms = (backoff_ms * 2).min(2_000);
            }
            Err(_) => return,
        }
    }
    // Chosen: the node is `Left` once the change commits (the ranges it moves have
    // streamed to their new replicas); until then it is still one of their sources.
    while js_sys::Date::now() < deadline_ms {
        let (failed, membership) = status(shared);
        if failed || membership.role != Role::Member {
            return;
        }
        crate::wait::sleep_ms(50).await;
    }
}

fn rejected(e: Error) -> Promise {
    Promise::reject(&e.into())
}

fn check_event(event: &str) -> Result<(), Error> {
    match event {
        "membership" => Ok(()),
        other => Err(Error::new(
            Code::InvalidArgument,
            format!("unknown event {other:?} (events: 'membership')"),
        )),
    }
}

/// A ring position as a fraction of the ring.
fn fraction(position: u64) -> f64 {
    position as f64 / 18_446_744_073_709_551_616.0
}

fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsValue> {
    let ser = serde_wasm_bindgen::Serializer::json_compatible();
    value
        .serialize(&ser)
        .map_err(|e| Error::new(Code::Storage, format!("serialize: {e}")).into())
}

#[derive(Serialize)]
struct Ring {
    version: u64,
    replicas: usize,
    pending: bool,
    vnodes: Vec<Vnode>,
}

#[derive(Serialize)]
struct Vnode {
    position: f64,
    node: u64,
}

#[derive(Serialize)]
struct Preference {
    position: f64,
    nodes: Vec<u64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Status {
    node_id: u64,
    incarnation: u64,
    storage: &'static str,
    members: Vec<Member>,
    in_flight_requests: usize,
    pending_requests: usize,
    held_outputs: usize,
    store_bytes: u64,
    engine: EngineStatus,
    counters: Counters,
    host: host::HostStats,
    sends_dropped: u64,
    failed: Option<String>,
    last_storage_error: Option<String>,
    role: &'static str,
    layout_version: u64,
    pending_version: Option<u64>,
    hints_queued: u64,
    keys: Option<u64>,
    ranges: Vec<RangeView>,
    transport: TransportState,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Member {
    id: u64,
    zone: String,
    state: &'static str,
    address: String,
    capacity: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RangeView {
    start: f64,
    end: f64,
    replicas: Vec<u64>,
    /// Hex: co-replicas whose roots are equal hold the same versions.
    root: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EngineStatus {
    tables: u64,
    levels: Vec<u64>,
    flushes: u64,
    compactions: u64,
    space_used_bytes: u64,
    write_amplification: f64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Counters {
    requests: u64,
    succeeded: u64,
    unavailable: u64,
    indeterminate: u64,
    overloaded: u64,
    storage_errors: u64,
}

#[wasm_bindgen]
impl Replica {
    /// Opens a replica. See `ReplicaOptions` in index.d.ts.
    pub async fn open(options: JsValue) -> Result<Replica, JsValue> {
        let opts = options::parse_open(&options)?;
        Ok(open_inner(opts).await?)
    }

    fn run(&self, prepared: Result<(ClientRequest, Kind), Error>) -> Promise {
        match prepared {
            Ok((request, kind)) => host::submit(&self.host, request, kind),
            Err(e) => rejected(e),
        }
    }

    /// Stores `value` under `key`; resolves once durable.
    pub fn put(&self, key: JsValue, value: JsValue, opts: JsValue) -> Promise {
        self.run(request::put(&key, &value, &opts, self.defaults))
    }

    /// The value under `key`, or `undefined`.
    pub fn get(&self, key: JsValue, opts: JsValue) -> Promise {
        self.run(request::get(&key, &opts, self.defaults))
    }

    /// Eventual mode: every concurrent value of `key` and the context to write back.
    #[wasm_bindgen(js_name = getSiblings)]
    pub fn get_siblings(&self, key: JsValue, opts: JsValue) -> Promise {
        self.run(request::siblings(&key, &opts, self.defaults))
    }

    /// Deletes `key`; resolves once durable.
    pub fn delete(&self, key: JsValue, opts: JsValue) -> Promise {
        self.run(request::delete(&key, &opts, self.defaults))
    }

    /// Stores `next` (`undefined`: deletes) iff the key holds `expected` (`undefined`:
    /// is absent): `{ applied, previous }`, one linearizable step.
    pub fn cas(&self, key: JsValue, expected: JsValue, next: JsValue, opts: JsValue) -> Promise {
        self.run(request::cas(&key, &expected, &next, &opts, self.defaults))
    }

    /// Stores `value` iff the key is absent; whether it did.
    #[wasm_bindgen(js_name = setIfAbsent)]
    pub fn set_if_absent(&self, key: JsValue, value: JsValue, opts: JsValue) -> Promise {
        self.run(request::set_if(&key, &value, false, &opts, self.defaults))
    }

    /// Stores `value` iff the key has a value; whether it did.
    #[wasm_bindgen(js_name = setIfPresent)]
    pub fn set_if_present(&self, key: JsValue, value: JsValue, opts: JsValue) -> Promise {
        self.run(request::set_if(&key, &value, true, &opts, self.defaults))
    }

    /// Stores `value` (`undefined`: deletes) and returns the value it replaced.
    #[wasm_bindgen(js_name = getAndSet)]
    pub fn get_and_set(&self, key: JsValue, value: JsValue, opts: JsValue) -> Promise {
        self.run(request::get_and_set(&key, &value, &opts, self.defaults))
    }

    /// Adds `by` (default 1) to the key's decimal counter (absent: 0); the new count.
    pub fn increment(&self, key: JsValue, by: JsValue, opts: JsValue) -> Promise {
        self.run(request::increment(&key, &by, &opts, self.defaults))
    }

    /// The key's counter (its decimal bytes) as a number or BigInt, or `undefined`.
    #[wasm_bindgen(js_name = getCounter)]
    pub fn get_counter(&self, key: JsValue, opts: JsValue) -> Promise {
        self.run(request::get_counter(&key, &opts, self.defaults))
    }

    /// One scan page from `cursor`: `{ keys, cursor }` (the JS `scan()` pages with it).
    #[wasm_bindgen(js_name = scanPage)]
    pub fn scan_page(&self, cursor: JsValue, opts: JsValue) -> Promise {
        self.run(request::scan_page(&cursor, &opts))
    }

    /// Hands the replica a peer frame that arrived from node `from` over the JS network
    /// given as `transport`.
    pub fn deliver(&self, from: JsValue, frame: &[u8]) -> Result<(), JsValue> {
        if !self.js_network {
            return Err(Error::new(
                Code::Unsupported,
                "deliver() is for replicas opened with a JS transport",
            )
            .into());
        }
        let from = options::node_id(&from, "from")?;
        let messages = protocol::decode_frame(frame)
            .map_err(|e| Error::new(Code::InvalidArgument, format!("undecodable frame: {e}")))?;
        for message in messages {
            host::deliver(&self.host, from, message);
        }
        Ok(())
    }

    /// Asks the cluster, through this member, to add node `spec` (or change its spec).
    /// Resolves once the change is chosen; its ranges then stream to it.
    pub fn join(&self, spec: JsValue) -> Promise {
        self.run(
            options::member(&spec)
                .map(|spec| (ClientRequest::Admin(AdminRequest::Join(spec)), Kind::Write)),
        )
    }

    /// Asks the cluster to let node `id` (default: this replica) leave once its data has
    /// moved to the remaining members.
    pub fn leave(&self, id: JsValue) -> Promise {
        let id = match id {
            id if id.is_undefined() => Ok(self.host.borrow().node().id()),
            id => options::node_id(&id, "id"),
        };
        self.run(id.map(|id| (ClientRequest::Admin(AdminRequest::Leave(id)), Kind::Write)))
    }

    /// Removes node `id`, which is gone for good, from the layout; `{ force: true }`
    /// rebuilds its ranges from fewer than a majority of their replicas, or aborts the
    /// change of a joiner that died (`AdminRequest::ForceRemove`).
    pub fn remove(&self, id: JsValue, options: JsValue) -> Promise {
        let request = options::node_id(&id, "id").and_then(|id| {
            let admin = if options::remove_force(&options)? {
                AdminRequest::ForceRemove(id)
            } else {
                AdminRequest::Remove(id)
            };
            Ok((ClientRequest::Admin(admin), Kind::Write))
        });
        self.run(request)
    }

    /// Aborts the membership change in progress (`AdminRequest::Abort`).
    pub fn abort(&self) -> Promise {
        self.run(Ok((ClientRequest::Admin(AdminRequest::Abort), Kind::Write)))
    }

    /// The newest layout's ring: `{ version, replicas, pending, vnodes: [{ position,
    /// node }] }`, positions as fractions of the ring in [0, 1).
    pub fn ring(&self) -> Result<JsValue, JsValue> {
        let h = self.host.borrow();
        let history = h.node().layout_history();
        let layout = history.newest();
        let ring = Ring {
            version: layout.version(),
            replicas: layout.replicas(),
            pending: history.pending().is_some(),
            vnodes: layout
                .tokens()
                .iter()
                .map(|(position, node)| Vnode {
                    position: fraction(*position),
                    node: node.0,
                })
                .collect(),
        };
        to_js(&ring)
    }

    /// Where `key` sits on the ring and the nodes that hold it (newest layout, in
    /// preference order).
    #[wasm_bindgen(js_name = preferenceList)]
    pub fn preference_list(&self, key: JsValue) -> Result<JsValue, JsValue> {
        let key = options::key(&key)?;
        let h = self.host.borrow();
        let nodes = h.node().layout_history().newest().preference_list(&key);
        to_js(&Preference {
            position: fraction(key_position(&key)),
            nodes: nodes.iter().map(|n| n.0).collect(),
        })
    }

    /// `on('membership', listener)`: called with `{ version, pendingVersion, members }`
    /// when the layout or a member's liveness changes.
    pub fn on(&self, event: &str, listener: Function) -> Result<(), JsValue> {
        check_event(event)?;
        Ok(self.host.borrow_mut().add_listener(listener)?)
    }

    pub fn off(&self, event: &str, listener: Function) -> Result<(), JsValue> {
        check_event(event)?;
        self.host.borrow_mut().remove_listener(&listener);
        Ok(())
    }

    /// Stops accepting requests; resolves when in-flight ones are answered and durable.
    /// An ephemeral replica first leaves the cluster (best effort, bounded by
    /// `EPHEMERAL_LEAVE_MS`): its store is gone once closed, so it must not stay a member.
    pub fn close(&self) -> Promise {
        if !self.ephemeral {
            return host::close(&self.host);
        }
        let shared = self.host.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            leave_before_close(&shared).await;
            wasm_bindgen_futures::JsFuture::from(host::close(&shared)).await
        })
    }

    /// A snapshot of the replica's state (see `ReplicaStatus` in index.d.ts).
    pub fn status(&self) -> Result<JsValue, JsValue> {
        let h = self.host.borrow();
        let s = h.node().status();
        let e = h.engine().stats();
        let status = Status {
            node_id: s.id.0,
            incarnation: s.incarnation,
            storage: self.storage_kind,
            members: s
                .members
                .iter()
                .map(|m| Member {
                    id: m.spec.id.0,
                    zone: m.spec.zone.clone(),
                    state: host::member_state(m.state),
                    address: m.spec.address.clone(),
                    capacity: m.spec.capacity,
                })
                .collect(),
            role: match s.membership.role {
                Role::Joining => "joining",
                Role::Member => "member",
                Role::Left => "left",
                Role::Displaced => "displaced",
            },
            layout_version: s.membership.committed_version,
            pending_version: s.membership.pending_version,
            hints_queued: s.hint_queues.values().sum(),
            // Counted from the position index on each call; capped (see local_keys).
            keys: count_local_keys(h.engine()).ok(),
            ranges: s
                .anti_entropy
                .ranges
                .iter()
                .map(|r| RangeView {
                    start: fraction(r.range.start_exclusive),
                    end: fraction(r.range.end_inclusive),
                    replicas: r.replicas.iter().map(|n| n.0).collect(),
                    root: format!("{:016x}", r.root),
                })
                .collect(),
            transport: h.transport().state(),
            in_flight_requests: s.in_flight_requests,
            pending_requests: h.pending_len(),
            held_outputs: h.held_len(),
            store_bytes: e.space_used_bytes,
            engine: EngineStatus {
                tables: e.tables,
                levels: e.levels.clone(),
                flushes: e.flushes,
                compactions: e.compactions,
                space_used_bytes: e.space_used_bytes,
                write_amplification: e.write_amplification(),
            },
            counters: Counters {
                requests: s.counters.requests,
                succeeded: s.counters.succeeded,
                unavailable: s.counters.unavailable,
                indeterminate: s.counters.indeterminate,
                overloaded: s.counters.overloaded,
                storage_errors: s.counters.storage_errors,
            },
            host: h.stats.clone(),
            sends_dropped: h.dropped_sends(),
            failed: h.failed().map(|e| e.message.clone()),
            last_storage_error: s.last_storage_error.clone(),
        };
        to_js(&status)
    }
}

/// Encodes a JS value with the package's value format (exposed for tests and tools).
#[wasm_bindgen(js_name = encodeValue)]
pub fn encode_value(value: JsValue) -> Result<js_sys::Uint8Array, JsValue> {
    let bytes = value::encode(&value, usize::MAX).map_err(Error::from)?;
    Ok(js_sys::Uint8Array::from(bytes.as_slice()))
}

/// Decodes bytes produced by `encodeValue`.
#[wasm_bindgen(js_name = decodeValue)]
pub fn decode_value(bytes: &[u8]) -> Result<JsValue, JsValue> {
    Ok(value::decode(bytes).map_err(Error::from)?)
}

/// The message type of a peer frame (`'Read'`, `'Write'`, `'Gossip'`, ...), for tools
/// that show traffic; `'Relayed'` envelopes name their inner frame.
#[wasm_bindgen(js_name = frameKind)]
pub fn frame_kind(frame: &[u8]) -> Result<String, JsValue> {
    let message = protocol::decode(frame)
        .map_err(|e| Error::new(Code::InvalidArgument, format!("undecodable frame: {e}")))?;
    let debug = format!("{message:?}");
    let end = debug
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(debug.len());
    Ok(debug[..end].to_string())
}

/// The version vector inside an eventual-mode context: `{ [nodeId]: counter }`.
#[wasm_bindgen(js_name = describeContext)]
pub fn describe_context(context: &[u8]) -> Result<JsValue, JsValue> {
    let vector = ringkv_core::node::eventual::decode_context(context)
        .map_err(|e| Error::new(Code::InvalidContext, e.to_string()))?;
    let object = js_sys::Object::new();
    for (node, counter) in vector.iter() {
        let _ = js_sys::Reflect::set(
            &object,
            &node.0.to_string().into(),
            &(counter as f64).into(),
        );
    }
    Ok(object.into())
}
