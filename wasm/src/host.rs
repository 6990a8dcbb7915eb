//! The event loop around one `Node`: turns, the output hold, timers and maintenance.
//!
//! A *turn* is everything the node handles before control returns to the JS event loop
//! (all `put`/`get` calls made synchronously, or one timer tick). At the end of a turn
//! (a microtask) the host takes the image store's changes and commits them in one
//! backend transaction; the turn's outputs (replies and sends) are held until that
//! commit completed, so a put resolves only once durable and no reply or message reveals
//! state that a crash could still lose. Only one commit is in flight: turns that end
//! meanwhile pile their outputs into `waiting`, and their changes go out together in
//! the next commit (group commit). A failed commit fails the replica (STORAGE): the
//! image is then ahead of the durable state in an unknown way (the fsync-gate rule).
//!
//! Invariants: a `RefCell` borrow of the host is never held while JS code runs (promise
//! resolution and transport sends happen after the borrow is released); outputs are
//! released in the order produced; every queue is bounded (`PENDING_MAX` requests, held
//! sends capped at `HELD_SENDS_MAX` per commit, dropped beyond like lost messages).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::{Rc, Weak};
use std::sync::Arc;

use js_sys::{Function, Object, Promise};
use ringkv_core::node::{
    ClientReply, ClientRequest, Input, MemberState, Node, Output, PeerMessage, RequestId,
};
use ringkv_core::ring::NodeId;
use ringkv_core::storage::lsm::LsmEngine;
use ringkv_core::storage::Engine;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};

use crate::backend::Backend;
use crate::error::{Code, Error};
use crate::image::ImageStore;
use crate::timer::{queue_microtask, Timer};
use crate::transport::Transport;
use crate::updates::{self, UpdateAnswer};
use crate::value;

/// Requests a replica accepts before answering OVERLOADED (the node's own in-flight
/// bound is 1024; this one also covers replies held for a commit).
pub const PENDING_MAX: usize = 4096;
/// Sends waiting for the next commit beyond this are dropped (the protocol retransmits);
/// with one commit in flight, at most twice this many sends are held.
pub const HELD_SENDS_MAX: usize = 16 << 10;

/// What a pending request's reply is turned into. `raw`: values are returned as the
/// stored bytes (`Uint8Array`) instead of decoded from the value encoding.
#[derive(Clone)]
pub enum Kind {
    /// A get: the value, `undefined` when absent.
    Get { raw: bool },
    /// A put, delete or membership change: `undefined`.
    Write,
    /// An eventual get: `{ values, context }`.
    Siblings { raw: bool },
    /// A conditional write (`ClientRequest::Update`): the part of `Updated` the call
    /// returns (`updates::settle_update`).
    Update { raw: bool, answer: UpdateAnswer },
    /// A get of a counter: its decimal bytes as a number or BigInt (`crate::counter`).
    Counter { bigint: bool },
    /// A scan page: `{ keys, cursor }`, keys matching `pattern` only (a Redis glob,
    /// applied to each page as RESP `SCAN MATCH` does).
    Keys {
        raw: bool,
        pattern: Option<Rc<[u8]>>,
    },
}

impl Kind {
    /// Whether a request whose answer is lost may have changed data (INDETERMINATE)
    /// rather than certainly not (UNAVAILABLE).
    pub fn is_write(&self) -> bool {
        matches!(self, Kind::Write | Kind::Update { .. })
    }
}

struct Pending {
    resolve: Function,
    reject: Function,
    kind: Kind,
}

pub struct Persistence {
    pub store: ImageStore,
    pub backend: Backend,
}

pub struct Host {
    node: Node,
    engine: Arc<LsmEngine>,
    persistence: Option<Persistence>,
    transport: Rc<dyn Transport>,
    pending: HashMap<u64, Pending>,
    next_request: u64,
    /// Outputs of turns whose changes are not committed yet (no commit started).
    waiting: Vec<Output>,
    /// How many of `waiting` are sends (bounded by `HELD_SENDS_MAX`).
    waiting_sends: usize,
    /// Outputs released when the in-flight commit completes; `Some` while one is.
    committing: Option<Vec<Output>>,
    turn_scheduled: bool,
    weak: Weak<RefCell<Host>>,
    timer: Option<Timer>,
    maintenance: Option<Timer>,
    maintenance_budget_bytes: u64,
    failed: Option<Error>,
    closing: Vec<Function>,
    closed: bool,
    /// `on('membership')` listeners, called when `membership_seen` changes.
    listeners: Vec<Function>,
    membership_seen: Option<MembershipView>,
    /// The membership as of the commit in flight, reported when it completes.
    committing_view: Option<MembershipView>,
    pub stats: HostStats,
}

