//! Building a node request from a JS call's arguments: shared by `Replica` (which runs
//! it on its own node) and `Client` (which sends it to a cluster node).

use std::rc::Rc;

use js_sys::Uint8Array;
use ringkv_core::node::{ClientRequest, Consistency, SCAN_COUNT_MAX};
use ringkv_core::protocol::{Condition, Update};
use wasm_bindgen::{JsCast, JsValue};

use crate::counter;
use crate::error::{Code, Error};
use crate::host::Kind;
use crate::options::{self, OpOptions};
use crate::updates::UpdateAnswer;
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
            applied: None,
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

/// The options of a conditional write: only `encoding` applies. Updates are one
/// consensus round on the key's linearizable register, so an eventual default or option
/// is refused rather than silently ignored (eventual keys are a separate keyspace the
/// update would not see), and so is an eventual `context`.
fn update_options(opts: &JsValue, d: Defaults) -> Result<bool, Error> {
    let (o, consistency, raw) = parse(opts, d)?;
    if consistency == Consistency::Eventual {
        return Err(Error::new(
            Code::InvalidArgument,
            "conditional writes and counters are linearizable only: pass \
             { consistency: 'linearizable' } on a replica or client whose default is eventual",
        ));
    }
    if o.context.is_some() {
        return Err(Error::new(
            Code::InvalidArgument,
            "context is for eventual writes; conditional writes take none",
        ));
    }
    Ok(raw)
}

/// A value of an update, where `undefined` means "absent": the expected value of `cas`
/// (must be absent) or the value to store (delete the key). An encoded `undefined`
/// therefore cannot be stored or compared through these calls (`put` can store it).
fn optional_value(value: &JsValue, raw: bool, d: Defaults) -> Result<Option<Vec<u8>>, Error> {
    if value.is_undefined() {
        return Ok(None);
    }
    value_bytes(value, raw, d.value_size_bytes_max).map(Some)
}

fn update(key: Vec<u8>, update: Update, raw: bool, answer: UpdateAnswer) -> (ClientRequest, Kind) {
    (
        ClientRequest::Update { key, update },
        Kind::Update { raw, answer },
    )
}

/// `cas(key, expected, next)`: store `next` (`undefined`: delete) iff the key holds
/// exactly `expected`'s bytes (`undefined`: is absent). The comparison is of encodings:
/// a value read with `get` and passed back compares equal to what is stored.
pub fn cas(
    key: &JsValue,
    expected: &JsValue,
    next: &JsValue,
    opts: &JsValue,
    d: Defaults,
) -> Result<(ClientRequest, Kind), Error> {
    let key = options::key(key)?;
    let raw = update_options(opts, d)?;
    let condition = match optional_value(expected, raw, d)? {
        None => Condition::Absent,
        Some(bytes) => Condition::Equals(bytes),
    };
    let value = optional_value(next, raw, d)?;
    let set = Update::Set { condition, value };
    Ok(update(key, set, raw, UpdateAnswer::Cas))
}

/// `setIfAbsent` (`present: false`) and `setIfPresent` (`present: true`): whether
/// `value` was stored.
pub fn set_if(
    key: &JsValue,
    value: &JsValue,
    present: bool,
    opts: &JsValue,
    d: Defaults,
) -> Result<(ClientRequest, Kind), Error> {
    let key = options::key(key)?;
    let raw = update_options(opts, d)?;
    let value = optional_value(value, raw, d)?;
    let condition = if present {
        // `undefined` here deletes the key if present (answering whether it was).
        Condition::Present
    } else if value.is_none() {
        // "Delete if absent" would change nothing yet answer true: refused as a mistake.
        return Err(Error::new(
            Code::InvalidArgument,
            "setIfAbsent needs a value (undefined would store nothing)",
        ));
    } else {
        Condition::Absent
    };
    let set = Update::Set { condition, value };
    Ok(update(key, set, raw, UpdateAnswer::Applied))
}

/// `getAndSet(key, value)`: stores `value` (`undefined`: deletes) and returns what the
/// key held before, in one step.
pub fn get_and_set(
    key: &JsValue,
    value: &JsValue,
    opts: &JsValue,
    d: Defaults,
) -> Result<(ClientRequest, Kind), Error> {
    let key = options::key(key)?;
    let raw = update_options(opts, d)?;
    let value = optional_value(value, raw, d)?;
    let set = Update::Set {
        condition: Condition::Always,
        value,
    };
    Ok(update(key, set, raw, UpdateAnswer::Previous))
}

/// `increment(key, by = 1)`: `by` is a safe-integer number or a BigInt in the signed
/// 64-bit range; a BigInt `by` makes the result a BigInt too (`crate::counter`).
pub fn increment(
    key: &JsValue,
    by: &JsValue,
    opts: &JsValue,
    d: Defaults,
) -> Result<(ClientRequest, Kind), Error> {
    let key = options::key(key)?;
    update_options(opts, d)?;
    let (delta, bigint) = if by.is_undefined() {
        (1, false)
    } else if by.is_bigint() {
        let delta = i64::try_from(by.clone()).map_err(|_| {
            Error::new(
                Code::InvalidArgument,
                "increment: a BigInt delta must fit a signed 64-bit integer",
            )
        })?;
        (delta, true)
    } else {
        let delta = by
            .as_f64()
            .and_then(counter::delta_from_f64)
            .ok_or_else(|| {
                Error::new(
                    Code::InvalidArgument,
                    "increment: the delta must be an integer number in ±(2^53 - 1) or a BigInt",
                )
            })?;
        (delta, false)
    };
    let add = Update::Add { delta };
    // The counter's bytes are decimal ASCII whatever the encoding option says.
    Ok(update(key, add, false, UpdateAnswer::Count { bigint }))
}

/// `getCounter(key, { bigint })`: a linearizable read of a counter's decimal bytes.
pub fn get_counter(
    key: &JsValue,
    opts: &JsValue,
    d: Defaults,
) -> Result<(ClientRequest, Kind), Error> {
    let key = options::key(key)?;
    // Counters live in the linearizable keyspace (only updates write them): an eventual
    // read would look in the other keyspace, so it is refused like an eventual update.
    update_options(opts, d)?;
    let bigint = options::flag(opts, "bigint")?;
    let consistency = Consistency::Linearizable;
    Ok((
        ClientRequest::Get { key, consistency },
        Kind::Counter { bigint },
    ))
}

/// Keys a scan page asks for when `count` is not given: larger than RESP's 10, as an
/// iterator has no reason to make many small round trips.
pub const SCAN_COUNT_DEFAULT: u32 = 100;

/// `scanPage(cursor, { count, match, keyEncoding })`: one page of the linearizable
/// keyspace from `cursor` (a BigInt; `0n` starts).
pub fn scan_page(cursor: &JsValue, opts: &JsValue) -> Result<(ClientRequest, Kind), Error> {
    let cursor = options::cursor(cursor)?;
    let o = options::parse_scan(opts)?;
    let count = o.count.unwrap_or(SCAN_COUNT_DEFAULT).min(SCAN_COUNT_MAX);
    let kind = Kind::Keys {
        raw: o.raw_keys,
        pattern: o.pattern.map(Rc::from),
    };
    Ok((ClientRequest::Scan { cursor, count }, kind))
}
