//! Bytes -> JS value (format in `format.rs`). Every length is checked against the bytes
//! left, nesting is bounded, and nothing may follow the value: damaged bytes are an
//! error, never a panic or a huge allocation.

use js_sys::{Array, BigInt, Date, Map, Object, Reflect, Set, Uint8Array};
use wasm_bindgen::JsValue;

use super::format::*;
use super::ValueError;

pub fn decode(bytes: &[u8]) -> Result<JsValue, ValueError> {
    let mut r = Reader::new(bytes);
    let version = r.u8().map_err(ValueError::Corrupt)?;
    if version != VERSION {
        return Err(ValueError::Corrupt(format!(
            "value format version {version}; this build reads version {VERSION}"
        )));
    }
    let v = item(&mut r, 0).map_err(ValueError::Corrupt)?;
    if r.remaining() != 0 {
        return Err(ValueError::Corrupt(format!(
            "{} bytes follow the value at byte {}",
            r.remaining(),
            r.pos()
        )));
    }
    Ok(v)
}

fn item(r: &mut Reader<'_>, depth: usize) -> Result<JsValue, String> {
    let at = r.pos();
    let tag = r.u8()?;
    if matches!(tag, TAG_ARRAY | TAG_OBJECT | TAG_MAP | TAG_SET) && depth >= DEPTH_MAX {
        return Err(format!("nesting deeper than {DEPTH_MAX} at byte {at}"));
    }
    Ok(match tag {
        TAG_UNDEFINED => JsValue::UNDEFINED,
        TAG_NULL => JsValue::NULL,
        TAG_FALSE => JsValue::FALSE,
        TAG_TRUE => JsValue::TRUE,
        TAG_NUMBER => JsValue::from_f64(r.f64()?),
        TAG_STRING => JsValue::from_str(r.str()?),
        TAG_BIGINT => {
            let s = r.str()?;
            let digits = s.strip_prefix('-').unwrap_or(s);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("bigint at byte {at} is not a decimal integer"));
            }
            BigInt::new(&JsValue::from_str(s))
                .map_err(|_| format!("bigint at byte {at} rejected"))?
                .into()
        }
        TAG_BYTES => {
            let len = r.len(1)?;
            Uint8Array::from(r.take(len)?).into()
        }
        TAG_ARRAY => {
            let n = r.len(1)?;
            let a = Array::new_with_length(n as u32);
            for i in 0..n {
                a.set(i as u32, item(r, depth + 1)?);
            }
            a.into()
        }
        TAG_OBJECT => {
            // Each entry is at least a 1-byte key length and a 1-byte item.
            let n = r.len(2)?;
            let o = Object::new();
            for _ in 0..n {
                let key = JsValue::from_str(r.str()?);
                let value = item(r, depth + 1)?;
                set_own(&o, &key, &value)?;
            }
            o.into()
        }
        TAG_MAP => {
            let n = r.len(2)?;
            let m = Map::new();
            for _ in 0..n {
                let k = item(r, depth + 1)?;
                let v = item(r, depth + 1)?;
                m.set(&k, &v);
            }
            m.into()
        }
        TAG_DATE => Date::new(&JsValue::from_f64(r.f64()?)).into(),
        TAG_SET => {
            let n = r.len(1)?;
            let s = Set::new(&JsValue::UNDEFINED);
            for _ in 0..n {
                s.add(&item(r, depth + 1)?);
            }
            s.into()
        }
        other => return Err(format!("unknown tag 0x{other:02x} at byte {at}")),
    })
}

/// Defines an own data property. Plain assignment would treat a stored `__proto__` key
/// as a prototype change; defining the property keeps it an ordinary key.
fn set_own(o: &Object, key: &JsValue, value: &JsValue) -> Result<(), String> {
    let desc = Object::new();
    for (k, v) in [
        ("value", value.clone()),
        ("writable", JsValue::TRUE),
        ("enumerable", JsValue::TRUE),
        ("configurable", JsValue::TRUE),
    ] {
        Reflect::set(&desc, &k.into(), &v).map_err(|_| "building a property failed")?;
    }
    Reflect::define_property(o, key, &desc).map_err(|_| "defining a property failed")?;
    Ok(())
}
