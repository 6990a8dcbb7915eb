//! `Replica.open` and per-operation options, read from JS objects with typed errors for
//! every bad field. Defaults and meanings are documented in wasm/README.md and
//! wasm/js/index.d.ts (`ReplicaOptions`, `OperationOptions`).

use js_sys::{Reflect, Uint8Array};
use ringkv_core::node::config::VALUE_SIZE_BYTES_MAX_DEFAULT;
use ringkv_core::node::Consistency;
use ringkv_core::ring::NodeSpec;
use wasm_bindgen::{JsCast, JsValue};

use crate::error::{Code, Error};
use crate::request::Defaults;

/// Bytes an image-backed store may hold by default (the whole store lives in memory).
pub const STORAGE_BYTES_MAX_DEFAULT: u64 = 256 << 20;
/// Input bytes of compaction per `maintain` step between events (a few ms of work).
pub const MAINTENANCE_BUDGET_BYTES_DEFAULT: u64 = 256 << 10;
/// How long `Replica.open({ seeds })` waits to become a member.
pub const JOIN_TIMEOUT_MS_DEFAULT: u64 = 60_000;
/// A client's deadline for one answer.
pub const REQUEST_TIMEOUT_MS_DEFAULT: u64 = 30_000;
/// Seeds and members accepted in one call, at most.
pub const LIST_LEN_MAX: u32 = 64;

pub enum Storage {
    Memory,
    IndexedDb { database: String },
    Js(JsValue),
}

/// `nodeId` when the application gives none and the replica is standalone or on a JS
/// network (a replica joining through `seeds` gets its id from the cluster instead).
pub const NODE_ID_DEFAULT: u64 = 1;
/// The store name (IndexedDB database `ringkv-<name>`, OPFS directory) of a replica
/// joining through `seeds` without a `nodeId` or `database`.
pub const CLUSTER_STORE_NAME: &str = "cluster";

pub struct OpenOptions {
    /// `nodeId` as given. Through `seeds`, `None` asks the cluster for a unique id; a
    /// store that has one (from an earlier open) keeps it, and a given id must match it.
    pub node_id: Option<u64>,
    /// `ephemeral: true`: joins through `seeds` on a memory store (gone on close or
    /// reload), always under a fresh cluster-assigned id, leaving the cluster on close.
    pub ephemeral: bool,
    pub zone: String,
    /// Ring weight (virtual nodes) when joining a cluster.
    pub capacity: u32,
    /// Join a native cluster through one of these nodes' relay.
    pub seeds: Option<Vec<String>>,
    /// A new cluster over a JS network: its initial members.
    pub members: Option<Vec<NodeSpec>>,
    /// The JS network (`{ send(to, frame) }`).
    pub transport: Option<JsValue>,
    pub token: Option<String>,
    /// N, copies of each key, for a new cluster.
    pub replicas: Option<usize>,
    /// `valueEncoding: 'raw'`: values are bytes (interoperates with RESP clients).
    pub raw: bool,
    pub join_timeout_ms: u64,
    pub storage: Storage,
    pub consistency: Consistency,
    pub storage_bytes_max: u64,
    pub maintenance_budget_bytes: u64,
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::new(Code::InvalidArgument, msg)
}

fn field(obj: &JsValue, name: &str) -> JsValue {
    if obj.is_object() {
        Reflect::get(obj, &name.into()).unwrap_or(JsValue::UNDEFINED)
    } else {
        JsValue::UNDEFINED
    }
}

fn positive_integer(v: &JsValue, name: &str) -> Result<Option<u64>, Error> {
    if v.is_undefined() {
        return Ok(None);
    }
    if let Some(n) = v.as_f64() {
        if n.fract() == 0.0 && (1.0..=9_007_199_254_740_991.0).contains(&n) {
            return Ok(Some(n as u64));
        }
    } else if v.is_bigint() {
        if let Ok(n) = u64::try_from(v.clone()) {
            if n >= 1 {
                return Ok(Some(n));
            }
        }
    }
    Err(invalid(format!("{name} must be a positive integer")))
}

