//! IndexedDB's callback requests as futures. The handler closures live until the future
//! completes and are then dropped (no per-request leak, which matters for a long-lived
//! tab that commits on every turn).

use js_sys::{Function, Promise};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{IdbRequest, IdbTransaction};

/// A promise and its resolve/reject functions.
pub(crate) fn deferred() -> Result<(Promise, Function, Function), JsValue> {
    let mut slots = None;
    let promise = Promise::new(&mut |resolve, reject| slots = Some((resolve, reject)));
    // The executor runs synchronously inside `new Promise`, so the slots are filled.
    let (resolve, reject) = slots.ok_or_else(|| JsValue::from_str("Promise executor not run"))?;
    Ok((promise, resolve, reject))
}

/// Resolves with the request's result, rejects with its error.
pub async fn request(req: &IdbRequest) -> Result<JsValue, JsValue> {
    let (promise, resolve, reject) = deferred()?;
    let r = req.clone();
    let ok = Closure::<dyn FnMut()>::new(move || {
        let _ = resolve.call1(
            &JsValue::UNDEFINED,
            &r.result().unwrap_or(JsValue::UNDEFINED),
        );
    });
    let r = req.clone();
    let fail = Closure::<dyn FnMut()>::new(move || {
        let err = r
            .error()
            .ok()
            .flatten()
            .map(JsValue::from)
            .unwrap_or(JsValue::NULL);
        let _ = reject.call1(&JsValue::UNDEFINED, &err);
    });
    req.set_onsuccess(Some(ok.as_ref().unchecked_ref()));
    req.set_onerror(Some(fail.as_ref().unchecked_ref()));
    let result = JsFuture::from(promise).await;
    req.set_onsuccess(None);
    req.set_onerror(None);
    drop((ok, fail));
    result
}

/// Resolves when the transaction commits (`complete`), rejects on `error`/`abort`.
pub async fn transaction_done(tx: &IdbTransaction) -> Result<(), JsValue> {
    let (promise, resolve, reject) = deferred()?;
    let ok = Closure::<dyn FnMut()>::new(move || {
        let _ = resolve.call0(&JsValue::UNDEFINED);
    });
    let t = tx.clone();
    let reject2 = reject.clone();
    let fail = Closure::<dyn FnMut()>::new(move || {
        let err = t
            .error()
            .map(JsValue::from)
            .unwrap_or_else(|| "transaction failed".into());
        let _ = reject2.call1(&JsValue::UNDEFINED, &err);
    });
    let abort = Closure::<dyn FnMut()>::new(move || {
        let _ = reject.call1(&JsValue::UNDEFINED, &"transaction aborted".into());
    });
    tx.set_oncomplete(Some(ok.as_ref().unchecked_ref()));
    tx.set_onerror(Some(fail.as_ref().unchecked_ref()));
    tx.set_onabort(Some(abort.as_ref().unchecked_ref()));
    let result = JsFuture::from(promise).await;
    tx.set_oncomplete(None);
    tx.set_onerror(None);
    tx.set_onabort(None);
    drop((ok, fail, abort));
    result.map(|_| ())
}
