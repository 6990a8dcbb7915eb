//! The relay transport: a WebSocket to a native node's `/replica` endpoint. The replica
//! says `Hello { token, id, secret }` (`id: None` until the cluster assigned one: the
//! host picks a free id and says which); the node answers `Welcome { host, address,
//! id }` and from then on carries `Peer` frames both ways (frames: `protocol::wire`).
//!
//! A member's layout address is `relay:<host>`. Reconnection tries the last host first,
//! then cycles through the seeds; a member bound to its store's identity attaches to
//! any of them with its secret. Attached to another host than its address names (its
//! host is gone), it **re-homes**: it asks its new host over `/client` for
//! `AdminRequest::Rehome { id, address, secret }`, a layout change moving it there
//! (retried while another change is in progress, until the layout shows the new
//! address or the replica detaches).
//!
//! The link is lossy by design: frames sent while detached are dropped and the protocol
//! retransmits. Reconnection backs off from `RETRY_MIN_MS` to `RETRY_MAX_MS`, cycling
//! through the seeds, until the replica closes. Refusals that retrying cannot cure (a
//! wrong token, a wrong identity secret, a native node's id) fail whoever waits to
//! attach at once.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use js_sys::Promise;
use ringkv_core::node::{ClientRequest, PeerMessage};
use ringkv_core::protocol::wire::{ReplicaDown, ReplicaUp};
use ringkv_core::protocol::AdminRequest;
use ringkv_core::protocol::{self, wire};
use ringkv_core::ring::NodeId;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsValue;

use super::{Transport, TransportState};
use crate::client::{self, Conn};
use crate::error::{Code, Error};
use crate::host::{self, Host};
use crate::timer::Timer;
use crate::wait::{call_all, sleep_ms, Waiters};
use crate::ws::{self, Handlers, Socket};

pub const RETRY_MIN_MS: u64 = 250;
/// The host's reason for a wrong or missing token (native/src/server/replica_ws.rs).
const TOKEN_REFUSED: &str = "invalid token";
/// The host's reason when the id is a member bound to another identity (the store lost
/// its data, or the id is another store's).
const IDENTITY_REFUSED: &str = "wrong identity secret";
/// The host's reasons for an id that is a native node's.
const NATIVE_ID_REFUSED: [&str; 2] = [
    "that node id is this node's",
    "that node id belongs to a native node",
];
pub const RETRY_MAX_MS: u64 = 5_000;
/// One `Rehome` request's deadline (it is retried while the replica stays attached).
const REHOME_TIMEOUT_MS: u64 = 15_000;

pub struct RelayTransport {
    inner: Rc<RefCell<Relay>>,
}

