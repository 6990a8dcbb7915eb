//! A block store supplied by JavaScript (Node files, Durable Object storage, ...).
//! Interface (wasm/README.md, "Custom block stores"; `BlockStore` in index.d.ts):
//!
//! ```ts
//! interface BlockStore {
//!   load(): Promise<Map<string, Uint8Array> | Iterable<[string, Uint8Array]>>;
//!   commit(changes: {
//!     removed: string[];   // apply first
//!     files: { name: string; size: number; chunks: { offset: number; bytes: Uint8Array }[] }[];
//!   }): Promise<void>;     // must be atomic and durable when it resolves
//!   close?(): void | Promise<void>;
//! }
//! ```
//! `chunks` of a file are written at `offset`, after which the file is cut to `size`.

use js_sys::{Array, Function, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use super::storage_error;
use crate::error::{Code, Error};
use crate::image::Changes;

#[derive(Clone)]
pub struct JsBackend {
    object: JsValue,
    load: Function,
    commit: Function,
}

impl JsBackend {
    /// Checks that `object` has `load` and `commit` methods.
    pub fn new(object: JsValue) -> Result<Self, Error> {
        let method = |name: &str| {
            Reflect::get(&object, &name.into())
                .ok()
                .and_then(|f| f.dyn_into::<Function>().ok())
                .ok_or_else(|| {
                    Error::new(
                        Code::InvalidArgument,
                        format!("storage object has no {name}() method"),
                    )
                })
        };
        Ok(JsBackend {
            load: method("load")?,
            commit: method("commit")?,
            object,
        })
    }

    async fn call(
        &self,
        f: &Function,
        arg: Option<&JsValue>,
        what: &str,
    ) -> Result<JsValue, Error> {
        let returned = match arg {
            Some(a) => f.call1(&self.object, a),
            None => f.call0(&self.object),
        }
        .map_err(|e| storage_error(what, e))?;
        // Accept a plain value as well as a promise.
        JsFuture::from(Promise::resolve(&returned))
            .await
            .map_err(|e| storage_error(what, e))
    }

    pub async fn load(&self) -> Result<Vec<(String, Vec<u8>)>, Error> {
        let loaded = self.call(&self.load, None, "storage.load()").await?;
        let bad = |why: &str| Error::new(Code::Storage, format!("storage.load(): {why}"));
        if loaded.is_undefined() || loaded.is_null() {
            return Ok(Vec::new());
        }
        let iter = js_sys::try_iter(&loaded)
            .map_err(|e| storage_error("storage.load()", e))?
            .ok_or_else(|| bad("did not return a Map or an iterable of [name, bytes]"))?;
        let mut files = Vec::new();
        for entry in iter {
            let entry = entry.map_err(|e| storage_error("storage.load()", e))?;
            let pair = Array::from(&entry);
            let name = pair
                .get(0)
                .as_string()
                .ok_or_else(|| bad("a file name is not a string"))?;
            let bytes = pair
                .get(1)
                .dyn_into::<Uint8Array>()
                .map_err(|_| bad("file contents are not a Uint8Array"))?;
            files.push((name, bytes.to_vec()));
        }
        Ok(files)
    }

    pub async fn commit(&self, changes: &Changes) -> Result<(), Error> {
        let js = changes_to_js(changes);
        self.call(&self.commit, Some(&js), "storage.commit()")
            .await
            .map(|_| ())
    }

    /// Calls `close()` if the object has one and waits for it. Its failure is ignored:
    /// everything was committed before close is called.
    pub async fn close(&self) {
        if let Ok(f) = Reflect::get(&self.object, &"close".into()) {
            if let Ok(f) = f.dyn_into::<Function>() {
                if let Ok(p) = f.call0(&self.object) {
                    let _ = JsFuture::from(Promise::resolve(&p)).await;
                }
            }
        }
    }
}

fn changes_to_js(changes: &Changes) -> JsValue {
    let set = |o: &Object, k: &str, v: &JsValue| {
        let _ = Reflect::set(o, &k.into(), v);
    };
    let removed: Array = changes
        .removed
        .iter()
        .map(|n| JsValue::from_str(n))
        .collect();
    let files = Array::new();
    for f in &changes.files {
        let chunks = Array::new();
        for (offset, bytes) in &f.chunks {
            let c = Object::new();
            set(&c, "offset", &JsValue::from_f64(*offset as f64));
            set(&c, "bytes", &Uint8Array::from(bytes.as_slice()).into());
            chunks.push(&c);
        }
        let o = Object::new();
        set(&o, "name", &f.name.as_str().into());
        set(&o, "size", &JsValue::from_f64(f.size as f64));
        set(&o, "chunks", &chunks.into());
        files.push(&o);
    }
    let o = Object::new();
    set(&o, "removed", &removed.into());
    set(&o, "files", &files.into());
    o.into()
}