pub fn consistency(v: &JsValue) -> Result<Option<Consistency>, Error> {
    match v.as_string().as_deref() {
        _ if v.is_undefined() => Ok(None),
        Some("linearizable") => Ok(Some(Consistency::Linearizable)),
        Some("eventual") => Ok(Some(Consistency::Eventual)),
        _ => Err(invalid("consistency must be 'linearizable' or 'eventual'")),
    }
}

pub fn parse_open(options: &JsValue) -> Result<OpenOptions, Error> {
    if !(options.is_undefined() || options.is_object()) {
        return Err(invalid("Replica.open takes an options object"));
    }
    let node_id = positive_integer(&field(options, "nodeId"), "nodeId")?;
    let ephemeral = match field(options, "ephemeral") {
        e if e.is_undefined() || e.is_null() => false,
        e => e
            .as_bool()
            .ok_or_else(|| invalid("ephemeral must be a boolean"))?,
    };
    let zone = match field(options, "zone") {
        z if z.is_undefined() => "local".to_string(),
        z => z
            .as_string()
            .ok_or_else(|| invalid("zone must be a string"))?,
    };
    let seeds = seeds(&field(options, "seeds"))?;
    let members = members(&field(options, "members"))?;
    let transport = match field(options, "transport") {
        t if t.is_undefined() || t.is_null() => None,
        t if t.is_object() => Some(t),
        _ => {
            return Err(invalid(
                "transport must be an object with a send(to, frame) method",
            ))
        }
    };
    if seeds.is_some() && (transport.is_some() || members.is_some()) {
        return Err(invalid(
            "seeds (join a native cluster through its relay) cannot be combined with \
             transport or members (a cluster over a JS network)",
        ));
    }
    if members.is_some() && transport.is_none() {
        return Err(invalid("members needs a transport to reach them"));
    }
    if let Some(members) = &members {
        let id = node_id.unwrap_or(NODE_ID_DEFAULT);
        if !members.iter().any(|m| m.id.0 == id) {
            return Err(invalid(format!(
                "members must include this replica (nodeId {id})"
            )));
        }
    }
    let storage_value = field(options, "storage");
    let store_name = match (node_id, &seeds) {
        (Some(id), _) => id.to_string(),
        (None, Some(_)) => CLUSTER_STORE_NAME.to_string(),
        (None, None) => NODE_ID_DEFAULT.to_string(),
    };
    let storage = match storage_value.as_string().as_deref() {
        _ if storage_value.is_undefined() => Storage::Memory,
        Some("memory") => Storage::Memory,
        Some("indexeddb") => {
            let database = match field(options, "database") {
                d if d.is_undefined() => format!("ringkv-{store_name}"),
                d => d
                    .as_string()
                    .ok_or_else(|| invalid("database must be a string"))?,
            };
            Storage::IndexedDb { database }
        }
        Some("opfs") => {
            return Err(Error::new(
                Code::Unsupported,
                "storage 'opfs' is provided by the package's browser build, in dedicated \
                 workers; use 'indexeddb' or a block store here",
            ))
        }
        Some(other) => {
            return Err(invalid(format!(
                "storage must be 'memory', 'indexeddb' or a block store object, not {other:?}"
            )))
        }
        None if storage_value.is_object() => Storage::Js(storage_value),
        None => return Err(invalid("storage must be a string or a block store object")),
    };
    check_durability(&seeds, &storage, ephemeral, node_id)?;
    let replicas = positive_integer(&field(options, "replicas"), "replicas")?;
    if replicas.is_some_and(|n| n > 9) {
        return Err(invalid("replicas must be at most 9"));
    }
    Ok(OpenOptions {
        node_id,
        ephemeral,
        zone,
        capacity: capacity(&field(options, "capacity"))?,
        seeds,
        members,
        transport,
        token: token(&field(options, "token"))?,
        replicas: replicas.map(|n| n as usize),
        raw: encoding(&field(options, "valueEncoding"), "valueEncoding")?.unwrap_or(false),
        join_timeout_ms: milliseconds(&field(options, "joinTimeoutMs"), "joinTimeoutMs")?
            .unwrap_or(JOIN_TIMEOUT_MS_DEFAULT),
        storage,
        consistency: consistency(&field(options, "consistency"))?.unwrap_or_default(),
        storage_bytes_max: positive_integer(&field(options, "storageBytesMax"), "storageBytesMax")?
            .unwrap_or(STORAGE_BYTES_MAX_DEFAULT),
        maintenance_budget_bytes: positive_integer(
            &field(options, "maintenanceBudgetBytes"),
            "maintenanceBudgetBytes",
        )?
        .unwrap_or(MAINTENANCE_BUDGET_BYTES_DEFAULT),
    })
}

