//! IndexedDB in headless Chromium: the LSM engine against a model with every change
//! committed to IndexedDB and the engine reopened from what IndexedDB holds (after
//! closing and reopening the database); a `Replica` on IndexedDB keeping structured
//! values across close and reopen; damaged IndexedDB contents refused with STORAGE.
//!
//! Run (scripts/test does): `CHROMEDRIVER=/usr/bin/chromedriver cargo test -p ringkv-wasm
//! --target wasm32-unknown-unknown --test wasm_browser_idb` (webdriver.json sets flags).
#![cfg(target_arch = "wasm32")]

mod common;

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use common::{code_of, deep_equal, fixtures};
use js_sys::{Object, Reflect};
use ringkv_core::storage::lsm::{LsmEngine, LsmOptions};
use ringkv_core::storage::testing::{random_ops, ModelOp};
use ringkv_core::storage::{BlockStore, Engine, WriteBatch, WriteOptions};
use ringkv_wasm::backend::{delete_database, IdbBackend};
use ringkv_wasm::image::ImageStore;
use ringkv_wasm::replica::Replica;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen(inline_js = r#"
export function damage(name, how) {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open(name, 1);
    open.onerror = () => reject(open.error);
    open.onsuccess = () => {
      const db = open.result;
      const tx = db.transaction(['files', 'chunks'], 'readwrite');
      if (how === 'missing-chunk') tx.objectStore('files').put(200000, 'ghost.sst');
      if (how === 'not-bytes') tx.objectStore('chunks').put('text', ['MANIFEST', 0]);
      tx.oncomplete = () => { db.close(); resolve(); };
      tx.onerror = () => reject(tx.error);
    };
  });
}
"#)]
extern "C" {
    fn damage(name: &str, how: &str) -> js_sys::Promise;
}

struct Db {
    name: String,
    backend: IdbBackend,
    image: ImageStore,
    engine: LsmEngine,
}

impl Db {
    async fn open(name: &str) -> Db {
        let backend = IdbBackend::open(name).await.expect("open IndexedDB");
        let files = backend.load().await.expect("load");
        let image = ImageStore::from_files(files, 1 << 30).expect("image");
        let store: Arc<dyn BlockStore> = Arc::new(image.clone());
        let engine = LsmEngine::open(store, LsmOptions::tiny()).expect("engine");
        let db = Db {
            name: name.to_string(),
            backend,
            image,
            engine,
        };
        db.commit().await;
        db
    }

    async fn commit(&self) {
        self.backend
            .commit(&self.image.take_changes())
            .await
            .expect("commit");
    }

    /// Closes the database connection and reopens everything from IndexedDB alone.
    async fn reopen(self) -> Db {
        self.commit().await;
        self.backend.close().await;
        let name = self.name.clone();
        drop(self);
        Db::open(&name).await
    }

    fn check_all(&self, model: &BTreeMap<Vec<u8>, Vec<u8>>, at: &str) {
        let got = self
            .engine
            .scan(Bound::Unbounded, Bound::Unbounded, usize::MAX)
            .expect("scan");
        let want: Vec<_> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        assert_eq!(got.len(), want.len(), "{at}: entry count");
        assert!(got == want, "{at}: contents differ from the model");
    }
}

#[wasm_bindgen_test]
async fn lsm_engine_matches_model_through_indexeddb_reloads() {
    let name = "ringkv-test-model";
    delete_database(name).await.expect("delete");
    let mut db = Db::open(name).await;
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let ops = random_ops(11, 600, 64);
    for (i, op) in ops.iter().enumerate() {
        let mut batch = WriteBatch::new();
        match op {
            ModelOp::Put(k, v) => {
                batch.put(k.clone(), v.clone());
                model.insert(k.clone(), v.clone());
            }
            ModelOp::Delete(k) => {
                batch.delete(k.clone());
                model.remove(k);
            }
            ModelOp::Batch(entries) => {
                for (k, v) in entries {
                    match v {
                        Some(v) => {
                            batch.put(k.clone(), v.clone());
                            model.insert(k.clone(), v.clone());
                        }
                        None => {
                            batch.delete(k.clone());
                            model.remove(k);
                        }
                    }
                }
            }
            ModelOp::Get(k) => {
                assert_eq!(
                    db.engine.get(k).expect("get").as_ref(),
                    model.get(k),
                    "op {i}"
                );
            }
            ModelOp::Flush => db.engine.flush().expect("flush"),
            ModelOp::Compact => db.engine.compact().expect("compact"),
            ModelOp::Maintain(budget) => {
                db.engine.maintain(*budget).expect("maintain");
            }
            ModelOp::Reopen => {
                db = db.reopen().await;
                db.check_all(&model, &format!("reopen at op {i}"));
            }
            ModelOp::Scan { .. } | ModelOp::ScanPrefix(_) => {
                db.check_all(&model, &format!("op {i}"))
            }
        }
        if !batch.is_empty() {
            db.engine
                .write(&batch, WriteOptions::DURABLE)
                .expect("write");
        }
        // One commit per "turn"; turns of 1-4 ops.
        if i % 4 == 0 || i % 7 == 0 {
            db.commit().await;
        }
    }
    let db = db.reopen().await;
    db.check_all(&model, "final reopen");
    assert!(db.engine.stats().tables > 0, "the run must reach SSTables");
    db.backend.close().await;
}

