//! Host callbacks: `setTimeout`, `clearTimeout` and `queueMicrotask`, which exist as
//! globals in browsers, workers, Node and Workers-style runtimes.

use js_sys::Function;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(f: &Function, ms: f64) -> JsValue;
    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(handle: &JsValue);
    #[wasm_bindgen(js_name = queueMicrotask)]
    pub fn queue_microtask(f: &Function);
}

/// Calls `f` once after `ms`; in Node the pending call keeps the process alive (for
/// waits a caller is awaiting, such as `Replica.open`).
pub fn set_timeout_kept(f: &Function, ms: u64) -> JsValue {
    set_timeout(f, ms as f64)
}

/// Cancels a timeout set by `set_timeout_kept`.
pub fn cancel(handle: &JsValue) {
    clear_timeout(handle);
}

/// Node: an armed timer alone must not keep the process alive (pending work is kept
/// alive by the storage or transport I/O it waits on). Elsewhere a no-op.
fn unref(handle: &JsValue) {
    if let Ok(unref) = js_sys::Reflect::get(handle, &"unref".into()) {
        if let Ok(unref) = unref.dyn_into::<Function>() {
            let _ = unref.call0(handle);
        }
    }
}

/// One re-armable timer around a closure that lives as long as the timer: the closure
/// is never dropped while it may still be called (dropping clears the pending timeout).
pub struct Timer {
    callback: Closure<dyn FnMut()>,
    handle: Option<JsValue>,
    /// Absolute deadline (ms, host clock) of the armed timeout.
    pub deadline: Option<u64>,
    kept_alive: bool,
}

impl Timer {
    pub fn new(callback: Closure<dyn FnMut()>) -> Self {
        Timer {
            callback,
            handle: None,
            deadline: None,
            kept_alive: false,
        }
    }

    /// Arms the timer for `deadline` (replacing an earlier one) unless already armed
    /// for exactly that time. In Node it does not keep the process alive.
    pub fn arm(&mut self, deadline: u64, now: u64) {
        self.arm_with(deadline, now, false);
    }

    /// `arm`, but with `keep_alive` the timer holds Node's event loop open (while a
    /// request waits on it: its deadline must fire even if the network went silent).
    pub fn arm_with(&mut self, deadline: u64, now: u64, keep_alive: bool) {
        if self.deadline == Some(deadline) && self.handle.is_some() && self.kept_alive == keep_alive
        {
            return;
        }
        self.clear();
        let handle = set_timeout(
            self.callback.as_ref().unchecked_ref(),
            deadline.saturating_sub(now) as f64,
        );
        if !keep_alive {
            unref(&handle);
        }
        self.kept_alive = keep_alive;
        self.handle = Some(handle);
        self.deadline = Some(deadline);
    }

    /// Called first thing by the callback: the timeout has fired.
    pub fn fired(&mut self) {
        self.handle = None;
        self.deadline = None;
    }

    pub fn clear(&mut self) {
        if let Some(h) = self.handle.take() {
            clear_timeout(&h);
        }
        self.deadline = None;
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        self.clear();
    }
}