/// A cluster member must keep what it acknowledged and voted for across reloads: a
/// replica joining through `seeds` on a store that forgets (`'memory'`) must say so
/// (`ephemeral: true`), and then always joins as a new member (a fresh id from the
/// cluster, never a given one: a reloaded memory replica under its old id would be a
/// member that lost its acknowledged writes and Paxos votes).
fn check_durability(
    seeds: &Option<Vec<String>>,
    storage: &Storage,
    ephemeral: bool,
    node_id: Option<u64>,
) -> Result<(), Error> {
    let memory = matches!(storage, Storage::Memory);
    match (seeds.is_some(), ephemeral) {
        (false, true) => Err(invalid(
            "ephemeral applies to a replica joining a cluster through seeds",
        )),
        (true, false) if memory => Err(invalid(
            "joining a cluster with storage 'memory' needs ephemeral: true (the replica \
             forgets everything on close or reload, so it joins under a fresh id each time \
             and leaves on close); for a member that survives reloads pass a durable \
             storage ('indexeddb', 'opfs' or a block store)",
        )),
        (true, true) if !memory => Err(invalid(
            "ephemeral: true is for storage 'memory'; a durable store keeps its id and \
             data across reopens",
        )),
        (true, true) if node_id.is_some() => Err(invalid(
            "an ephemeral replica always joins under a fresh id the cluster assigns: \
             drop nodeId (an id reused by a store that forgot its data would be a member \
             that lost its acknowledged writes)",
        )),
        _ => Ok(()),
    }
}

/// Per-operation options: `{ consistency?, context?, encoding? }`.
pub struct OpOptions {
    pub consistency: Option<Consistency>,
    /// `encoding: 'raw' | 'structured'`, overriding the replica's or client's default.
    pub raw: Option<bool>,
    /// Eventual writes: the context of an earlier `getSiblings`.
    pub context: Option<Vec<u8>>,
}

pub fn parse_op(opts: &JsValue) -> Result<OpOptions, Error> {
    if !(opts.is_undefined() || opts.is_null() || opts.is_object()) {
        return Err(invalid("operation options must be an object"));
    }
    let context = match field(opts, "context") {
        c if c.is_undefined() => None,
        c => Some(
            c.dyn_into::<Uint8Array>()
                .map_err(|_| invalid("context must be the Uint8Array getSiblings returned"))?
                .to_vec(),
        ),
    };
    Ok(OpOptions {
        consistency: consistency(&field(opts, "consistency"))?,
        raw: encoding(&field(opts, "encoding"), "encoding")?,
        context,
    })
}

/// An optional boolean option `name` of `opts` (absent: false).
pub fn flag(opts: &JsValue, name: &str) -> Result<bool, Error> {
    match field(opts, name) {
        f if f.is_undefined() => Ok(false),
        f => f
            .as_bool()
            .ok_or_else(|| invalid(format!("option {name} must be a boolean"))),
    }
}

/// A scan cursor: the BigInt (or safe-integer number) a page returned; `0` starts.
pub fn cursor(v: &JsValue) -> Result<u64, Error> {
    if v.is_undefined() {
        return Ok(0);
    }
    let from_number = v
        .as_f64()
        .filter(|n| n.fract() == 0.0 && (0.0..=9_007_199_254_740_991.0).contains(n))
        .map(|n| n as u64);
    let from_bigint = || {
        v.is_bigint()
            .then(|| u64::try_from(v.clone()).ok())
            .flatten()
    };
    from_number.or_else(from_bigint).ok_or_else(|| {
        invalid("a scan cursor must be the BigInt a page returned (0n starts a scan)")
    })
}

