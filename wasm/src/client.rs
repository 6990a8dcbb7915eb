//! `Client`: a thin client of a cluster over the client protocol (`/client`, frames in
//! `protocol::wire`). It connects to the first seed that welcomes it and reconnects to
//! the next on loss. The replica uses the same connection to ask for its own join.
//!
//! What a lost connection means for requests in flight: a write may have been applied
//! (INDETERMINATE), a read had no effect (UNAVAILABLE). Requests not yet sent wait for
//! the next connection. Every request has a deadline (`requestTimeoutMs`).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::{Rc, Weak};

use js_sys::{Function, Promise};
use ringkv_core::node::{ClientReply, ClientRequest};
use ringkv_core::protocol::wire::{self, ClientFrame, ServerFrame};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::error::{Code, Error};
use crate::host::{settle, Kind};
use crate::options::{self, ClientOptions};
use crate::request;
use crate::timer::Timer;
use crate::wait::Waiters;
use crate::ws::{self, Handlers, Socket};

/// Requests in flight or queued on one client, at most.
pub const CLIENT_PENDING_MAX: usize = 4096;
/// The server's reason for a wrong or missing token (native/src/server/client_ws.rs).
const TOKEN_REFUSED: &str = "refused: invalid token";
/// Bytes of requests waiting for a connection, at most.
pub const CLIENT_UNSENT_BYTES_MAX: usize = 64 << 20;

struct Pending {
    resolve: Function,
    reject: Function,
    kind: Answer,
    /// The frame, until sent (kept so a request made while connecting goes out on
    /// welcome).
    unsent: Option<Vec<u8>>,
    /// When the request fails for want of an answer (host clock, ms).
    deadline_ms: u64,
}

#[derive(Clone)]
enum Answer {
    Reply(Kind),
    Status,
}

pub struct Conn {
    urls: Vec<String>,
    token: Option<String>,
    request_timeout_ms: u64,
    next: usize,
    /// Seeds tried since the last welcome; all of them failing fails what waits.
    failures: usize,
    socket: Option<Socket>,
    /// The node id of the welcoming node.
    welcomed: Option<u64>,
    pending: HashMap<u64, Pending>,
    next_id: u64,
    connected: Waiters,
    closed: bool,
    errors: Vec<String>,
    /// Bytes of the `unsent` frames (bounded by `CLIENT_UNSENT_BYTES_MAX`).
    unsent_bytes: usize,
    /// Fires at the earliest pending deadline.
    deadlines: Option<Timer>,
    weak: Weak<RefCell<Conn>>,
}

pub type SharedConn = Rc<RefCell<Conn>>;

impl Conn {
    pub fn new(
        seeds: &[String],
        token: Option<String>,
        request_timeout_ms: u64,
    ) -> Result<SharedConn, Error> {
        let urls = seeds
            .iter()
            .map(|seed| ws::endpoint(seed, "/client"))
            .collect::<Result<Vec<_>, _>>()?;
        if urls.is_empty() {
            return Err(Error::new(
                Code::InvalidArgument,
                "seeds must name at least one node",
            ));
        }
        ws::available()?;
        let conn = Rc::new(RefCell::new(Conn {
            urls,
            token,
            request_timeout_ms,
            next: 0,
            failures: 0,
            socket: None,
            welcomed: None,
            pending: HashMap::new(),
            next_id: 1,
            connected: Waiters::default(),
            closed: false,
            errors: Vec::new(),
            unsent_bytes: 0,
            deadlines: None,
            weak: Weak::new(),
        }));
        let weak = Rc::downgrade(&conn);
        let w = weak.clone();
        let expire_due = Closure::<dyn FnMut()>::new(move || {
            if let Some(conn) = w.upgrade() {
                expire(&conn);
            }
        });
        {
            let mut c = conn.borrow_mut();
            c.weak = weak;
            c.deadlines = Some(Timer::new(expire_due));
        }
        Ok(conn)
    }

    /// Resolves once some seed welcomed this client.
    pub async fn connect(conn: &SharedConn) -> Result<(), Error> {
        let promise = {
            let mut c = conn.borrow_mut();
            if c.welcomed.is_some() {
                return Ok(());
            }
            c.connected.wait()
        };
        dial(conn);
        JsFuture::from(promise)
            .await
            .map(|_| ())
            .map_err(Error::from_js)
    }