/// What membership listeners are told about: the layout history's stamp and every
/// member's liveness.
#[derive(Clone, PartialEq, Eq)]
struct MembershipView {
    stamp: u64,
    members: Vec<(NodeId, MemberState)>,
}

/// Listeners one replica keeps, at most.
pub const LISTENERS_MAX: usize = 64;

#[derive(Default, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HostStats {
    pub commits: u64,
    pub commit_bytes: u64,
    pub maintenance_steps: u64,
    pub held_sends_dropped: u64,
    /// Peer frames that arrived while the replica was busy, failed or closed.
    pub receives_dropped: u64,
}

/// Deferred JS calls, run once the host borrow is released.
enum Action {
    Call(Function, JsValue),
    Send(Output),
}

pub type Shared = Rc<RefCell<Host>>;

fn now_ms() -> u64 {
    js_sys::Date::now().max(0.0) as u64
}

impl Host {
    pub fn new(
        node: Node,
        engine: Arc<LsmEngine>,
        persistence: Option<Persistence>,
        transport: Rc<dyn Transport>,
        maintenance_budget_bytes: u64,
    ) -> Shared {
        let shared = Rc::new(RefCell::new(Host {
            node,
            engine,
            persistence,
            transport,
            pending: HashMap::new(),
            next_request: 1,
            waiting: Vec::new(),
            waiting_sends: 0,
            committing: None,
            turn_scheduled: false,
            weak: Weak::new(),
            timer: None,
            maintenance: None,
            maintenance_budget_bytes,
            failed: None,
            closing: Vec::new(),
            closed: false,
            listeners: Vec::new(),
            membership_seen: None,
            committing_view: None,
            stats: HostStats::default(),
        }));
        // The callbacks hold a Weak: a dropped replica does not live on through them.
        let weak = Rc::downgrade(&shared);
        let w = weak.clone();
        let tick = Closure::<dyn FnMut()>::new(move || with(&w, on_timer));
        let w = weak.clone();
        let maintain = Closure::<dyn FnMut()>::new(move || with(&w, on_maintenance));
        {
            let mut h = shared.borrow_mut();
            h.weak = weak;
            h.timer = Some(Timer::new(tick));
            h.maintenance = Some(Timer::new(maintain));
            h.membership_seen = Some(h.membership_view());
            h.transport.bind(h.weak.clone());
        }
        arm_timer(&shared);
        shared
    }

    pub fn node(&self) -> &Node {
        &self.node
    }

    pub fn engine(&self) -> &LsmEngine {
        &self.engine
    }

    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    pub fn held_len(&self) -> usize {
        self.waiting.len() + self.committing.as_ref().map_or(0, Vec::len)
    }

    pub fn failed(&self) -> Option<&Error> {
        self.failed.as_ref()
    }

    pub fn dropped_sends(&self) -> u64 {
        self.transport.dropped()
    }

    pub fn transport(&self) -> Rc<dyn Transport> {
        self.transport.clone()
    }

    fn membership_view(&self) -> MembershipView {
        MembershipView {
            stamp: self.node.layout_history().stamp(),
            members: self.node.member_states(),
        }
    }

    /// Listener calls if `view` differs from what listeners were last told. Views are
    /// taken when outputs are released: listeners never see a layout the store does not
    /// hold yet.
    fn membership_events(&mut self, view: MembershipView) -> Vec<Action> {
        if self.membership_seen.as_ref() == Some(&view) {
            return Vec::new();
        }
        self.membership_seen = Some(view.clone());
        if self.listeners.is_empty() {
            return Vec::new();
        }
        let event = membership_event(&self.node, &view);
        self.listeners
            .iter()
            .map(|f| Action::Call(f.clone(), event.clone()))
            .collect()
    }