fn options(pairs: &[(&str, JsValue)]) -> JsValue {
    let o = Object::new();
    for (k, v) in pairs {
        Reflect::set(&o, &(*k).into(), v).expect("set");
    }
    o.into()
}

async fn ok(p: js_sys::Promise) -> JsValue {
    JsFuture::from(p)
        .await
        .unwrap_or_else(|e| panic!("rejected: {e:?}"))
}

#[wasm_bindgen_test]
async fn indexeddb_replica_keeps_values_across_close_and_reopen() {
    let name = "ringkv-test-replica";
    delete_database(name).await.expect("delete");
    let open = || {
        Replica::open(options(&[
            ("storage", "indexeddb".into()),
            ("database", name.into()),
        ]))
    };
    let r = open().await.expect("open");
    let none = JsValue::UNDEFINED;
    for (i, v) in fixtures().iter().enumerate() {
        ok(r.put(format!("k{i}").into(), v, none.clone())).await;
    }
    // Enough data in one burst to freeze memtables and compact through the host steps.
    let puts = js_sys::Array::new();
    let blob = js_sys::Uint8Array::new_with_length(4096);
    for i in 0..3000 {
        puts.push(&r.put(format!("bulk{i}").into(), blob.clone().into(), none.clone()));
    }
    ok(js_sys::Promise::all(&puts)).await;
    ok(r.delete("k1".into(), none.clone())).await;
    // Let the bounded maintenance steps run (each is its own macrotask).
    let settle = js_sys::Promise::new(&mut |resolve, _| {
        let global = js_sys::global();
        let set_timeout: js_sys::Function = Reflect::get(&global, &"setTimeout".into())
            .expect("setTimeout")
            .into();
        set_timeout
            .call2(&global, &resolve, &JsValue::from_f64(200.0))
            .expect("call");
    });
    ok(settle).await;
    let status = r.status().expect("status");
    let engine = Reflect::get(&status, &"engine".into()).expect("engine");
    let flushes = Reflect::get(&engine, &"flushes".into()).expect("flushes");
    assert!(
        flushes.as_f64() >= Some(1.0),
        "12 MB of puts must flush memtables: {status:?}"
    );
    let host = Reflect::get(&status, &"host".into()).expect("host");
    let steps = Reflect::get(&host, &"maintenanceSteps".into()).expect("steps");
    assert!(
        steps.as_f64() >= Some(1.0),
        "maintenance must run in steps: {status:?}"
    );
    ok(r.close()).await;

    let r = open().await.expect("reopen");
    for (i, v) in fixtures().iter().enumerate() {
        let back = ok(r.get(format!("k{i}").into(), none.clone())).await;
        let want = if i == 1 { JsValue::UNDEFINED } else { v };
        assert!(deep_equal(&want, &back), "k{i} after reopen: {back:?}");
    }
    let last = ok(r.get("bulk2999".into(), none.clone())).await;
    assert_eq!(js_sys::Uint8Array::from(last).length(), 4096);
    ok(r.close()).await;
}

#[wasm_bindgen_test]
async fn damaged_indexeddb_contents_are_storage_errors() {
    for how in ["missing-chunk", "not-bytes"] {
        let name = format!("ringkv-test-damaged-{how}");
        delete_database(&name).await.expect("delete");
        let opts = || {
            options(&[
                ("storage", "indexeddb".into()),
                ("database", name.as_str().into()),
            ])
        };
        let r = Replica::open(opts()).await.expect("open");
        ok(r.put("a".into(), 1.into(), JsValue::UNDEFINED)).await;
        ok(r.close()).await;
        JsFuture::from(damage(&name, how)).await.expect("damage");
        let e = Replica::open(opts())
            .await
            .err()
            .expect("a damaged store must not open");
        assert_eq!(code_of(&e), "STORAGE", "{how}: {e:?}");
    }
}

#[wasm_bindgen_test]
async fn a_database_has_one_replica_at_a_time() {
    let name = "ringkv-test-exclusive";
    delete_database(name).await.expect("delete");
    let opts = || options(&[("storage", "indexeddb".into()), ("database", name.into())]);
    let first = Replica::open(opts()).await.expect("open");
    let e = Replica::open(opts())
        .await
        .err()
        .expect("a second replica must be refused");
    assert_eq!(code_of(&e), "STORAGE", "{e:?}");
    ok(first.put("k".into(), 1.into(), JsValue::UNDEFINED)).await;
    ok(first.close()).await;
    let second = Replica::open(opts())
        .await
        .expect("open after the first closed");
    assert_eq!(
        ok(second.get("k".into(), JsValue::UNDEFINED))
            .await
            .as_f64(),
        Some(1.0)
    );
    ok(second.close()).await;
}
