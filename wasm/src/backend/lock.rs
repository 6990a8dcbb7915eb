//! One replica per IndexedDB database: two replicas (two tabs, a tab and a worker)
//! committing images of the same database would overwrite each other's files. The Web
//! Locks API gives an exclusive lock per origin and name; a second opener fails at once
//! instead of waiting. Runtimes without `navigator.locks` get no guard (documented).

use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use super::request::deferred;
use super::storage_error;
use crate::error::{Code, Error};

/// A held lock: `release` lets it go; `released` settles once the lock manager has
/// actually freed it (so a reopen right after close finds it free).
#[derive(Clone)]
pub struct Lock {
    release: Function,
    released: Promise,
}

impl Lock {
    pub async fn release(&self) {
        let _ = self.release.call0(&JsValue::UNDEFINED);
        let _ = JsFuture::from(self.released.clone()).await;
    }
}

/// Takes the lock `ringkv:<database>`, or `None` when the runtime has no Web Locks.
pub async fn acquire(database: &str) -> Result<Option<Lock>, Error> {
    let locks = Reflect::get(&js_sys::global(), &"navigator".into())
        .and_then(|n| Reflect::get(&n, &"locks".into()))
        .unwrap_or(JsValue::UNDEFINED);
    let Ok(request) =
        Reflect::get(&locks, &"request".into()).and_then(|r| r.dyn_into::<Function>())
    else {
        return Ok(None);
    };
    let fail = |e| storage_error("Web Locks", e);
    let (granted, grant, _) = deferred().map_err(fail)?;
    // The lock is held until `release` resolves the promise the callback returns.
    let (held, release, _) = deferred().map_err(fail)?;
    let callback = Closure::once_into_js(move |lock: JsValue| -> JsValue {
        let _ = grant.call1(&JsValue::UNDEFINED, &JsValue::from_bool(!lock.is_null()));
        if lock.is_null() {
            JsValue::UNDEFINED
        } else {
            held.into()
        }
    });
    let options = Object::new();
    let _ = Reflect::set(&options, &"ifAvailable".into(), &JsValue::TRUE);
    let name = JsValue::from_str(&format!("ringkv:{database}"));
    // The request's own promise settles once the lock is released.
    let released: Promise = request
        .call3(&locks, &name, &options, &callback)
        .map_err(fail)?
        .unchecked_into();
    if JsFuture::from(granted).await.map_err(fail)?.as_bool() != Some(true) {
        return Err(Error::new(
            Code::Storage,
            format!(
                "IndexedDB database {database:?} is in use by another replica (another tab or \
                 worker); close that one first"
            ),
        ));
    }
    Ok(Some(Lock { release, released }))
}