    pub fn add_listener(&mut self, listener: Function) -> Result<(), Error> {
        if self.listeners.len() >= LISTENERS_MAX {
            return Err(Error::new(
                Code::Overloaded,
                format!("at most {LISTENERS_MAX} listeners per replica"),
            ));
        }
        self.listeners.push(listener);
        Ok(())
    }

    pub fn remove_listener(&mut self, listener: &Function) {
        self.listeners.retain(|f| !Object::is(f, listener));
    }

    fn usable(&self) -> Result<(), Error> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if self.closed || !self.closing.is_empty() {
            return Err(Error::closed());
        }
        Ok(())
    }

    fn collect_outputs(&mut self) {
        while let Some(out) = self.node.poll_output() {
            if matches!(out, Output::Send { .. }) {
                if self.waiting_sends >= HELD_SENDS_MAX {
                    self.stats.held_sends_dropped += 1;
                    continue;
                }
                self.waiting_sends += 1;
            }
            self.waiting.push(out);
        }
    }

    fn take_waiting(&mut self) -> Vec<Output> {
        self.waiting_sends = 0;
        std::mem::take(&mut self.waiting)
    }

    /// Turns released outputs into JS calls.
    fn release(&mut self, outputs: Vec<Output>) -> Vec<Action> {
        let mut actions = Vec::with_capacity(outputs.len());
        for out in outputs {
            match out {
                Output::Reply { id, reply } => {
                    let Some(p) = self.pending.remove(&id.0) else {
                        continue;
                    };
                    actions.push(match settle(p.kind, reply) {
                        Ok(v) => Action::Call(p.resolve, v),
                        Err(e) => Action::Call(p.reject, e.into()),
                    });
                }
                send @ Output::Send { .. } => actions.push(Action::Send(send)),
            }
        }
        actions
    }

    /// Fails the replica: every pending request is rejected with `e`.
    fn fail(&mut self, e: Error) -> Vec<Action> {
        self.failed = Some(e.clone());
        self.transport.close();
        self.take_waiting();
        self.committing = None;
        if let Some(t) = &mut self.timer {
            t.clear();
        }
        // Requests in flight lose their answers: a write may already have been applied
        // (here or, through messages sent after an earlier commit, on peers), a read
        // changed nothing. Later calls get `e` itself.
        let mut actions: Vec<Action> = self
            .pending
            .drain()
            .map(|(_, p)| {
                let lost = if p.kind.is_write() {
                    Error::new(
                        Code::Indeterminate,
                        format!("the replica failed before answering ({}); the write may or may not have been applied", e.message),
                    )
                } else {
                    Error::new(
                        Code::Unavailable,
                        format!("the replica failed before answering ({}); nothing was changed", e.message),
                    )
                };
                Action::Call(p.reject, lost.into())
            })
            .collect();
        actions.extend(self.finish_close_if_idle());
        actions
    }

    /// Completes `close()` once nothing is in flight.
    fn finish_close_if_idle(&mut self) -> Vec<Action> {
        let idle = self.pending.is_empty() && self.waiting.is_empty() && self.committing.is_none();
        if self.closing.is_empty() || !(idle || self.failed.is_some()) {
            return Vec::new();
        }
        self.closed = true;
        self.transport.close();
        if let Some(t) = &mut self.timer {
            t.clear();
        }
        if let Some(t) = &mut self.maintenance {
            t.clear();
        }
        let resolvers: Vec<Function> = self.closing.drain(..).collect();
        let Some(backend) = self.persistence.as_ref().map(|p| p.backend.clone()) else {
            return resolvers
                .into_iter()
                .map(|resolve| Action::Call(resolve, JsValue::UNDEFINED))
                .collect();
        };
        // close() resolves only once the backend is closed (IndexedDB: its lock free),
        // so opening the same store right after works.
        wasm_bindgen_futures::spawn_local(async move {
            backend.close().await;
            for resolve in resolvers {
                let _ = resolve.call1(&JsValue::UNDEFINED, &JsValue::UNDEFINED);
            }
        });
        Vec::new()
    }
}

