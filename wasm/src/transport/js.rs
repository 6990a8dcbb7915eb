//! A network written in JS: `{ send(to: number, frame: Uint8Array) }`. Frames are
//! `protocol::encode` of a `PeerMessage`; the other end hands them to its replica's
//! `deliver(from, frame)`. The JS side decides what arrives (an in-page network can
//! drop, delay or partition), so it must also be trusted to name the sender truthfully.

use std::cell::{Cell, RefCell};

use js_sys::{Function, Reflect, Uint8Array};
use ringkv_core::node::PeerMessage;
use ringkv_core::protocol;
use ringkv_core::ring::NodeId;
use wasm_bindgen::{JsCast, JsValue};

use super::{Transport, TransportState};
use crate::error::{Code, Error};

pub struct JsTransport {
    object: JsValue,
    send: Function,
    dropped: Cell<u64>,
    last_error: RefCell<Option<String>>,
}

impl JsTransport {
    pub fn new(object: JsValue) -> Result<JsTransport, Error> {
        let send = Reflect::get(&object, &"send".into())
            .ok()
            .and_then(|f| f.dyn_into::<Function>().ok())
            .ok_or_else(|| {
                Error::new(
                    Code::InvalidArgument,
                    "transport must be an object with a send(to, frame) method",
                )
            })?;
        Ok(JsTransport {
            object,
            send,
            dropped: Cell::new(0),
            last_error: RefCell::new(None),
        })
    }
}

impl Transport for JsTransport {
    fn send(&self, to: NodeId, message: PeerMessage) {
        let Ok(frame) = protocol::encode(&message) else {
            self.dropped.set(self.dropped.get() + 1);
            return;
        };
        let frame = Uint8Array::from(frame.as_slice());
        let to = JsValue::from(to.0 as f64);
        if let Err(e) = self.send.call2(&self.object, &to, &frame) {
            // A throwing send is a lost message; the protocol retransmits.
            self.dropped.set(self.dropped.get() + 1);
            *self.last_error.borrow_mut() = Some(format!("transport.send threw: {e:?}"));
        }
    }

    fn dropped(&self) -> u64 {
        self.dropped.get()
    }

    fn state(&self) -> TransportState {
        TransportState {
            kind: "js",
            connected: true,
            host: None,
            url: None,
            attachments: 0,
            last_error: self.last_error.borrow().clone(),
        }
    }
}