/// `scan`/`scanPage` options.
pub struct ScanOptions {
    /// Keys to ask for per page (the core clamps to `SCAN_COUNT_MAX`).
    pub count: Option<u32>,
    /// `match`: a Redis glob pattern (string or bytes) keys must match.
    pub pattern: Option<Vec<u8>>,
    /// `keyEncoding: 'raw'`: keys as `Uint8Array` always (default `'utf8'`: strings,
    /// bytes only for keys that are not valid UTF-8).
    pub raw_keys: bool,
}

pub fn parse_scan(opts: &JsValue) -> Result<ScanOptions, Error> {
    if !(opts.is_undefined() || opts.is_null() || opts.is_object()) {
        return Err(invalid("scan options must be an object"));
    }
    // Beyond u32 is "as many as a page may hold": the core clamps to SCAN_COUNT_MAX.
    let count = positive_integer(&field(opts, "count"), "scan count")?
        .map(|n| u32::try_from(n).unwrap_or(u32::MAX));
    let pattern = match field(opts, "match") {
        m if m.is_undefined() || m.is_null() => None,
        m => Some(key(&m).map_err(|_| invalid("match must be a glob pattern string"))?),
    };
    let raw_keys = match field(opts, "keyEncoding").as_string().as_deref() {
        _ if field(opts, "keyEncoding").is_undefined() => false,
        Some("utf8") => false,
        Some("raw") => true,
        _ => return Err(invalid("keyEncoding must be 'utf8' or 'raw'")),
    };
    Ok(ScanOptions {
        count,
        pattern,
        raw_keys,
    })
}

/// `remove`'s options: `{ force?: boolean }`.
pub fn remove_force(opts: &JsValue) -> Result<bool, Error> {
    if !(opts.is_undefined() || opts.is_null() || opts.is_object()) {
        return Err(invalid("remove options must be an object"));
    }
    match field(opts, "force") {
        f if f.is_undefined() => Ok(false),
        f => f
            .as_bool()
            .ok_or_else(|| invalid("remove option force must be a boolean")),
    }
}

/// A key: a string (stored as its UTF-8 bytes) or a `Uint8Array`.
pub fn key(v: &JsValue) -> Result<Vec<u8>, Error> {
    if let Some(s) = v.as_string() {
        return Ok(s.into_bytes());
    }
    if let Some(b) = v.dyn_ref::<Uint8Array>() {
        return Ok(b.to_vec());
    }
    Err(invalid("a key must be a string or a Uint8Array"))
}

/// The longest delay `setTimeout` honours (larger ones fire at once).
const TIMEOUT_MS_MAX: u64 = 2_147_483_647;

fn milliseconds(v: &JsValue, name: &str) -> Result<Option<u64>, Error> {
    match positive_integer(v, name)? {
        Some(ms) if ms > TIMEOUT_MS_MAX => Err(invalid(format!(
            "{name} must be at most {TIMEOUT_MS_MAX} (about 24.8 days)"
        ))),
        other => Ok(other),
    }
}

/// `'raw'` → true, `'structured'` → false.
fn encoding(v: &JsValue, name: &str) -> Result<Option<bool>, Error> {
    match v.as_string().as_deref() {
        _ if v.is_undefined() => Ok(None),
        Some("raw") => Ok(Some(true)),
        Some("structured") => Ok(Some(false)),
        _ => Err(invalid(format!("{name} must be 'structured' or 'raw'"))),
    }
}

fn token(v: &JsValue) -> Result<Option<String>, Error> {
    match v {
        v if v.is_undefined() || v.is_null() => Ok(None),
        v => v
            .as_string()
            .map(Some)
            .ok_or_else(|| invalid("token must be a string")),
    }
}

