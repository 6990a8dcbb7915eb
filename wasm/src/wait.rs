//! Small async pieces over JS promises: sleeping and one-shot signals.

use js_sys::{Function, Promise};
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;

use crate::error::{Code, Error};
use crate::timer::{cancel, set_timeout_kept};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;

/// Resolves after `ms` (someone awaits it: in Node the timer keeps the process alive).
pub async fn sleep_ms(ms: u64) {
    let promise = Promise::new(&mut |resolve, _| {
        set_timeout_kept(&resolve, ms);
    });
    let _ = JsFuture::from(promise).await;
}

/// `promise`'s outcome, or `None` if it has not settled within `ms`.
pub async fn within(promise: Promise, ms: u64) -> Option<Result<JsValue, JsValue>> {
    // The timeout resolves with a value no caller's promise produces.
    let marker = JsValue::from(js_sys::Symbol::for_("ringkv.timeout"));
    let mut slot = None;
    let timeout = Promise::new(&mut |resolve, _| slot = Some(resolve));
    let resolve = slot?;
    let m = marker.clone();
    let fire = Closure::<dyn FnMut()>::new(move || {
        let _ = resolve.call1(&JsValue::UNDEFINED, &m);
    });
    // Kept alive in Node while awaited; cancelled (and the closure freed) once settled.
    let handle = set_timeout_kept(fire.as_ref().unchecked_ref(), ms);
    let race = Promise::race(&js_sys::Array::of2(&promise, &timeout));
    let outcome = JsFuture::from(race).await;
    cancel(&handle);
    drop(fire);
    match outcome {
        Ok(v) if v == marker => None,
        other => Some(other),
    }
}

/// Promises waiting for one event; each is settled once.
#[derive(Default)]
pub struct Waiters {
    waiting: Vec<(Function, Function)>,
}

/// Waiters kept at most; more are refused at once (a limit on everything).
pub const WAITERS_MAX: usize = 1024;

impl Waiters {
    pub fn wait(&mut self) -> Promise {
        if self.waiting.len() >= WAITERS_MAX {
            return Promise::reject(
                &Error::new(Code::Overloaded, "too many callers waiting").into(),
            );
        }
        let mut slot = None;
        let promise = Promise::new(&mut |resolve, reject| slot = Some((resolve, reject)));
        if let Some(pair) = slot {
            self.waiting.push(pair);
        }
        promise
    }

    /// The resolve functions to call (outside any borrow) with the event's value.
    pub fn take_resolvers(&mut self) -> Vec<Function> {
        self.waiting.drain(..).map(|(resolve, _)| resolve).collect()
    }

    pub fn take_rejecters(&mut self) -> Vec<Function> {
        self.waiting.drain(..).map(|(_, reject)| reject).collect()
    }
}

pub fn call_all(functions: Vec<Function>, value: &JsValue) {
    for f in functions {
        let _ = f.call1(&JsValue::UNDEFINED, value);
    }
}
