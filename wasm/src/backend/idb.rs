//! IndexedDB backend. Database layout (version 1):
//! - object store `files`: key = file name, value = file size (number);
//! - object store `chunks`: key = `[name, offset]`, value = `Uint8Array`, the file's
//!   bytes at `offset` (offsets are multiples of `CHUNK_BYTES`).
//!
//! A commit is one `readwrite` transaction over both stores, opened with
//! `durability: "strict"` so `complete` means flushed to disk (Chromium's default is
//! relaxed); IndexedDB applies transactions atomically and in order.

use std::collections::BTreeMap;
use std::rc::Rc;

use js_sys::{Array, Object, Reflect, Uint8Array};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{IdbDatabase, IdbFactory, IdbKeyRange, IdbObjectStore, IdbTransaction};

use super::request::{request, transaction_done};
use super::{assemble, storage_error};
use crate::error::{Code, Error};
use crate::image::{Changes, CHUNK_BYTES};

const SCHEMA_VERSION: u32 = 1;
const FILES: &str = "files";
const CHUNKS: &str = "chunks";

#[derive(Clone)]
pub struct IdbBackend {
    db: Rc<IdbDatabase>,
    /// The Web Lock that makes this replica the database's only user.
    lock: Option<super::lock::Lock>,
}

impl IdbBackend {
    /// Opens (creating on first use) the database `name`.
    pub async fn open(name: &str) -> Result<Self, Error> {
        let lock = super::lock::acquire(name).await?;
        let opened = Self::open_database(name).await;
        if opened.is_err() {
            if let Some(lock) = &lock {
                lock.release().await;
            }
        }
        Ok(IdbBackend {
            db: Rc::new(opened?),
            lock,
        })
    }

