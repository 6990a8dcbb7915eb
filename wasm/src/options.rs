//! `Replica.open` and per-operation options, read from JS objects with typed errors for
//! every bad field. Defaults and meanings are documented in wasm/README.md and
//! wasm/js/index.d.ts (`ReplicaOptions`, `OperationOptions`).

use js_sys::{Reflect, Uint8Array};
use ringkv_core::node::Consistency;
use wasm_bindgen::{JsCast, JsValue};

use crate::error::{Code, Error};

/// Bytes an image-backed store may hold by default (the whole store lives in memory).
pub const STORAGE_BYTES_MAX_DEFAULT: u64 = 256 << 20;
/// Input bytes of compaction per `maintain` step between events (a few ms of work).
pub const MAINTENANCE_BUDGET_BYTES_DEFAULT: u64 = 256 << 10;

pub enum Storage {
    Memory,
    IndexedDb { database: String },
    Js(JsValue),
}

pub struct OpenOptions {
    pub node_id: u64,
    pub zone: String,
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
    let node_id = positive_integer(&field(options, "nodeId"), "nodeId")?.unwrap_or(1);
    let zone = match field(options, "zone") {
        z if z.is_undefined() => "local".to_string(),
        z => z
            .as_string()
            .ok_or_else(|| invalid("zone must be a string"))?,
    };
    let seeds = field(options, "seeds");
    if !seeds.is_undefined() && !seeds.is_null() {
        let len = Reflect::get(&seeds, &"length".into())
            .ok()
            .and_then(|l| l.as_f64());
        match len {
            Some(0.0) => {}
            Some(_) => {
                return Err(Error::new(
                    Code::Unsupported,
                    "joining a cluster (seeds) needs the relay transport, which this build \
                     does not include yet; omit seeds for a standalone replica",
                ))
            }
            None => return Err(invalid("seeds must be an array of addresses")),
        }
    }
    let storage_value = field(options, "storage");
    let storage = match storage_value.as_string().as_deref() {
        _ if storage_value.is_undefined() => Storage::Memory,
        Some("memory") => Storage::Memory,
        Some("indexeddb") => {
            let database = match field(options, "database") {
                d if d.is_undefined() => format!("ringkv-{node_id}"),
                d => d
                    .as_string()
                    .ok_or_else(|| invalid("database must be a string"))?,
            };
            Storage::IndexedDb { database }
        }
        Some("opfs") => {
            return Err(Error::new(
                Code::Unsupported,
                "storage 'opfs' is not built yet; use 'indexeddb'",
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
    Ok(OpenOptions {
        node_id,
        zone,
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

/// Per-operation options: `{ consistency?, context? }`.
pub struct OpOptions {
    pub consistency: Option<Consistency>,
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
        context,
    })
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
