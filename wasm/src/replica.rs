//! `Replica`: the JS class. Opening builds the engine on the chosen store, loads the
//! durable image, opens a real `Node` (a single-member cluster when standalone) and
//! commits the node's opening writes (its incarnation bump) before resolving.

use std::rc::Rc;
use std::sync::Arc;

use js_sys::Promise;
use ringkv_core::node::{ClientRequest, Consistency, Node, NodeConfig};
use ringkv_core::ring::{NodeId, NodeSpec};
use ringkv_core::storage::blockstore::MemoryStore;
use ringkv_core::storage::lsm::{LsmEngine, LsmOptions};
use ringkv_core::storage::{BlockStore, Engine};
use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::backend::{Backend, IdbBackend, JsBackend};
use crate::error::{Code, Error};
use crate::host::{self, Host, Kind, Persistence, Shared};
use crate::image::ImageStore;
use crate::options::{self, OpenOptions, Storage};
use crate::transport::NoPeers;
use crate::value;

#[wasm_bindgen]
pub struct Replica {
    host: Shared,
    default_consistency: Consistency,
    value_size_bytes_max: usize,
    storage_kind: &'static str,
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
    let (backend, storage_kind) = match &opts.storage {
        Storage::Memory => (None, "memory"),
        Storage::IndexedDb { database } => (
            Some(Backend::IndexedDb(IdbBackend::open(database).await?)),
            "indexeddb",
        ),
        Storage::Js(object) => (Some(Backend::Js(JsBackend::new(object.clone())?)), "custom"),
    };
    let (store, persistence_store): (Arc<dyn BlockStore>, Option<ImageStore>) = match &backend {
        None => (Arc::new(MemoryStore::new()), None),
        Some(b) => {
            let image = ImageStore::from_files(b.load().await?, opts.storage_bytes_max)?;
            (Arc::new(image.clone()), Some(image))
        }
    };
    let engine = Arc::new(LsmEngine::open(store, lsm_options())?);
    let spec = NodeSpec {
        id: NodeId(opts.node_id),
        zone: opts.zone.clone(),
        capacity: 1,
        address: String::new(),
    };
    let mut config = NodeConfig::for_member(&spec, vec![spec.clone()]);
    // A single member: one copy, quorums of one. Gossip and anti-entropy have nobody to
    // talk to, so their timers are slowed / off to keep an idle tab from waking often.
    config.replicas = 1;
    config.eventual_r = 1;
    config.eventual_w = 1;
    config.gossip_interval_ms = 1000;
    config.suspect_after_ms = 5000;
    config.dead_after_ms = 10_000;
    config.anti_entropy_interval_ms = 0;
    let value_size_bytes_max = config.value_size_bytes_max;
    let node = Node::open(
        config,
        engine.clone() as Arc<dyn Engine>,
        random_seed(),
        js_sys::Date::now() as u64,
    )?;
    let persistence = match (persistence_store, backend) {
        (Some(store), Some(backend)) => {
            // The incarnation bump must be durable before any request is served.
            backend.commit(&store.take_changes()).await?;
            Some(Persistence { store, backend })
        }
        _ => None,
    };
    let host = Host::new(
        node,
        engine,
        persistence,
        Rc::new(NoPeers::default()),
        opts.maintenance_budget_bytes,
    );
    Ok(Replica {
        host,
        default_consistency: opts.consistency,
        value_size_bytes_max,
        storage_kind,
    })
}

fn rejected(e: Error) -> Promise {
    Promise::reject(&e.into())
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
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Member {
    id: u64,
    zone: String,
    state: String,
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

    fn request(&self, opts: &JsValue) -> Result<(options::OpOptions, Consistency), Error> {
        let o = options::parse_op(opts)?;
        let c = o.consistency.unwrap_or(self.default_consistency);
        Ok((o, c))
    }

    /// Stores `value` under `key`; resolves once durable.
    pub fn put(&self, key: JsValue, value: JsValue, opts: JsValue) -> Promise {
        let prepared = (|| {
            let key = options::key(&key)?;
            let value = value::encode(&value, self.value_size_bytes_max)?;
            let (o, consistency) = self.request(&opts)?;
            Ok::<_, Error>(match (consistency, o.context) {
                (Consistency::Eventual, context @ Some(_)) => ClientRequest::PutEventual {
                    key,
                    value,
                    context,
                },
                (consistency, _) => ClientRequest::Put {
                    key,
                    value,
                    consistency,
                },
            })
        })();
        match prepared {
            Ok(req) => host::submit(&self.host, req, Kind::Write),
            Err(e) => rejected(e),
        }
    }

    /// The value under `key`, or `undefined`.
    pub fn get(&self, key: JsValue, opts: JsValue) -> Promise {
        let prepared = (|| {
            let key = options::key(&key)?;
            let (_, consistency) = self.request(&opts)?;
            Ok::<_, Error>(ClientRequest::Get { key, consistency })
        })();
        match prepared {
            Ok(req) => host::submit(&self.host, req, Kind::Get),
            Err(e) => rejected(e),
        }
    }

    /// Eventual mode: every concurrent value of `key` and the context to write back.
    #[wasm_bindgen(js_name = getSiblings)]
    pub fn get_siblings(&self, key: JsValue) -> Promise {
        match options::key(&key) {
            Ok(key) => host::submit(
                &self.host,
                ClientRequest::Get {
                    key,
                    consistency: Consistency::Eventual,
                },
                Kind::Siblings,
            ),
            Err(e) => rejected(e),
        }
    }

    /// Deletes `key`; resolves once durable.
    pub fn delete(&self, key: JsValue, opts: JsValue) -> Promise {
        let prepared = (|| {
            let key = options::key(&key)?;
            let (o, consistency) = self.request(&opts)?;
            Ok::<_, Error>(match (consistency, o.context) {
                (Consistency::Eventual, context @ Some(_)) => {
                    ClientRequest::DeleteEventual { key, context }
                }
                (consistency, _) => ClientRequest::Delete { key, consistency },
            })
        })();
        match prepared {
            Ok(req) => host::submit(&self.host, req, Kind::Write),
            Err(e) => rejected(e),
        }
    }

    /// Stops accepting requests; resolves when in-flight ones are answered and durable.
    pub fn close(&self) -> Promise {
        host::close(&self.host)
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
                    state: format!("{:?}", m.state).to_lowercase(),
                })
                .collect(),
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
        let ser = serde_wasm_bindgen::Serializer::json_compatible();
        status
            .serialize(&ser)
            .map_err(|e| Error::new(Code::Storage, format!("status: {e}")).into())
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
