//! Building a node request from a JS call's arguments: shared by `Replica` (which runs
//! it on its own node) and `Client` (which sends it to a cluster node).

use js_sys::Uint8Array;
use ringkv_core::node::{ClientRequest, Consistency};
use wasm_bindgen::{JsCast, JsValue};

use crate::error::{Code, Error};
use crate::host::Kind;
use crate::options::{self, OpOptions};
use crate::value;

/// Defaults of the replica or client the call is made on.
#[derive(Clone, Copy)]
pub struct Defaults {
    pub consistency: Consistency,
    /// Values are raw bytes instead of the value encoding.
    pub raw: bool,
    pub value_size_bytes_max: usize,
}

fn parse(opts: &JsValue, d: Defaults) -> Result<(OpOptions, Consistency, bool), Error> {
    let o = options::parse_op(opts)?;
    let consistency = o.consistency.unwrap_or(d.consistency);
    let raw = o.raw.unwrap_or(d.raw);
    Ok((o, consistency, raw))
}

/// A value's stored bytes: its encoding, or with `raw` the bytes of a `Uint8Array` or
/// the UTF-8 of a string (what RESP and other byte clients read).
fn value_bytes(value: &JsValue, raw: bool, limit_bytes: usize) -> Result<Vec<u8>, Error> {
    if !raw {
        return Ok(value::encode(value, limit_bytes)?);
    }
    let bytes = if let Some(s) = value.as_string() {
        s.into_bytes()
    } else if let Some(b) = value.dyn_ref::<Uint8Array>() {
        b.to_vec()
    } else {
        return Err(Error::new(
            Code::InvalidArgument,
            "with encoding 'raw' a value must be a string or a Uint8Array",
        ));
    };
    if bytes.len() > limit_bytes {
        return Err(Error {
            code: Code::TooLarge,
            message: format!("value is {} bytes; the limit is {limit_bytes}", bytes.len()),
            size: Some(("value".into(), bytes.len() as u64, limit_bytes as u64)),
        });
    }
    Ok(bytes)
}

pub fn put(
    key: &JsValue,
    value: &JsValue,
    opts: &JsValue,
    d: Defaults,
) -> Result<(ClientRequest, Kind), Error> {
    let key = options::key(key)?;
    let (o, consistency, raw) = parse(opts, d)?;
    let value = value_bytes(value, raw, d.value_size_bytes_max)?;
    let request = match (consistency, o.context) {
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
    };
    Ok((request, Kind::Write))
}

pub fn get(key: &JsValue, opts: &JsValue, d: Defaults) -> Result<(ClientRequest, Kind), Error> {
    let key = options::key(key)?;
    let (_, consistency, raw) = parse(opts, d)?;
    Ok((ClientRequest::Get { key, consistency }, Kind::Get { raw }))
}

pub fn siblings(
    key: &JsValue,
    opts: &JsValue,
    d: Defaults,
) -> Result<(ClientRequest, Kind), Error> {
    let key = options::key(key)?;
    let (_, _, raw) = parse(opts, d)?;
    let request = ClientRequest::Get {
        key,
        consistency: Consistency::Eventual,
    };
    Ok((request, Kind::Siblings { raw }))
}

pub fn delete(key: &JsValue, opts: &JsValue, d: Defaults) -> Result<(ClientRequest, Kind), Error> {
    let key = options::key(key)?;
    let (o, consistency, _) = parse(opts, d)?;
    let request = match (consistency, o.context) {
        (Consistency::Eventual, context @ Some(_)) => {
            ClientRequest::DeleteEventual { key, context }
        }
        (consistency, _) => ClientRequest::Delete { key, consistency },
    };
    Ok((request, Kind::Write))
}
