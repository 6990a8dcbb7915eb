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

/// One re-armable timer around a closure that lives as long as the timer: the closure
/// is never dropped while it may still be called (dropping clears the pending timeout).
pub struct Timer {
    callback: Closure<dyn FnMut()>,
    handle: Option<JsValue>,
    /// Absolute deadline (ms, host clock) of the armed timeout.
    pub deadline: Option<u64>,
}

impl Timer {
    pub fn new(callback: Closure<dyn FnMut()>) -> Self {
        Timer {
            callback,
            handle: None,
            deadline: None,
        }
    }

    /// Arms the timer for `deadline` (replacing an earlier one) unless already armed
    /// for exactly that time.
    pub fn arm(&mut self, deadline: u64, now: u64) {
        if self.deadline == Some(deadline) && self.handle.is_some() {
            return;
        }
        self.clear();
        let handle = set_timeout(
            self.callback.as_ref().unchecked_ref(),
            deadline.saturating_sub(now) as f64,
        );
        // Node: an armed timer alone must not keep the process alive (pending work is
        // kept alive by the storage or transport I/O it waits on).
        if let Ok(unref) = js_sys::Reflect::get(&handle, &"unref".into()) {
            if let Ok(unref) = unref.dyn_into::<Function>() {
                let _ = unref.call0(&handle);
            }
        }
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