    /// Sends `request`; the promise settles with its answer.
    pub fn request(conn: &SharedConn, request: ClientRequest, kind: Kind) -> Promise {
        send(
            conn,
            |id| ClientFrame::Request { id, request },
            Answer::Reply(kind),
        )
    }
}

fn send(conn: &SharedConn, frame: impl FnOnce(u64) -> ClientFrame, kind: Answer) -> Promise {
    let mut slots = None;
    let promise = Promise::new(&mut |resolve, reject| slots = Some((resolve, reject)));
    let Some((resolve, reject)) = slots else {
        return Promise::reject(&Error::new(Code::Unavailable, "Promise executor not run").into());
    };
    let refused = {
        let mut c = conn.borrow_mut();
        if c.closed {
            Some(Error::new(Code::Closed, "the client is closed"))
        } else if c.pending.len() >= CLIENT_PENDING_MAX || c.unsent_bytes >= CLIENT_UNSENT_BYTES_MAX
        {
            Some(Error::new(
                Code::Overloaded,
                format!(
                    "{} requests ({} bytes unsent) already pending on this client",
                    c.pending.len(),
                    c.unsent_bytes
                ),
            ))
        } else {
            let id = c.next_id;
            c.next_id += 1;
            match wire::encode(&frame(id)) {
                Err(e) => Some(Error::new(Code::TooLarge, e.to_string())),
                Ok(bytes) => {
                    let sent =
                        c.welcomed.is_some() && c.socket.as_ref().is_some_and(|s| s.send(&bytes));
                    if !sent {
                        c.unsent_bytes += bytes.len();
                    }
                    let now = now_ms();
                    let deadline_ms = now + c.request_timeout_ms;
                    c.pending.insert(
                        id,
                        Pending {
                            resolve,
                            reject: reject.clone(),
                            kind,
                            unsent: (!sent).then_some(bytes),
                            deadline_ms,
                        },
                    );
                    // Deadlines only grow (one timeout for all): arm unless armed. It
                    // keeps Node alive: someone awaits the answer.
                    if let Some(t) = &mut c.deadlines {
                        if t.deadline.is_none() {
                            t.arm_with(deadline_ms, now, true);
                        }
                    }
                    None
                }
            }
        }
    };
    match refused {
        Some(e) => {
            let _ = reject.call1(&JsValue::UNDEFINED, &e.into());
        }
        None => dial(conn),
    }
    promise
}

fn now_ms() -> u64 {
    js_sys::Date::now().max(0.0) as u64
}

/// Fails every request past its deadline and re-arms for the next one.
fn expire(conn: &SharedConn) {
    let mut calls: Vec<(Function, JsValue)> = Vec::new();
    {
        let mut c = conn.borrow_mut();
        if let Some(t) = &mut c.deadlines {
            t.fired();
        }
        let now = now_ms();
        let due: Vec<u64> = c
            .pending
            .iter()
            .filter(|(_, p)| p.deadline_ms <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            if let Some(p) = c.take(id) {
                let e = lost_answer(&p, format!("no answer within {} ms", c.request_timeout_ms));
                calls.push((p.reject, e.into()));
            }
        }
        let next = c.pending.values().map(|p| p.deadline_ms).min();
        if let (Some(next), Some(t)) = (next, &mut c.deadlines) {
            t.arm_with(next, now, true);
        }
    }
    for (f, v) in calls {
        let _ = f.call1(&JsValue::UNDEFINED, &v);
    }
}

impl Conn {
    /// Removes pending request `id`, keeping `unsent_bytes` in step.
    fn take(&mut self, id: u64) -> Option<Pending> {
        let p = self.pending.remove(&id)?;
        if let Some(bytes) = &p.unsent {
            self.unsent_bytes -= bytes.len();
        }
        if self.pending.is_empty() {
            // Nothing awaits an answer: nothing may keep Node alive.
            if let Some(t) = &mut self.deadlines {
                t.clear();
            }
        }
        Some(p)
    }
}

