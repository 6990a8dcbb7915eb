//! The relay transport: a WebSocket to a native node's `/replica` endpoint. The replica
//! says `Hello { token, id }`; the node answers `Welcome { host, address }` and from
//! then on carries `Peer` frames both ways (frames: `protocol::wire`). The replica's
//! layout address is `relay:<host>`, so once it is a member it must attach to that same
//! host: other nodes refuse it, and reconnection tries the last host first.
//!
//! The link is lossy by design: frames sent while detached are dropped and the protocol
//! retransmits. Reconnection backs off from `RETRY_MIN_MS` to `RETRY_MAX_MS`, cycling
//! through the seeds, until the replica closes.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use js_sys::Promise;
use ringkv_core::node::PeerMessage;
use ringkv_core::protocol::wire::{ReplicaDown, ReplicaUp};
use ringkv_core::protocol::{self, wire};
use ringkv_core::ring::NodeId;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsValue;

use super::{Transport, TransportState};
use crate::error::{Code, Error};
use crate::host::{self, Host};
use crate::timer::Timer;
use crate::wait::{call_all, Waiters};
use crate::ws::{self, Handlers, Socket};

pub const RETRY_MIN_MS: u64 = 250;
/// The host's reason for a wrong or missing token (native/src/server/replica_ws.rs).
const TOKEN_REFUSED: &str = "invalid token";
pub const RETRY_MAX_MS: u64 = 5_000;

pub struct RelayTransport {
    inner: Rc<RefCell<Relay>>,
}

struct Relay {
    id: NodeId,
    /// The store's identity secret: the host admits a member bound to it only with it.
    secret: Vec<u8>,
    token: Option<String>,
    /// `/replica` URLs of the seeds.
    urls: Vec<String>,
    /// The URL the current or next attempt uses.
    next: usize,
    socket: Option<Socket>,
    attached: Option<(NodeId, String)>,
    host: Weak<RefCell<Host>>,
    weak: Weak<RefCell<Relay>>,
    retry: Option<Timer>,
    backoff_ms: u64,
    closed: bool,
    dropped: u64,
    attachments: u64,
    last_error: Option<String>,
    welcome: Waiters,
}

impl RelayTransport {
    /// Starts connecting to the first seed at once.
    pub fn connect(
        id: NodeId,
        secret: Vec<u8>,
        seeds: &[String],
        token: Option<String>,
    ) -> Result<RelayTransport, Error> {
        let urls = seeds
            .iter()
            .map(|seed| ws::endpoint(seed, "/replica"))
            .collect::<Result<Vec<_>, _>>()?;
        let inner = Rc::new(RefCell::new(Relay {
            id,
            secret,
            token,
            urls,
            next: 0,
            socket: None,
            attached: None,
            host: Weak::new(),
            weak: Weak::new(),
            retry: None,
            backoff_ms: RETRY_MIN_MS,
            closed: false,
            dropped: 0,
            attachments: 0,
            last_error: None,
            welcome: Waiters::default(),
        }));
        let weak = Rc::downgrade(&inner);
        let w = weak.clone();
        let retry = Closure::<dyn FnMut()>::new(move || {
            if let Some(relay) = w.upgrade() {
                if let Some(t) = &mut relay.borrow_mut().retry {
                    t.fired();
                }
                dial(&relay);
            }
        });
        {
            let mut r = inner.borrow_mut();
            r.weak = weak;
            r.retry = Some(Timer::new(retry));
        }
        dial(&inner);
        Ok(RelayTransport { inner })
    }

    /// Resolves with the layout address (`relay:<host>`) once attached.
    pub fn attached(&self) -> Promise {
        let mut r = self.inner.borrow_mut();
        match &r.attached {
            Some((_, address)) => Promise::resolve(&JsValue::from(address.as_str())),
            None => r.welcome.wait(),
        }
    }

    /// The seed URL of the current attachment, with `path` instead of `/replica`.
    pub fn attached_endpoint(&self, path: &str) -> Option<String> {
        let r = self.inner.borrow();
        r.attached.as_ref()?;
        let url = r.urls.get(r.next)?;
        ws::endpoint(url, path).ok()
    }

    pub fn last_error(&self) -> Option<String> {
        self.inner.borrow().last_error.clone()
    }
}

/// Opens a socket to the current URL; failures schedule the next attempt.
fn dial(relay: &Rc<RefCell<Relay>>) {
    let mut r = relay.borrow_mut();
    if r.closed || r.socket.is_some() || r.urls.is_empty() {
        return;
    }
    let url = r.urls[r.next % r.urls.len()].clone();
    let handlers = Handlers::for_owner(&r.weak, hello, receive, lost);
    match Socket::open(&url, handlers) {
        Ok(socket) => r.socket = Some(socket),
        Err(e) => {
            r.last_error = Some(e.message);
            drop(r);
            lost(relay, String::new());
        }
    }
}