struct Relay {
    /// `None` until a host assigned one (the first `Welcome`); then always that id.
    id: Option<NodeId>,
    /// The store's identity secret: the host admits a member bound to it only with it.
    /// Empty while the store has none yet (a new store attaches before its node opens).
    secret: Vec<u8>,
    token: Option<String>,
    /// `/replica` URLs of the seeds.
    urls: Vec<String>,
    /// The URL the current or next attempt uses.
    next: usize,
    socket: Option<Socket>,
    /// (host, layout address `relay:<host>`) of the current attachment.
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
    /// Starts connecting to the first seed at once. `id: None` asks the host for one.
    pub fn connect(
        id: Option<NodeId>,
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

    /// The replica's id: the one it asked for, or the one its first host assigned.
    pub fn id(&self) -> Option<NodeId> {
        self.inner.borrow().id
    }

    /// The store's identity secret, once the node opened (a new store attaches before).
    pub fn set_secret(&self, secret: Vec<u8>) {
        self.inner.borrow_mut().secret = secret;
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
        id: r.id,
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
            Ok(ReplicaDown::Welcome { host, address, id }) if r.attached.is_none() => {
                if let Some(asked) = r.id.filter(|asked| *asked != id) {
                    // Not the attachment asked for: drop it and try the next seed.
                    drop(r);
                    lost(
                        relay,
                        format!("welcomed as n{} instead of n{}", id.0, asked.0),
                    );
                    return;
                }
                r.id = Some(id);
                r.attached = Some((host, address.clone()));
                r.attachments += 1;
                r.backoff_ms = RETRY_MIN_MS;
                r.last_error = None;
                let resolvers = r.welcome.take_resolvers();
                let attachment = r.attachments;
                drop(r);
                call_all(resolvers, &JsValue::from(address.as_str()));
                let relay = relay.clone();
                wasm_bindgen_futures::spawn_local(rehome(relay, attachment));
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
                if let Some(e) = hopeless(&r, &reason) {
                    // Retrying cannot help: whoever waits to attach learns it now.
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

/// The error for a host's refusal that no retry can cure, if `reason` is one.
fn hopeless(r: &Relay, reason: &str) -> Option<Error> {
    let url = r.urls.get(r.next).cloned().unwrap_or_default();
    let id = r.id.map_or_else(|| "?".to_string(), |id| id.0.to_string());
    if reason == TOKEN_REFUSED {
        return Some(Error::new(
            Code::InvalidArgument,
            format!("{url} refused the replica's token"),
        ));
    }
    if reason.starts_with(IDENTITY_REFUSED) {
        return Some(Error::new(
            Code::Identity,
            format!(
                "{url} refused node id {id}: the cluster bound that id to another store \
                 and this store cannot prove it is that member (it lost its data, or the \
                 id is another replica's); acting as it could lose acknowledged writes. \
                 Rejoin under a new id: open without nodeId (the cluster assigns one) after \
                 removing {id} from the cluster (`ringkv remove {id}`) if it is gone for good"
            ),
        ));
    }
    if NATIVE_ID_REFUSED.iter().any(|r| reason.starts_with(r)) {
        return Some(Error::new(
            Code::InvalidArgument,
            format!("{url} refused node id {id}: it is a native node's id ({reason})"),
        ));
    }
    None
}

/// Re-homing: once attached (attachment number `attachment`) to a host other than the
/// one its layout address names, the replica asks that host to move it there
/// (`Rehome`), retrying until the layout shows the move or the attachment ends. A
/// replica that is not a member (joining), not bound to an identity, or already at
/// this host has nothing to do.
async fn rehome(relay: Rc<RefCell<Relay>>, attachment: u64) {
    let mut backoff_ms = 500;
    loop {
        let (id, address, url, token, secret, host) = {
            let r = relay.borrow();
            if r.closed || r.attachments != attachment {
                return;
            }
            let (Some(id), Some((_, address))) = (r.id, &r.attached) else {
                return;
            };
            let url = r
                .urls
                .get(r.next)
                .and_then(|u| ws::endpoint(u, "/client").ok());
            let Some(url) = url else { return };
            (
                id,
                address.clone(),
                url,
                r.token.clone(),
                r.secret.clone(),
                r.host.clone(),
            )
        };
        // No host yet (a new store attaching before its node opened): not a member.
        let Some(host) = host.upgrade() else { return };
        let moved = {
            let h = host.borrow();
            let layout = h.node().layout_history().newest();
            match layout.node(id) {
                None => return,
                Some(spec) if spec.address == address => return,
                Some(spec) => spec.identity.is_some() && !secret.is_empty(),
            }
        };
        if !moved {
            relay.borrow_mut().last_error = Some(format!(
                "attached to another host ({address}) than the layout names, and not bound \
                 to an identity: cannot re-home"
            ));
            return;
        }
        let request = ClientRequest::Admin(AdminRequest::Rehome {
            id,
            address: address.clone(),
            secret,
        });
        let outcome = match Conn::new(&[url], token, REHOME_TIMEOUT_MS) {
            Ok(conn) => {
                let deadline_ms = js_sys::Date::now() + REHOME_TIMEOUT_MS as f64;
                let result = match Conn::connect(&conn).await {
                    Ok(()) => client::admin(&conn, request, deadline_ms).await,
                    Err(e) => Err(e),
                };
                client::close(&conn);
                result
            }
            Err(e) => Err(e),
        };
        match outcome {
            // Chosen: the replica learns the layout from the members; check again then.
            Ok(()) => sleep_ms(200).await,
            Err(e) => {
                relay.borrow_mut().last_error =
                    Some(format!("re-home to {address}: {}", e.message));
                sleep_ms(backoff_ms).await;
                backoff_ms = (backoff_ms * 2).min(RETRY_MAX_MS);
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