fn with(weak: &Weak<RefCell<Host>>, f: fn(&Shared)) {
    if let Some(shared) = weak.upgrade() {
        f(&shared);
    }
}

fn run(shared: &Shared, actions: Vec<Action>) {
    if actions.is_empty() {
        return;
    }
    let transport = shared.borrow().transport.clone();
    for a in actions {
        match a {
            Action::Call(f, v) => {
                let _ = f.call1(&JsValue::UNDEFINED, &v);
            }
            Action::Send(Output::Send { to, message }) => transport.send(to, message),
            Action::Send(Output::Reply { .. }) => {}
        }
    }
}

/// A stored value as JS: its bytes when `raw`, else decoded from the value encoding.
pub fn js_value(raw: bool, bytes: &[u8]) -> Result<JsValue, Error> {
    if raw {
        return Ok(js_sys::Uint8Array::from(bytes).into());
    }
    Ok(value::decode(bytes)?)
}

/// Converts a node reply into the JS result for `kind`.
pub fn settle(kind: Kind, reply: ClientReply) -> Result<JsValue, Error> {
    match (kind, reply) {
        (_, ClientReply::Error(e)) => Err(e.into()),
        (Kind::Get { raw }, ClientReply::Value(Some(bytes))) => js_value(raw, &bytes),
        (Kind::Get { .. }, ClientReply::Value(None)) | (Kind::Write, ClientReply::Done) => {
            Ok(JsValue::UNDEFINED)
        }
        (Kind::Get { raw }, ClientReply::Siblings { values, .. }) => {
            let live: Vec<&Vec<u8>> = values.iter().flatten().collect();
            match live.as_slice() {
                [] => Ok(JsValue::UNDEFINED),
                [one] => js_value(raw, one),
                many => Err(Error::new(
                    Code::Unsupported,
                    format!(
                        "the key has {} concurrent values; read them with getSiblings()",
                        many.len()
                    ),
                )),
            }
        }
        (Kind::Siblings { raw }, ClientReply::Siblings { values, context }) => {
            let out = js_sys::Array::new();
            for v in &values {
                // A tombstone sibling (a concurrent delete) reads as undefined.
                out.push(&match v {
                    Some(bytes) => js_value(raw, bytes)?,
                    None => JsValue::UNDEFINED,
                });
            }
            let obj = js_sys::Object::new();
            let _ = js_sys::Reflect::set(&obj, &"values".into(), &out);
            let ctx = js_sys::Uint8Array::from(context.as_slice());
            let _ = js_sys::Reflect::set(&obj, &"context".into(), &ctx);
            Ok(obj.into())
        }
        (Kind::Update { raw, answer }, reply @ ClientReply::Updated { .. }) => {
            updates::settle_update(raw, answer, reply)
        }
        (Kind::Counter { bigint }, ClientReply::Value(value)) => {
            updates::settle_counter(bigint, value)
        }
        (Kind::Keys { raw, pattern }, ClientReply::Keys { keys, cursor }) => {
            Ok(updates::scan_page(raw, pattern.as_deref(), keys, cursor))
        }
        (_, other) => Err(Error::new(
            Code::Unsupported,
            format!("unexpected reply from the node: {other:?}"),
        )),
    }
}

/// `{ version, pending, members: [{ id, state }] }` for membership listeners.
fn membership_event(node: &Node, view: &MembershipView) -> JsValue {
    let history = node.layout_history();
    let members = js_sys::Array::new();
    for (id, state) in &view.members {
        let m = js_sys::Object::new();
        let _ = js_sys::Reflect::set(&m, &"id".into(), &(id.0 as f64).into());
        let _ = js_sys::Reflect::set(&m, &"state".into(), &member_state(*state).into());
        members.push(&m);
    }
    let event = js_sys::Object::new();
    let version = history.committed().version() as f64;
    let _ = js_sys::Reflect::set(&event, &"version".into(), &version.into());
    let pending = history.pending().map(|p| p.version() as f64);
    let pending = pending.map_or(JsValue::NULL, JsValue::from);
    let _ = js_sys::Reflect::set(&event, &"pendingVersion".into(), &pending);
    let _ = js_sys::Reflect::set(&event, &"members".into(), &members);
    event.into()
}

