//! A standalone `Replica` (a real single-member `Node` over the LSM engine) in Node:
//! put/get/delete round trips of structured values on the memory store and on a JS
//! block store, data surviving close and reopen through that store, typed errors, and
//! a failing store failing the replica. Also the engine model test on the image store.
//!
//! Run: `cargo test -p ringkv-wasm --target wasm32-unknown-unknown --test wasm_replica`
#![cfg(target_arch = "wasm32")]

mod common;

use std::sync::Arc;

use common::{code_of, deep_equal, field_of, fixtures, MemoryJsStore};
use js_sys::{Object, Reflect};
use ringkv_core::storage::lsm::{LsmEngine, LsmOptions};
use ringkv_core::storage::testing::{random_ops, run_model};
use ringkv_core::storage::{BlockStore, Engine};
use ringkv_wasm::image::ImageStore;
use ringkv_wasm::replica::Replica;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::wasm_bindgen_test;

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

async fn err(p: js_sys::Promise) -> JsValue {
    match JsFuture::from(p).await {
        Ok(v) => panic!("expected a rejection, got {v:?}"),
        Err(e) => e,
    }
}

fn key(i: usize) -> JsValue {
    JsValue::from_str(&format!("key-{i}"))
}

async fn write_fixtures(r: &Replica) {
    let none = JsValue::UNDEFINED;
    for (i, v) in fixtures().iter().enumerate() {
        ok(r.put(key(i), v, none.clone())).await;
    }
}

async fn check_fixtures(r: &Replica) {
    for (i, v) in fixtures().iter().enumerate() {
        let back = ok(r.get(key(i), JsValue::UNDEFINED)).await;
        assert!(deep_equal(&v, &back), "key-{i}: wrote {v:?}, read {back:?}");
    }
}

#[wasm_bindgen_test]
async fn memory_replica_round_trips_structured_values() {
    let r = Replica::open(options(&[("storage", "memory".into())]))
        .await
        .expect("open");
    write_fixtures(&r).await;
    check_fixtures(&r).await;
    // Absent keys read as undefined; deletes take effect; keys may be bytes.
    assert!(ok(r.get("missing".into(), JsValue::UNDEFINED))
        .await
        .is_undefined());
    ok(r.delete(key(3), JsValue::UNDEFINED)).await;
    assert!(ok(r.get(key(3), JsValue::UNDEFINED)).await.is_undefined());
    let bytes_key: JsValue = js_sys::Uint8Array::from(&b"key-4"[..]).into();
    let via_bytes = ok(r.get(bytes_key, JsValue::UNDEFINED)).await;
    assert!(
        deep_equal(&via_bytes, &fixtures().get(4)),
        "a string key is its UTF-8 bytes"
    );
    // Many puts issued in one turn all resolve.
    let puts = js_sys::Array::new();
    for i in 0..500 {
        puts.push(&r.put(
            key(1000 + i),
            JsValue::from_f64(i as f64),
            JsValue::UNDEFINED,
        ));
    }
    ok(js_sys::Promise::all(&puts)).await;
    assert_eq!(
        ok(r.get(key(1499), JsValue::UNDEFINED)).await.as_f64(),
        Some(499.0)
    );
    let status = r.status().expect("status");
    assert_eq!(
        field_of(&status, "storage").as_string().as_deref(),
        Some("memory")
    );
    ok(r.close()).await;
    assert_eq!(
        code_of(&err(r.get(key(0), JsValue::UNDEFINED)).await),
        "CLOSED"
    );
}

#[wasm_bindgen_test]
async fn bad_arguments_are_typed_errors() {
    let r = Replica::open(JsValue::UNDEFINED)
        .await
        .expect("open with defaults");
    let none = JsValue::UNDEFINED;
    assert_eq!(
        code_of(&err(r.get(JsValue::from_f64(1.0), none.clone())).await),
        "INVALID_ARGUMENT"
    );
    let f = js_sys::Function::new_no_args("return 1");
    assert_eq!(
        code_of(&err(r.put("k".into(), f.into(), none.clone())).await),
        "UNSUPPORTED"
    );
    let big = js_sys::Uint8Array::new_with_length(2 << 20);
    let e = err(r.put("k".into(), big.into(), none.clone())).await;
    assert_eq!(code_of(&e), "TOO_LARGE");
    assert!(field_of(&e, "limitBytes").as_f64().is_some());
    let long_key = JsValue::from_str(&"k".repeat(9000));
    assert_eq!(
        code_of(&err(r.put(long_key, 1.into(), none.clone())).await),
        "TOO_LARGE"
    );
    let bad_opts = options(&[("consistency", "strong".into())]);
    assert_eq!(
        code_of(&err(r.get("k".into(), bad_opts)).await),
        "INVALID_ARGUMENT"
    );
    for bad in [
        options(&[("storage", "floppy".into())]),
        options(&[("nodeId", JsValue::from_f64(-1.0))]),
        options(&[("storage", Object::new().into())]),
        // ephemeral is for a memory replica joining through seeds, and a boolean.
        options(&[("ephemeral", JsValue::TRUE)]),
        options(&[
            ("seeds", js_sys::Array::of1(&"ws://x".into()).into()),
            ("ephemeral", "yes".into()),
        ]),
        // A memory replica joining a cluster must say it is ephemeral.
        options(&[("seeds", js_sys::Array::of1(&"ws://x".into()).into())]),
    ] {
        let e = Replica::open(bad).await.err().expect("must fail");
        assert_eq!(code_of(&e), "INVALID_ARGUMENT");
    }
    let seeds = options(&[
        ("seeds", js_sys::Array::of1(&"http://x".into()).into()),
        ("ephemeral", JsValue::TRUE),
    ]);
    let e = Replica::open(seeds).await.err().expect("must fail");
    assert_eq!(code_of(&e), "INVALID_ARGUMENT");
    // Without a global WebSocket (Node 20 without --experimental-websocket, which is
    // how these suites run there) joining is refused at once, not after the timeout.
    let has_websocket =
        js_sys::Reflect::has(&js_sys::global(), &"WebSocket".into()).unwrap_or(false);
    if !has_websocket {
        let seeds = options(&[
            ("seeds", js_sys::Array::of1(&"ws://x".into()).into()),
            ("ephemeral", JsValue::TRUE),
        ]);
        let e = Replica::open(seeds).await.err().expect("must fail");
        assert_eq!(code_of(&e), "UNSUPPORTED");
    }
    ok(r.close()).await;
}