/// The error for a request whose answer will never come.
fn lost_answer(p: &Pending, why: String) -> Error {
    match p.kind {
        Answer::Reply(ref kind) if kind.is_write() && p.unsent.is_none() => Error::new(
            Code::Indeterminate,
            format!("{why}; the write may or may not have been applied"),
        ),
        _ => Error::new(Code::Unavailable, format!("{why}; nothing was changed")),
    }
}

/// Opens a socket to the next seed unless one is open or opening.
fn dial(conn: &SharedConn) {
    let mut c = conn.borrow_mut();
    if c.closed || c.socket.is_some() {
        return;
    }
    let url = c.urls[c.next % c.urls.len()].clone();
    let handlers = Handlers::for_owner(&c.weak, hello, receive, lost);
    match Socket::open(&url, handlers) {
        Ok(socket) => c.socket = Some(socket),
        Err(e) => {
            drop(c);
            lost(conn, e.message);
        }
    }
}

fn hello(conn: &SharedConn) {
    let c = conn.borrow();
    let hello = ClientFrame::Hello {
        token: c.token.clone(),
    };
    if let (Ok(bytes), Some(socket)) = (wire::encode(&hello), &c.socket) {
        socket.send(&bytes);
    }
}

fn receive(conn: &SharedConn, bytes: &[u8]) {
    let mut calls: Vec<(Function, JsValue)> = Vec::new();
    {
        let mut c = conn.borrow_mut();
        match wire::decode::<ServerFrame>(bytes) {
            Ok(ServerFrame::Welcome { node }) => {
                c.welcomed = Some(node);
                c.failures = 0;
                c.errors.clear();
                let mut unsent: Vec<(u64, Vec<u8>)> = c
                    .pending
                    .iter_mut()
                    .filter_map(|(id, p)| p.unsent.take().map(|b| (*id, b)))
                    .collect();
                unsent.sort_by_key(|(id, _)| *id);
                for (id, bytes) in unsent {
                    let sent = c.socket.as_ref().is_some_and(|s| s.send(&bytes));
                    if sent {
                        c.unsent_bytes -= bytes.len();
                    } else if let Some(p) = c.pending.get_mut(&id) {
                        p.unsent = Some(bytes);
                    }
                }
                for resolve in c.connected.take_resolvers() {
                    calls.push((resolve, JsValue::UNDEFINED));
                }
            }
            Ok(ServerFrame::Reply { id, reply }) => {
                if let Some(p) = c.take(id) {
                    calls.push(answer(p, Ok(reply)));
                }
            }
            Ok(ServerFrame::Status { id, json }) => {
                if let Some(p) = c.take(id) {
                    let parsed = js_sys::JSON::parse(&json)
                        .map_err(|_| Error::new(Code::Unavailable, "status is not JSON"));
                    calls.push(match parsed {
                        Ok(v) => (p.resolve, v),
                        Err(e) => (p.reject, e.into()),
                    });
                }
            }
            Ok(ServerFrame::Refused { reason }) => c.errors.push(format!("refused: {reason}")),
            // Answers to requests this client never sends (export, backup).
            Ok(
                ServerFrame::Keys { .. }
                | ServerFrame::Layout { .. }
                | ServerFrame::BackupPage { .. }
                | ServerFrame::Failed { .. },
            ) => {}
            Err(e) => c.errors.push(format!("undecodable frame: {e}")),
        }
    }
    for (f, v) in calls {
        let _ = f.call1(&JsValue::UNDEFINED, &v);
    }
}

fn answer(p: Pending, reply: Result<ClientReply, Error>) -> (Function, JsValue) {
    let result = match p.kind {
        Answer::Reply(kind) => reply.and_then(|r| settle(kind, r)),
        Answer::Status => Err(Error::new(Code::Unavailable, "unexpected reply")),
    };
    match result {
        Ok(v) => (p.resolve, v),
        Err(e) => (p.reject, e.into()),
    }
}