pub fn member_state(state: MemberState) -> &'static str {
    match state {
        MemberState::Alive => "alive",
        MemberState::Suspect => "suspect",
        MemberState::Dead => "dead",
    }
}

/// A peer frame from node `from` (the transport has authenticated the sender).
pub fn deliver(shared: &Shared, from: NodeId, message: PeerMessage) {
    {
        // Re-entered from JS while the host is borrowed: dropped like a lost message.
        let Ok(mut h) = shared.try_borrow_mut() else {
            return;
        };
        if h.failed.is_some() || h.closed {
            h.stats.receives_dropped += 1;
            return;
        }
        h.node.handle(now_ms(), Input::Peer { from, message });
        h.collect_outputs();
    }
    schedule_turn_end(shared);
}

/// Hands `request` to the node; the promise settles when its reply is released.
pub fn submit(shared: &Shared, request: ClientRequest, kind: Kind) -> Promise {
    let mut slots = None;
    let promise = Promise::new(&mut |resolve, reject| slots = Some((resolve, reject)));
    let Some((resolve, reject)) = slots else {
        return Promise::reject(&Error::new(Code::Storage, "Promise executor not run").into());
    };
    let accepted = {
        let mut h = shared.borrow_mut();
        match h.usable() {
            Err(e) => Err(e),
            Ok(()) if h.pending.len() >= PENDING_MAX => Err(Error::new(
                Code::Overloaded,
                format!("{PENDING_MAX} requests already pending on this replica; retry later"),
            )),
            Ok(()) => {
                let id = h.next_request;
                h.next_request += 1;
                h.pending.insert(
                    id,
                    Pending {
                        resolve,
                        reject: reject.clone(),
                        kind,
                    },
                );
                h.node.handle(
                    now_ms(),
                    Input::Client {
                        id: RequestId(id),
                        request,
                    },
                );
                h.collect_outputs();
                Ok(())
            }
        }
    };
    match accepted {
        Ok(()) => schedule_turn_end(shared),
        Err(e) => {
            let _ = reject.call1(&JsValue::UNDEFINED, &e.into());
        }
    }
    promise
}

fn schedule_turn_end(shared: &Shared) {
    let mut h = shared.borrow_mut();
    if h.turn_scheduled {
        return;
    }
    h.turn_scheduled = true;
    // A one-shot closure: freed when the microtask runs, and harmless if the host is
    // gone by then (the Weak is dead).
    let w = h.weak.clone();
    let cb = Closure::once_into_js(move || with(&w, end_turn));
    queue_microtask(cb.unchecked_ref());
}

fn end_turn(shared: &Shared) {
    shared.borrow_mut().turn_scheduled = false;
    advance(shared);
}

/// Starts a commit of everything changed, or releases outputs that depend on nothing
/// uncommitted. Called at the end of every turn and after every commit.
fn advance(shared: &Shared) {
    let actions = {
        let mut h = shared.borrow_mut();
        if h.failed.is_some() || h.committing.is_some() {
            return;
        }
        let changes: Option<(crate::image::Changes, Backend)> = h
            .persistence
            .as_ref()
            .filter(|p| p.store.has_changes())
            .map(|p| (p.store.take_changes(), p.backend.clone()));
        let mut actions = Vec::new();
        // Maintenance can only be due after something was written.
        let wrote = changes.is_some() || (h.persistence.is_none() && !h.waiting.is_empty());
        match changes {
            Some((changes, backend)) => {
                start_commit(&mut h, shared, changes, backend);
            }
            None => {
                let out = h.take_waiting();
                actions = h.release(out);
                let view = h.membership_view();
                actions.extend(h.membership_events(view));
                actions.extend(h.finish_close_if_idle());
            }
        }
        (actions, wrote)
    };
    let (actions, wrote) = actions;
    run(shared, actions);
    arm_timer(shared);
    if wrote {
        schedule_maintenance(shared);
    }
}

fn commit_done(shared: &Shared, result: Result<(), Error>) {
    let actions = {
        let mut h = shared.borrow_mut();
        match result {
            Ok(()) => {
                let out = h.committing.take().unwrap_or_default();
                let mut actions = h.release(out);
                if let Some(view) = h.committing_view.take() {
                    actions.extend(h.membership_events(view));
                }
                actions.extend(h.finish_close_if_idle());
                actions
            }
            Err(e) => h.fail(e),
        }
    };
    run(shared, actions);
    advance(shared);
}