    async fn open_database(name: &str) -> Result<IdbDatabase, Error> {
        let factory = Reflect::get(&js_sys::global(), &"indexedDB".into())
            .ok()
            .and_then(|f| f.dyn_into::<IdbFactory>().ok())
            .ok_or_else(|| {
                Error::new(
                    Code::Unsupported,
                    "IndexedDB is not available in this environment",
                )
            })?;
        let req = factory
            .open_with_u32(name, SCHEMA_VERSION)
            .map_err(|e| storage_error("indexedDB.open", e))?;
        let upgrade = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
            let db = Reflect::get(&event, &"target".into())
                .and_then(|t| Reflect::get(&t, &"result".into()))
                .ok()
                .and_then(|d| d.dyn_into::<IdbDatabase>().ok());
            if let Some(db) = db {
                // Version 1 is the only schema; a failure aborts the open (reported).
                let _ = db.create_object_store(FILES);
                let _ = db.create_object_store(CHUNKS);
            }
        });
        req.set_onupgradeneeded(Some(upgrade.as_ref().unchecked_ref()));
        let result = request(&req).await;
        req.set_onupgradeneeded(None);
        drop(upgrade);
        let db: IdbDatabase = result
            .map_err(|e| storage_error("opening IndexedDB", e))?
            .dyn_into()
            .map_err(|e| storage_error("opening IndexedDB", e))?;
        Ok(db)
    }

    fn transaction(&self, mode: &str) -> Result<IdbTransaction, Error> {
        let stores = Array::of2(&FILES.into(), &CHUNKS.into());
        let options = Object::new();
        let _ = Reflect::set(&options, &"durability".into(), &"strict".into());
        // Called through Reflect: the options argument is newer than web-sys's bindings.
        let f: js_sys::Function = Reflect::get(&self.db, &"transaction".into())
            .map_err(|e| storage_error("IndexedDB", e))?
            .dyn_into()
            .map_err(|e| storage_error("IndexedDB", e))?;
        f.call3(&self.db, &stores, &mode.into(), &options)
            .and_then(|t| t.dyn_into::<IdbTransaction>())
            .map_err(|e| storage_error("starting an IndexedDB transaction", e))
    }

    pub async fn load(&self) -> Result<Vec<(String, Vec<u8>)>, Error> {
        let tx = self.transaction("readonly")?;
        let files = store(&tx, FILES)?;
        let chunks = store(&tx, CHUNKS)?;
        let fail = |e| storage_error("reading IndexedDB", e);
        // All four requests are issued before the first await, so the transaction stays
        // active regardless of how the host schedules promise callbacks.
        let reqs = [
            files.get_all_keys().map_err(fail)?,
            files.get_all().map_err(fail)?,
            chunks.get_all_keys().map_err(fail)?,
            chunks.get_all().map_err(fail)?,
        ];
        let mut results = Vec::with_capacity(4);
        for r in &reqs {
            results.push(request(r).await.map_err(fail)?);
        }
        let [file_names, file_sizes, chunk_keys, chunk_values]: [JsValue; 4] =
            results
                .try_into()
                .map_err(|_| Error::new(Code::Storage, "IndexedDB returned too few results"))?;
        let corrupt = |why: &str| Error::new(Code::Storage, format!("IndexedDB contents: {why}"));

        let mut sizes = BTreeMap::new();
        let (names, values) = (Array::from(&file_names), Array::from(&file_sizes));
        for i in 0..names.length() {
            let name = names
                .get(i)
                .as_string()
                .ok_or_else(|| corrupt("a file name is not a string"))?;
            let size = values
                .get(i)
                .as_f64()
                .filter(|s| s.fract() == 0.0 && *s >= 0.0);
            let size = size.ok_or_else(|| corrupt("a file size is not a whole number"))?;
            sizes.insert(name, (size as u64, Vec::new()));
        }
        let (keys, values) = (Array::from(&chunk_keys), Array::from(&chunk_values));
        for i in 0..keys.length() {
            let key = Array::from(&keys.get(i));
            let name = key
                .get(0)
                .as_string()
                .ok_or_else(|| corrupt("a chunk key is malformed"))?;
            let offset = key
                .get(1)
                .as_f64()
                .filter(|o| {
                    o.fract() == 0.0 && *o >= 0.0 && (*o as u64).is_multiple_of(CHUNK_BYTES)
                })
                .ok_or_else(|| corrupt("a chunk offset is malformed"))?;
            let bytes = values
                .get(i)
                .dyn_into::<Uint8Array>()
                .map_err(|_| corrupt("a chunk is not a Uint8Array"))?;
            // Chunks of files without a size record are ignored (no commit leaves them).
            if let Some((_, chunks)) = sizes.get_mut(&name) {
                chunks.push((offset as u64, bytes.to_vec()));
            }
        }
        sizes
            .into_iter()
            .map(|(name, (size, chunks))| assemble(&name, size, chunks).map(|b| (name, b)))
            .collect()
    }

    pub async fn commit(&self, changes: &Changes) -> Result<(), Error> {
        let tx = self.transaction("readwrite")?;
        let files = store(&tx, FILES)?;
        let chunks = store(&tx, CHUNKS)?;
        let fail = |e| storage_error("writing IndexedDB", e);
        // Requests are queued synchronously; the transaction's outcome covers them all.
        for name in &changes.removed {
            files.delete(&name.into()).map_err(fail)?;
            chunks.delete(&range_from(name, 0)?.into()).map_err(fail)?;
        }
        for f in &changes.files {
            files
                .put_with_key(&JsValue::from_f64(f.size as f64), &f.name.as_str().into())
                .map_err(fail)?;
            let end = f.size.div_ceil(CHUNK_BYTES) * CHUNK_BYTES;
            chunks
                .delete(&range_from(&f.name, end)?.into())
                .map_err(fail)?;
            for (offset, bytes) in &f.chunks {
                let key = Array::of2(&f.name.as_str().into(), &JsValue::from_f64(*offset as f64));
                chunks
                    .put_with_key(&Uint8Array::from(bytes.as_slice()), &key)
                    .map_err(fail)?;
            }
        }
        transaction_done(&tx)
            .await
            .map_err(|e| storage_error("committing to IndexedDB", e))
    }

    /// Closes the connection and returns once the lock is free again.
    pub async fn close(&self) {
        self.db.close();
        if let Some(lock) = &self.lock {
            lock.release().await;
        }
    }
}

fn store(tx: &IdbTransaction, name: &str) -> Result<IdbObjectStore, Error> {
    tx.object_store(name)
        .map_err(|e| storage_error("IndexedDB object store", e))
}

/// Every chunk key of file `name` at or past `offset`.
fn range_from(name: &str, offset: u64) -> Result<IdbKeyRange, Error> {
    let lower = Array::of2(&name.into(), &JsValue::from_f64(offset as f64));
    let upper = Array::of2(&name.into(), &JsValue::from_f64(f64::INFINITY));
    IdbKeyRange::bound(&lower, &upper).map_err(|e| storage_error("IndexedDB key range", e))
}

/// Deletes the database `name` (tests, and `Replica.destroy` style cleanup).
pub async fn delete_database(name: &str) -> Result<(), Error> {
    let factory: IdbFactory = Reflect::get(&js_sys::global(), &"indexedDB".into())
        .ok()
        .and_then(|f| f.dyn_into().ok())
        .ok_or_else(|| Error::new(Code::Unsupported, "IndexedDB is not available"))?;
    let req = factory
        .delete_database(name)
        .map_err(|e| storage_error("deleteDatabase", e))?;
    request(&req)
        .await
        .map(|_| ())
        .map_err(|e| storage_error("deleteDatabase", e))
}