/// The socket closed: sent requests fail; the rest wait for the next seed, unless every
/// seed failed since the last welcome.
fn lost(conn: &SharedConn, reason: String) {
    let mut calls: Vec<(Function, JsValue)> = Vec::new();
    let redial = {
        let mut c = conn.borrow_mut();
        let socket = c.socket.take();
        let was_welcomed = c.welcomed.take().is_some();
        let url = c.urls[c.next % c.urls.len()].clone();
        if c.errors.len() < c.urls.len() * 2 {
            c.errors.push(format!("{url}: {reason}"));
        }
        let sent: Vec<u64> = c
            .pending
            .iter()
            .filter(|(_, p)| p.unsent.is_none())
            .map(|(id, _)| *id)
            .collect();
        for id in sent {
            if let Some(p) = c.take(id) {
                let e = lost_answer(&p, format!("connection to {url} lost ({reason})"));
                calls.push((p.reject, e.into()));
            }
        }
        c.next = (c.next + 1) % c.urls.len();
        if !was_welcomed {
            c.failures += 1;
        }
        let exhausted = c.failures >= c.urls.len();
        if exhausted {
            c.failures = 0;
            let why = format!("no seed accepted the connection: {}", c.errors.join("; "));
            // A refused token is not worth retrying (unlike an unreachable cluster).
            let refused_token = c.errors.iter().any(|e| e.ends_with(TOKEN_REFUSED));
            let code = if refused_token {
                Code::InvalidArgument
            } else {
                Code::Unavailable
            };
            let e: JsValue = Error::new(code, why.clone()).into();
            for reject in c.connected.take_rejecters() {
                calls.push((reject, e.clone()));
            }
            let queued: Vec<u64> = c.pending.keys().copied().collect();
            for id in queued {
                if let Some(p) = c.take(id) {
                    calls.push((p.reject, Error::new(code, why.clone()).into()));
                }
            }
            c.errors.clear();
        }
        wasm_bindgen_futures::spawn_local(async move { drop(socket) });
        !c.closed && !exhausted && (!c.pending.is_empty() || !was_welcomed)
    };
    for (f, v) in calls {
        let _ = f.call1(&JsValue::UNDEFINED, &v);
    }
    if redial {
        dial(conn);
    }
}

/// Fails what is pending (writes as INDETERMINATE) and closes the connection.
pub fn close(conn: &SharedConn) {
    let (socket, calls) = {
        let mut c = conn.borrow_mut();
        c.closed = true;
        let mut calls: Vec<(Function, JsValue)> = Vec::new();
        c.unsent_bytes = 0;
        if let Some(t) = &mut c.deadlines {
            t.clear();
        }
        for (_, p) in c.pending.drain() {
            let e = lost_answer(&p, "the client was closed".into());
            calls.push((p.reject, e.into()));
        }
        for reject in c.connected.take_rejecters() {
            calls.push((
                reject,
                Error::new(Code::Closed, "the client was closed").into(),
            ));
        }
        (c.socket.take(), calls)
    };
    drop(socket);
    for (f, v) in calls {
        let _ = f.call1(&JsValue::UNDEFINED, &v);
    }
}

/// A thin client of a cluster (see `Client` in index.d.ts).
#[wasm_bindgen]
pub struct Client {
    conn: SharedConn,
    options: ClientOptions,
}

#[wasm_bindgen]
impl Client {
    /// Connects to the first of `seeds` that welcomes the client.
    pub async fn connect(seeds: JsValue, options: JsValue) -> Result<Client, JsValue> {
        let seeds = options::seeds(&seeds)?.unwrap_or_default();
        let options = options::parse_client(&options)?;
        let conn = Conn::new(&seeds, options.token.clone(), options.request_timeout_ms)?;
        Conn::connect(&conn).await?;
        Ok(Client { conn, options })
    }

    fn run(&self, prepared: Result<(ClientRequest, Kind), Error>) -> Promise {
        match prepared {
            Ok((request, kind)) => Conn::request(&self.conn, request, kind),
            Err(e) => Promise::reject(&e.into()),
        }
    }

    pub fn put(&self, key: JsValue, value: JsValue, opts: JsValue) -> Promise {
        self.run(request::put(&key, &value, &opts, self.options.defaults))
    }

    pub fn get(&self, key: JsValue, opts: JsValue) -> Promise {
        self.run(request::get(&key, &opts, self.options.defaults))
    }