#[wasm_bindgen_test]
async fn eventual_mode_reads_siblings_and_resolves_them() {
    let r = Replica::open(options(&[("consistency", "eventual".into())]))
        .await
        .expect("open");
    let none = JsValue::UNDEFINED;
    ok(r.put("k".into(), "a".into(), none.clone())).await;
    assert_eq!(
        ok(r.get("k".into(), none.clone()))
            .await
            .as_string()
            .as_deref(),
        Some("a")
    );
    // A second blind write is concurrent with the first: two siblings.
    ok(r.put("k".into(), "b".into(), none.clone())).await;
    let sib = ok(r.get_siblings("k".into(), JsValue::UNDEFINED)).await;
    assert_eq!(js_sys::Array::from(&field_of(&sib, "values")).length(), 2);
    assert_eq!(
        code_of(&err(r.get("k".into(), none.clone())).await),
        "UNSUPPORTED"
    );
    // Writing back with the read's context supersedes both.
    let resolve = options(&[("context", field_of(&sib, "context"))]);
    ok(r.put("k".into(), "c".into(), resolve)).await;
    assert_eq!(
        ok(r.get("k".into(), none)).await.as_string().as_deref(),
        Some("c")
    );
    ok(r.close()).await;
}

#[wasm_bindgen_test]
async fn a_js_store_keeps_data_across_close_and_reopen() {
    let store = MemoryJsStore::new();
    let open = || Replica::open(options(&[("storage", store.clone().into())]));
    let r = open().await.expect("open");
    write_fixtures(&r).await;
    ok(r.delete(key(5), JsValue::UNDEFINED)).await;
    let commits = store.commits();
    assert!(commits > 0, "writes must be committed to the store");
    // Puts issued in one turn share commits (group commit), and all resolve.
    let puts = js_sys::Array::new();
    for i in 0..200 {
        puts.push(&r.put(
            key(2000 + i),
            JsValue::from_f64(i as f64),
            JsValue::UNDEFINED,
        ));
    }
    ok(js_sys::Promise::all(&puts)).await;
    let grouped = store.commits() - commits;
    assert!(
        (1..=3).contains(&grouped),
        "200 puts in one turn took {grouped} commits"
    );
    ok(r.close()).await;

    let r = open().await.expect("reopen");
    let inc = field_of(&r.status().expect("status"), "incarnation").as_f64();
    assert_eq!(
        inc,
        Some(2.0),
        "the incarnation was bumped durably on each open"
    );
    assert!(ok(r.get(key(5), JsValue::UNDEFINED)).await.is_undefined());
    ok(r.put(key(5), JsValue::from_f64(-0.0), JsValue::UNDEFINED)).await;
    let fix = fixtures();
    fix.set(5, JsValue::from_f64(-0.0));
    for (i, v) in fix.iter().enumerate() {
        let back = ok(r.get(key(i), JsValue::UNDEFINED)).await;
        assert!(deep_equal(&v, &back), "key-{i} after reopen: {back:?}");
    }
    ok(r.close()).await;
}

#[wasm_bindgen_test]
async fn a_failing_store_fails_the_replica_with_storage_errors() {
    let store = MemoryJsStore::new();
    let r = Replica::open(options(&[("storage", store.clone().into())]))
        .await
        .expect("open");
    ok(r.put("a".into(), 1.into(), JsValue::UNDEFINED)).await;
    store.set_fail_commits(true);
    // The put's reply is held for its commit, which fails: the put must not resolve,
    // and whether it was applied is unknown. What comes after gets STORAGE.
    assert_eq!(
        code_of(&err(r.put("b".into(), 2.into(), JsValue::UNDEFINED)).await),
        "INDETERMINATE"
    );
    assert_eq!(
        code_of(&err(r.get("a".into(), JsValue::UNDEFINED)).await),
        "STORAGE"
    );
    ok(r.close()).await;
    // Reopening sees only what was committed.
    store.set_fail_commits(false);
    let r = Replica::open(options(&[("storage", store.into())]))
        .await
        .expect("reopen");
    assert_eq!(
        ok(r.get("a".into(), JsValue::UNDEFINED)).await.as_f64(),
        Some(1.0)
    );
    assert!(ok(r.get("b".into(), JsValue::UNDEFINED))
        .await
        .is_undefined());
    ok(r.close()).await;
}

#[wasm_bindgen_test]
fn lsm_engine_matches_model_on_image_store() {
    for seed in [1u64, 2, 3, 0x5EED] {
        let image = ImageStore::from_files(Vec::new(), 1 << 30).expect("store");
        let store: Arc<dyn BlockStore> = Arc::new(image.clone());
        let ops = random_ops(seed, 400, 64);
        let result = run_model(&ops, &mut || {
            // Everything written so far is "committed"; the engine must not care.
            let _ = image.take_changes();
            Ok(Box::new(LsmEngine::open(store.clone(), LsmOptions::tiny())?) as Box<dyn Engine>)
        });
        if let Err(m) = result {
            panic!("random_ops({seed}, 400, 64): {m}");
        }
    }
}