fn on_timer(shared: &Shared) {
    {
        let mut h = shared.borrow_mut();
        if let Some(t) = &mut h.timer {
            t.fired();
        }
        if h.failed.is_some() || h.closed {
            return;
        }
        h.node.handle(now_ms(), Input::Tick);
        h.collect_outputs();
    }
    advance(shared);
}

fn arm_timer(shared: &Shared) {
    let mut h = shared.borrow_mut();
    if h.failed.is_some() || h.closed {
        return;
    }
    let deadline = h.node.poll_timeout();
    // Node: while a request waits, its deadline keeps the process alive.
    let keep_alive = !h.pending.is_empty();
    if let (Some(deadline), Some(t)) = (deadline, &mut h.timer) {
        t.arm_with(deadline, now_ms(), keep_alive);
    }
}

/// Compaction runs in bounded `maintain` steps, each its own macrotask, so the main
/// thread is never blocked by more than one step (and events interleave with them).
fn schedule_maintenance(shared: &Shared) {
    let mut h = shared.borrow_mut();
    if h.failed.is_some() || h.closed {
        return;
    }
    let now = now_ms();
    if let Some(t) = &mut h.maintenance {
        if t.deadline.is_none() {
            t.arm(now, now);
        }
    }
}

fn on_maintenance(shared: &Shared) {
    let (more, error) = {
        let mut h = shared.borrow_mut();
        if let Some(t) = &mut h.maintenance {
            t.fired();
        }
        if h.failed.is_some() || h.closed {
            return;
        }
        h.stats.maintenance_steps += 1;
        match h.engine.maintain(h.maintenance_budget_bytes) {
            Ok(more) => (more, None),
            Err(e) => (false, Some(Error::from(e))),
        }
    };
    if let Some(e) = error {
        let actions = shared.borrow_mut().fail(e);
        run(shared, actions);
        return;
    }
    // Commit what the step wrote (the next turn's commit would too; this keeps the
    // backend close behind the image).
    let has_changes = {
        let h = shared.borrow();
        h.persistence
            .as_ref()
            .is_some_and(|p| p.store.has_changes())
    };
    if has_changes {
        let committing = shared.borrow().committing.is_some();
        if !committing {
            advance_without_maintenance(shared);
        }
    }
    if more {
        schedule_maintenance(shared);
    }
}

/// `advance` minus rescheduling maintenance (a finished step must not re-arm itself).
fn advance_without_maintenance(shared: &Shared) {
    {
        let mut h = shared.borrow_mut();
        let Some((changes, backend)) = h
            .persistence
            .as_ref()
            .map(|p| (p.store.take_changes(), p.backend.clone()))
        else {
            return;
        };
        start_commit(&mut h, shared, changes, backend);
    }
}

/// Sends `changes` to the backend; the waiting outputs ride on this commit.
fn start_commit(h: &mut Host, shared: &Shared, changes: crate::image::Changes, backend: Backend) {
    h.committing = Some(h.take_waiting());
    h.committing_view = Some(h.membership_view());
    h.stats.commits += 1;
    h.stats.commit_bytes += changes.bytes();
    let task = shared.clone();
    wasm_bindgen_futures::spawn_local(async move {
        let result = backend.commit(&changes).await;
        commit_done(&task, result);
    });
}

/// `close()`: refuses new requests, resolves once in-flight ones are answered and
/// committed.
pub fn close(shared: &Shared) -> Promise {
    let mut slots = None;
    let promise = Promise::new(&mut |resolve, _reject| slots = Some(resolve));
    let Some(resolve) = slots else {
        return Promise::resolve(&JsValue::UNDEFINED);
    };
    let actions = {
        let mut h = shared.borrow_mut();
        if h.closed {
            vec![Action::Call(resolve, JsValue::UNDEFINED)]
        } else {
            h.closing.push(resolve);
            h.finish_close_if_idle()
        }
    };
    run(shared, actions);
    promise
}