    #[wasm_bindgen(js_name = getSiblings)]
    pub fn get_siblings(&self, key: JsValue, opts: JsValue) -> Promise {
        self.run(request::siblings(&key, &opts, self.options.defaults))
    }

    pub fn delete(&self, key: JsValue, opts: JsValue) -> Promise {
        self.run(request::delete(&key, &opts, self.options.defaults))
    }

    /// Stores `next` (`undefined`: deletes) iff the key holds `expected` (`undefined`:
    /// is absent): `{ applied, previous }`, one linearizable step.
    pub fn cas(&self, key: JsValue, expected: JsValue, next: JsValue, opts: JsValue) -> Promise {
        self.run(request::cas(
            &key,
            &expected,
            &next,
            &opts,
            self.options.defaults,
        ))
    }

    /// Stores `value` iff the key is absent; whether it did.
    #[wasm_bindgen(js_name = setIfAbsent)]
    pub fn set_if_absent(&self, key: JsValue, value: JsValue, opts: JsValue) -> Promise {
        self.run(request::set_if(
            &key,
            &value,
            false,
            &opts,
            self.options.defaults,
        ))
    }

    /// Stores `value` iff the key has a value; whether it did.
    #[wasm_bindgen(js_name = setIfPresent)]
    pub fn set_if_present(&self, key: JsValue, value: JsValue, opts: JsValue) -> Promise {
        self.run(request::set_if(
            &key,
            &value,
            true,
            &opts,
            self.options.defaults,
        ))
    }

    /// Stores `value` (`undefined`: deletes) and returns the value it replaced.
    #[wasm_bindgen(js_name = getAndSet)]
    pub fn get_and_set(&self, key: JsValue, value: JsValue, opts: JsValue) -> Promise {
        self.run(request::get_and_set(
            &key,
            &value,
            &opts,
            self.options.defaults,
        ))
    }

    /// Adds `by` (default 1) to the key's decimal counter (absent: 0); the new count.
    pub fn increment(&self, key: JsValue, by: JsValue, opts: JsValue) -> Promise {
        self.run(request::increment(&key, &by, &opts, self.options.defaults))
    }

    /// The key's counter (its decimal bytes) as a number or BigInt, or `undefined`.
    #[wasm_bindgen(js_name = getCounter)]
    pub fn get_counter(&self, key: JsValue, opts: JsValue) -> Promise {
        self.run(request::get_counter(&key, &opts, self.options.defaults))
    }

    /// One scan page from `cursor`: `{ keys, cursor }` (the JS `scan()` pages with it).
    #[wasm_bindgen(js_name = scanPage)]
    pub fn scan_page(&self, cursor: JsValue, opts: JsValue) -> Promise {
        self.run(request::scan_page(&cursor, &opts))
    }

    /// The connected node's status document (as `GET /status` on it).
    pub fn status(&self) -> Promise {
        send(&self.conn, |id| ClientFrame::Status { id }, Answer::Status)
    }

    /// The id of the node this client is connected to, if connected.
    #[wasm_bindgen(getter)]
    pub fn node(&self) -> Option<f64> {
        self.conn.borrow().welcomed.map(|n| n as f64)
    }

    /// Fails what is pending (writes as INDETERMINATE) and closes the connection.
    pub fn close(&self) {
        close(&self.conn);
    }
}

/// Asks the cluster (through `conn`) to run `request`, an admin change; retries while
/// another change is in progress (refused as UNAVAILABLE) until `deadline_ms`.
pub async fn admin(
    conn: &SharedConn,
    request: ClientRequest,
    deadline_ms: f64,
) -> Result<(), Error> {
    let mut backoff_ms = 200;
    loop {
        let attempt = JsFuture::from(Conn::request(conn, request.clone(), Kind::Write)).await;
        match attempt.map_err(Error::from_js) {
            Ok(_) => return Ok(()),
            Err(e) if e.code == Code::Unavailable && js_sys::Date::now() < deadline_ms => {
                crate::wait::sleep_ms(backoff_ms).await;
                backoff_ms = (backoff_ms * 2).min(2_000);
            }
            Err(e) => return Err(e),
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        close(&self.conn);
    }
}