fn capacity(v: &JsValue) -> Result<u32, Error> {
    match positive_integer(v, "capacity")? {
        None => Ok(1),
        Some(n) if n <= 64 => Ok(n as u32),
        Some(_) => Err(invalid("capacity must be at most 64")),
    }
}

/// The elements of a JS array, at most `LIST_LEN_MAX`; `None` for undefined, null or
/// an empty array.
fn list(v: &JsValue, name: &str) -> Result<Option<Vec<JsValue>>, Error> {
    if v.is_undefined() || v.is_null() {
        return Ok(None);
    }
    let array = v
        .dyn_ref::<js_sys::Array>()
        .ok_or_else(|| invalid(format!("{name} must be an array")))?;
    if array.length() > LIST_LEN_MAX {
        return Err(invalid(format!(
            "{name} may have at most {LIST_LEN_MAX} entries"
        )));
    }
    let items: Vec<JsValue> = array.iter().collect();
    Ok((!items.is_empty()).then_some(items))
}

/// Seed addresses: `ws://host:port`, `wss://...` or `host:port`.
pub fn seeds(v: &JsValue) -> Result<Option<Vec<String>>, Error> {
    let Some(items) = list(v, "seeds")? else {
        return Ok(None);
    };
    items
        .iter()
        .map(|s| {
            s.as_string()
                .ok_or_else(|| invalid("seeds must be strings"))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// `{ id, zone?, capacity?, address? }`, as in `ReplicaOptions.members`.
pub fn member(v: &JsValue) -> Result<NodeSpec, Error> {
    if !v.is_object() {
        return Err(invalid(
            "a member must be an object { id, zone?, capacity?, address? }",
        ));
    }
    let id = positive_integer(&field(v, "id"), "member id")?
        .ok_or_else(|| invalid("a member needs an id"))?;
    let zone = match field(v, "zone") {
        z if z.is_undefined() => "local".to_string(),
        z => z
            .as_string()
            .ok_or_else(|| invalid("member zone must be a string"))?,
    };
    let address = match field(v, "address") {
        a if a.is_undefined() => format!("js:{id}"),
        a => a
            .as_string()
            .ok_or_else(|| invalid("member address must be a string"))?,
    };
    Ok(NodeSpec::new(id, zone, capacity(&field(v, "capacity"))?).with_address(address))
}

fn members(v: &JsValue) -> Result<Option<Vec<NodeSpec>>, Error> {
    let Some(items) = list(v, "members")? else {
        return Ok(None);
    };
    let specs = items.iter().map(member).collect::<Result<Vec<_>, _>>()?;
    let mut ids: Vec<u64> = specs.iter().map(|s| s.id.0).collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.len() != specs.len() {
        return Err(invalid("members has a duplicate id"));
    }
    Ok(Some(specs))
}

pub struct ClientOptions {
    pub token: Option<String>,
    pub request_timeout_ms: u64,
    pub defaults: Defaults,
}

/// `Client.connect(seeds, { token?, consistency?, valueEncoding?, requestTimeoutMs? })`.
pub fn parse_client(options: &JsValue) -> Result<ClientOptions, Error> {
    if !(options.is_undefined() || options.is_null() || options.is_object()) {
        return Err(invalid("Client.connect takes an options object"));
    }
    Ok(ClientOptions {
        token: token(&field(options, "token"))?,
        request_timeout_ms: milliseconds(&field(options, "requestTimeoutMs"), "requestTimeoutMs")?
            .unwrap_or(REQUEST_TIMEOUT_MS_DEFAULT),
        defaults: Defaults {
            consistency: consistency(&field(options, "consistency"))?.unwrap_or_default(),
            raw: encoding(&field(options, "valueEncoding"), "valueEncoding")?.unwrap_or(false),
            value_size_bytes_max: VALUE_SIZE_BYTES_MAX_DEFAULT,
        },
    })
}

/// A node id argument (a positive integer).
pub fn node_id(v: &JsValue, name: &str) -> Result<ringkv_core::ring::NodeId, Error> {
    positive_integer(v, name)?
        .map(ringkv_core::ring::NodeId)
        .ok_or_else(|| invalid(format!("{name} must be a node id")))
}