fn hello(relay: &Rc<RefCell<Relay>>) {
    let r = relay.borrow();
    let hello = ReplicaUp::Hello {
        token: r.token.clone(),
        id: Some(r.id),
        secret: r.secret.clone(),
    };
    if let (Ok(bytes), Some(socket)) = (wire::encode(&hello), &r.socket) {
        socket.send(&bytes);
    }
}

fn receive(relay: &Rc<RefCell<Relay>>, bytes: &[u8]) {
    let frame = wire::decode::<ReplicaDown>(bytes);
    let delivery = {
        let mut r = relay.borrow_mut();
        match frame {
            Ok(ReplicaDown::Welcome { host, address, .. }) if r.attached.is_none() => {
                r.attached = Some((host, address.clone()));
                r.attachments += 1;
                r.backoff_ms = RETRY_MIN_MS;
                r.last_error = None;
                let resolvers = r.welcome.take_resolvers();
                drop(r);
                call_all(resolvers, &JsValue::from(address.as_str()));
                return;
            }
            Ok(ReplicaDown::Peer { from, frame }) if r.attached.is_some() => {
                // A plain frame or a batch (what one node sent in one turn).
                match protocol::decode_frame(&frame) {
                    Ok(messages) => Some((r.host.clone(), from, messages)),
                    Err(e) => {
                        r.last_error = Some(format!("undecodable frame from n{}: {e}", from.0));
                        None
                    }
                }
            }
            Ok(ReplicaDown::Refused { reason }) => {
                r.last_error = Some(format!("refused: {reason}"));
                if reason == TOKEN_REFUSED {
                    // Retrying cannot help: whoever waits to attach learns it now.
                    let url = r.urls.get(r.next).cloned().unwrap_or_default();
                    let e = Error::new(
                        Code::InvalidArgument,
                        format!("{url} refused the replica's token"),
                    );
                    let rejecters = r.welcome.take_rejecters();
                    drop(r);
                    call_all(rejecters, &e.into());
                    return;
                }
                None
            }
            Ok(other) => {
                r.last_error = Some(format!("unexpected frame {other:?}"));
                None
            }
            Err(e) => {
                r.last_error = Some(format!("undecodable relay frame: {e}"));
                None
            }
        }
    };
    if let Some((host, from, messages)) = delivery {
        if let Some(host) = host.upgrade() {
            for message in messages {
                host::deliver(&host, from, message);
            }
        }
    }
}

/// The socket closed (or never opened): detach and schedule a new attempt.
fn lost(relay: &Rc<RefCell<Relay>>, reason: String) {
    let mut r = relay.borrow_mut();
    // Dropping the socket detaches its handlers; this runs inside one of them, which
    // wasm-bindgen allows (the closure is freed after it returns).
    let socket = r.socket.take();
    let was_attached = r.attached.take().is_some();
    if !reason.is_empty() && (was_attached || r.last_error.is_none()) {
        r.last_error = Some(reason);
    }
    if !was_attached {
        // A member can only attach to its host; cycling finds it among the seeds.
        r.next = (r.next + 1) % r.urls.len().max(1);
    }
    if r.closed {
        return;
    }
    let delay = r.backoff_ms;
    r.backoff_ms = (r.backoff_ms * 2).min(RETRY_MAX_MS);
    let now = js_sys::Date::now().max(0.0) as u64;
    // An open replica is a cluster member: in Node its reconnection keeps the process
    // alive (as its connected socket does).
    if let Some(t) = &mut r.retry {
        t.arm_with(now + delay, now, true);
    }
    drop(r);
    // Deferred to here so the socket's own handler is not freed while borrowed.
    wasm_bindgen_futures::spawn_local(async move { drop(socket) });
}

impl Transport for RelayTransport {
    fn send(&self, to: NodeId, message: PeerMessage) {
        let mut r = self.inner.borrow_mut();
        let sent = match (&r.socket, &r.attached) {
            (Some(socket), Some(_)) => protocol::encode(&message)
                .ok()
                .and_then(|frame| wire::encode(&ReplicaUp::Peer { to, frame }).ok())
                .is_some_and(|bytes| socket.send(&bytes)),
            _ => false,
        };
        if !sent {
            r.dropped += 1;
        }
    }

    fn dropped(&self) -> u64 {
        self.inner.borrow().dropped
    }

    fn bind(&self, host: Weak<RefCell<Host>>) {
        self.inner.borrow_mut().host = host;
    }

    fn close(&self) {
        let (socket, rejecters) = {
            let mut r = self.inner.borrow_mut();
            r.closed = true;
            if let Some(t) = &mut r.retry {
                t.clear();
            }
            r.attached = None;
            (r.socket.take(), r.welcome.take_rejecters())
        };
        drop(socket);
        call_all(rejecters, &Error::closed().into());
    }

    fn state(&self) -> TransportState {
        let r = self.inner.borrow();
        TransportState {
            kind: "relay",
            connected: r.attached.is_some(),
            host: r.attached.as_ref().map(|(host, _)| host.0),
            url: r.urls.get(r.next).cloned(),
            attachments: r.attachments,
            last_error: r.last_error.clone(),
        }
    }
}
