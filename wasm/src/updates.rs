//! The JS results of conditional writes (`cas`, `setIfAbsent`, `setIfPresent`,
//! `getAndSet`, `increment`), counter reads (`getCounter`) and scan pages (`scanPage`,
//! which the JS `scan()` iterator pages through).

use js_sys::{Array, Object, Reflect};
use ringkv_core::node::ClientReply;
use wasm_bindgen::JsValue;

use crate::counter::{self, Count};
use crate::error::{Code, Error};
use crate::host::js_value;
use ringkv_core::glob;

/// Which part of `ClientReply::Updated` a call returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateAnswer {
    /// `cas`: `{ applied, previous }`.
    Cas,
    /// `setIfAbsent`, `setIfPresent`: `applied`.
    Applied,
    /// `getAndSet`: `previous`.
    Previous,
    /// `increment`: the count after it; `bigint`: a BigInt even when a number is exact.
    Count { bigint: bool },
}

fn set(object: &Object, key: &str, value: &JsValue) {
    // Setting a data property on a fresh plain object cannot throw.
    let _ = Reflect::set(object, &key.into(), value);
}

pub fn count_to_js(count: Count) -> JsValue {
    match count {
        Count::Number(n) => JsValue::from_f64(n as f64),
        Count::BigInt(n) => js_sys::BigInt::from(n).into(),
    }
}

/// `previous` as JS. Decoding can fail after the update took effect (the key held a
/// counter or a raw write, which is not in the value encoding): the error says whether
/// it did (`applied`), so a caller never redoes a write that happened.
fn previous_js(raw: bool, applied: bool, previous: Option<&[u8]>) -> Result<JsValue, Error> {
    let Some(bytes) = previous else {
        return Ok(JsValue::UNDEFINED);
    };
    js_value(raw, bytes).map_err(|e| {
        let outcome = if applied {
            "the update WAS applied"
        } else {
            "the update was not applied"
        };
        Error::new(
            e.code,
            format!(
                "{outcome}, but the previous value is not in the package's value encoding \
                 ({}); a counter or a raw write? Use encoding 'raw' for this key",
                e.message
            ),
        )
        .with_applied(applied)
    })
}

pub fn settle_update(
    raw: bool,
    answer: UpdateAnswer,
    reply: ClientReply,
) -> Result<JsValue, Error> {
    let ClientReply::Updated {
        applied,
        previous,
        current,
    } = reply
    else {
        return Err(Error::new(
            Code::Unsupported,
            format!("unexpected reply to an update: {reply:?}"),
        ));
    };
    match answer {
        UpdateAnswer::Applied => Ok(JsValue::from_bool(applied)),
        UpdateAnswer::Previous => previous_js(raw, applied, previous.as_deref()),
        UpdateAnswer::Cas => {
            let out = Object::new();
            set(&out, "applied", &JsValue::from_bool(applied));
            set(
                &out,
                "previous",
                &previous_js(raw, applied, previous.as_deref())?,
            );
            Ok(out.into())
        }
        UpdateAnswer::Count { bigint } => {
            // The core stores the sum in decimal, so this only fails on a core bug; the
            // add happened all the same.
            let n = current.as_deref().and_then(counter::parse).ok_or_else(|| {
                Error::new(
                    Code::CorruptValue,
                    format!("the increment was applied but its result {current:?} is not a decimal integer"),
                )
                .with_applied(true)
            })?;
            Ok(count_to_js(counter::count(n, bigint)))
        }
    }
}

/// A counter read: `undefined` when absent, NOT_AN_INTEGER when the key holds something
/// else (a structured value, text).
pub fn settle_counter(bigint: bool, value: Option<Vec<u8>>) -> Result<JsValue, Error> {
    let Some(bytes) = value else {
        return Ok(JsValue::UNDEFINED);
    };
    let n = counter::parse(&bytes).ok_or_else(|| {
        Error::new(
            Code::NotAnInteger,
            "the key's value is not a counter (a 64-bit integer in decimal)",
        )
    })?;
    Ok(count_to_js(counter::count(n, bigint)))
}

/// A key as JS: with `raw` its bytes; otherwise the string it was stored from when it
/// is valid UTF-8 (keys given as strings always are), else its bytes.
fn key_js(raw: bool, key: Vec<u8>) -> JsValue {
    let bytes = if raw {
        key
    } else {
        match String::from_utf8(key) {
            Ok(s) => return JsValue::from_str(&s),
            Err(e) => e.into_bytes(),
        }
    };
    js_sys::Uint8Array::from(bytes.as_slice()).into()
}

/// `{ keys, cursor }`: the page's keys matching `pattern`, and the next cursor as a
/// BigInt (a ring position: it does not fit a number; `0n` ends the scan).
pub fn scan_page(raw: bool, pattern: Option<&[u8]>, keys: Vec<Vec<u8>>, cursor: u64) -> JsValue {
    let out = Array::new();
    for key in keys {
        if pattern.is_none_or(|p| glob::matches(p, &key)) {
            out.push(&key_js(raw, key));
        }
    }
    let page = Object::new();
    set(&page, "keys", &out);
    set(&page, "cursor", &js_sys::BigInt::from(cursor).into());
    page.into()
}
