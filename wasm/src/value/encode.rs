//! JS value -> bytes (format in `format.rs`).

use js_sys::{Array, BigInt, Date, Map, Object, Reflect, Set, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};

use super::format::*;
use super::ValueError;

/// Encodes `value`; fails with `TooLarge` as soon as the output passes `limit_bytes`.
pub fn encode(value: &JsValue, limit_bytes: usize) -> Result<Vec<u8>, ValueError> {
    let mut enc = Encoder {
        out: vec![VERSION],
        limit_bytes,
        object_prototype: Object::get_prototype_of(&Object::new().into()),
    };
    enc.item(value, 0)?;
    Ok(enc.out)
}

struct Encoder {
    out: Vec<u8>,
    limit_bytes: usize,
    /// `Object.prototype`: only objects with it (or a null prototype) count as plain.
    object_prototype: Object,
}

impl Encoder {
    fn check_size(&self) -> Result<(), ValueError> {
        if self.out.len() > self.limit_bytes {
            return Err(ValueError::TooLarge {
                size_bytes: self.out.len() as u64,
                limit_bytes: self.limit_bytes as u64,
            });
        }
        Ok(())
    }

    fn bytes(&mut self, tag: u8, b: &[u8]) -> Result<(), ValueError> {
        // Check before copying so a huge string or array fails without the copy.
        if self.out.len().saturating_add(b.len()) > self.limit_bytes {
            return Err(ValueError::TooLarge {
                size_bytes: (self.out.len() + b.len()) as u64,
                limit_bytes: self.limit_bytes as u64,
            });
        }
        self.out.push(tag);
        put_varint(&mut self.out, b.len() as u64);
        self.out.extend_from_slice(b);
        Ok(())
    }

    fn item(&mut self, v: &JsValue, depth: usize) -> Result<(), ValueError> {
        self.check_size()?;
        if v.is_undefined() {
            self.out.push(TAG_UNDEFINED);
        } else if v.is_null() {
            self.out.push(TAG_NULL);
        } else if let Some(b) = v.as_bool() {
            self.out.push(if b { TAG_TRUE } else { TAG_FALSE });
        } else if let Some(n) = v.as_f64() {
            self.out.push(TAG_NUMBER);
            self.out.extend_from_slice(&n.to_le_bytes());
        } else if let Some(s) = v.as_string() {
            // Lone UTF-16 surrogates become U+FFFD here (documented).
            self.bytes(TAG_STRING, s.as_bytes())?;
        } else if v.is_bigint() {
            let b: &BigInt = v.unchecked_ref();
            let digits = b
                .to_string(10)
                .map_err(|_| ValueError::Unsupported("bigint could not be printed".into()))?;
            self.bytes(TAG_BIGINT, String::from(digits).as_bytes())?;
        } else if let Some(u) = v.dyn_ref::<Uint8Array>() {
            self.bytes(TAG_BYTES, &u.to_vec())?;
        } else if v.is_object() {
            self.container(v, depth)?;
        } else {
            let kind = v.js_typeof().as_string().unwrap_or_default();
            return Err(ValueError::Unsupported(format!(
                "values of type {kind} cannot be stored"
            )));
        }
        self.check_size()
    }

    fn container(&mut self, v: &JsValue, depth: usize) -> Result<(), ValueError> {
        if depth >= DEPTH_MAX {
            return Err(ValueError::Unsupported(format!(
                "value nests deeper than {DEPTH_MAX} levels (or contains a cycle)"
            )));
        }
        let getter_failed = |_| ValueError::Unsupported("reading a property threw".into());
        if Array::is_array(v) {
            let a: &Array = v.unchecked_ref();
            self.out.push(TAG_ARRAY);
            put_varint(&mut self.out, u64::from(a.length()));
            for i in 0..a.length() {
                self.item(&a.get(i), depth + 1)?;
            }
        } else if let Some(d) = v.dyn_ref::<Date>() {
            self.out.push(TAG_DATE);
            self.out.extend_from_slice(&d.get_time().to_le_bytes());
        } else if let Some(m) = v.dyn_ref::<Map>() {
            self.out.push(TAG_MAP);
            put_varint(&mut self.out, u64::from(m.size()));
            let mut err = None;
            m.for_each(&mut |value, key| {
                if err.is_none() {
                    err = self
                        .item(&key, depth + 1)
                        .and_then(|()| self.item(&value, depth + 1))
                        .err();
                }
            });
            if let Some(e) = err {
                return Err(e);
            }
        } else if let Some(s) = v.dyn_ref::<Set>() {
            self.out.push(TAG_SET);
            put_varint(&mut self.out, u64::from(s.size()));
            let mut err = None;
            s.for_each(&mut |value, _, _| {
                if err.is_none() {
                    err = self.item(&value, depth + 1).err();
                }
            });
            if let Some(e) = err {
                return Err(e);
            }
        } else {
            let obj: &Object = v.unchecked_ref();
            let proto = Object::get_prototype_of(v);
            if !(JsValue::from(&proto).is_null() || proto == self.object_prototype) {
                let name = Reflect::get(&proto, &"constructor".into())
                    .ok()
                    .and_then(|c| Reflect::get(&c, &"name".into()).ok())
                    .and_then(|n| n.as_string())
                    .unwrap_or_else(|| "unknown".into());
                return Err(ValueError::Unsupported(format!(
                    "objects of class {name} cannot be stored (plain objects, arrays, Map, \
                     Set, Date and Uint8Array can)"
                )));
            }
            let keys = Object::keys(obj);
            self.out.push(TAG_OBJECT);
            put_varint(&mut self.out, u64::from(keys.length()));
            for i in 0..keys.length() {
                let key = keys.get(i);
                let name = key.as_string().unwrap_or_default();
                let value = Reflect::get(v, &key).map_err(getter_failed)?;
                put_varint(&mut self.out, name.len() as u64);
                self.out.extend_from_slice(name.as_bytes());
                self.item(&value, depth + 1)?;
            }
        }
        Ok(())
    }
}
