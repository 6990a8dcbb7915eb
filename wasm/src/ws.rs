//! One WebSocket carrying binary messages, over the host's global `WebSocket` (browsers,
//! workers, Deno, Node ≥ 22; Node 20–21 with `--experimental-websocket`).
//!
//! Invariants: the handlers hold only what their owner gives them (owners pass `Weak`s,
//! so a socket never keeps its owner alive); dropping a `Socket` detaches the handlers
//! before the closures are freed, so the browser never calls a freed closure; every
//! outgoing message respects `BUFFERED_BYTES_MAX` (beyond it a send fails like a lost
//! message, and the protocols above retransmit).

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use js_sys::{ArrayBuffer, Uint8Array};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::{BinaryType, CloseEvent, MessageEvent, WebSocket};

use crate::error::{Code, Error};
use crate::timer::Timer;

/// Bytes queued in the socket beyond which sends are refused.
pub const BUFFERED_BYTES_MAX: u32 = 16 << 20;
/// A connection not open by then is given up (reported through `on_close`).
pub const CONNECT_TIMEOUT_MS: u64 = 10_000;
/// Incoming messages larger than this are ignored (the server bounds its frames far
/// below; this protects the page from a misbehaving endpoint).
pub const MESSAGE_BYTES_MAX: u32 = 32 << 20;

pub struct Handlers {
    pub on_open: Box<dyn FnMut()>,
    pub on_message: Box<dyn FnMut(Vec<u8>)>,
    /// Called once, with the reason, when the socket closes or fails to open.
    pub on_close: Box<dyn FnMut(String)>,
}

impl Handlers {
    /// Handlers calling `open`, `message` and `close` on `owner` for as long as it lives
    /// (a `Weak`: the socket never keeps its owner alive).
    pub fn for_owner<T: 'static>(
        owner: &Weak<RefCell<T>>,
        open: fn(&Rc<RefCell<T>>),
        message: fn(&Rc<RefCell<T>>, &[u8]),
        close: fn(&Rc<RefCell<T>>, String),
    ) -> Handlers {
        let (o, m, c) = (owner.clone(), owner.clone(), owner.clone());
        Handlers {
            on_open: Box::new(move || {
                if let Some(owner) = o.upgrade() {
                    open(&owner);
                }
            }),
            on_message: Box::new(move |bytes| {
                if let Some(owner) = m.upgrade() {
                    message(&owner, &bytes);
                }
            }),
            on_close: Box::new(move |reason| {
                if let Some(owner) = c.upgrade() {
                    close(&owner, reason);
                }
            }),
        }
    }
}

pub struct Socket {
    ws: WebSocket,
    _open: Closure<dyn FnMut()>,
    _message: Closure<dyn FnMut(MessageEvent)>,
    _close: Closure<dyn FnMut(CloseEvent)>,
    _error: Closure<dyn FnMut()>,
    /// Fires `on_close` if the socket is still connecting at the deadline.
    _deadline: Timer,
}

/// `on_close`, callable from several events but run at most once.
type Ending = Rc<RefCell<Option<Box<dyn FnMut(String)>>>>;

fn end(ending: &Ending, reason: String) {
    let taken = ending.borrow_mut().take();
    if let Some(mut on_close) = taken {
        on_close(reason);
    }
}

/// `base` plus `path`: `ws://h:p` or bare `h:p` (taken as `ws://`), any trailing `/`
/// or path dropped.
pub fn endpoint(base: &str, path: &str) -> Result<String, Error> {
    let trimmed = base.trim();
    let (scheme, rest) = match trimmed.split_once("://") {
        Some((s @ ("ws" | "wss"), rest)) => (s, rest),
        Some((other, _)) => {
            return Err(Error::new(
                Code::InvalidArgument,
                format!("seed {base:?}: scheme {other:?} is not ws or wss"),
            ))
        }
        None => ("ws", trimmed),
    };
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() {
        return Err(Error::new(
            Code::InvalidArgument,
            format!("seed {base:?} has no host"),
        ));
    }
    Ok(format!("{scheme}://{authority}{path}"))
}

/// Refuses at once where there is no global `WebSocket` (rather than failing every
/// connection attempt until a timeout).
pub fn available() -> Result<(), Error> {
    let has = js_sys::Reflect::has(&js_sys::global(), &"WebSocket".into()).unwrap_or(false);
    if has {
        return Ok(());
    }
    Err(Error::new(
        Code::Unsupported,
        "this runtime has no global WebSocket (Node 20-21: run node with \
         --experimental-websocket; Node 22 and later, browsers and workers have one)",
    ))
}

impl Socket {
    pub fn open(url: &str, handlers: Handlers) -> Result<Socket, Error> {
        let ws = WebSocket::new(url).map_err(|e| {
            Error::new(
                Code::Unavailable,
                format!("cannot open a WebSocket to {url}: {}", describe(&e)),
            )
        })?;
        ws.set_binary_type(BinaryType::Arraybuffer);
        let Handlers {
            on_open,
            mut on_message,
            on_close,
        } = handlers;
        let ending: Ending = Rc::new(RefCell::new(Some(on_close)));
        let open = Closure::<dyn FnMut()>::new(on_open);
        let message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            // Text messages are not part of either protocol: ignored.
            if let Ok(buffer) = event.data().dyn_into::<ArrayBuffer>() {
                if buffer.byte_length() <= MESSAGE_BYTES_MAX {
                    on_message(Uint8Array::new(&buffer).to_vec());
                }
            }
        });
        let e = ending.clone();
        let close = Closure::<dyn FnMut(CloseEvent)>::new(move |event: CloseEvent| {
            let reason = event.reason();
            end(
                &e,
                if reason.is_empty() {
                    format!("connection closed (code {})", event.code())
                } else {
                    reason
                },
            )
        });
        // Browsers follow a failed connection's `error` with `close`; Node 20's
        // experimental WebSocket fires only `error`. Either ends the socket, once.
        let e = ending.clone();
        let error = Closure::<dyn FnMut()>::new(move || end(&e, "connection failed".into()));
        let (e, w) = (ending, ws.clone());
        let mut deadline = Timer::new(Closure::<dyn FnMut()>::new(move || {
            if w.ready_state() == WebSocket::CONNECTING {
                let _ = w.close();
                end(&e, format!("not connected within {CONNECT_TIMEOUT_MS} ms"));
            }
        }));
        let now = js_sys::Date::now().max(0.0) as u64;
        deadline.arm(now + CONNECT_TIMEOUT_MS, now);
        ws.set_onopen(Some(open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(close.as_ref().unchecked_ref()));
        ws.set_onerror(Some(error.as_ref().unchecked_ref()));
        Ok(Socket {
            ws,
            _open: open,
            _message: message,
            _close: close,
            _error: error,
            _deadline: deadline,
        })
    }

    /// Queues one binary message; false if the socket is not open or too far behind.
    pub fn send(&self, bytes: &[u8]) -> bool {
        if self.ws.ready_state() != WebSocket::OPEN
            || self.ws.buffered_amount() > BUFFERED_BYTES_MAX
        {
            return false;
        }
        self.ws.send_with_u8_array(bytes).is_ok()
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        self.ws.set_onerror(None);
        let _ = self.ws.close();
    }
}

fn describe(e: &wasm_bindgen::JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| format!("{e:?}"))
}
