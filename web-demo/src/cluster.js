// The cluster in the page: one NodeHandle (worker + IndexedDB database) per replica, and
// the simulated network every peer frame crosses: worker -> page -> (link up? after a
// delay : dropped) -> worker. Which node ids exist is kept in localStorage so a reload
// reopens the same databases.
//
// Cluster mode (`seeds`: a native node's ws:// URL): the replicas join that native
// cluster through the node's `/replica` relay instead, and their frames go over
// WebSocket, not through the page (the network policy does not apply). Ids 101..109,
// databases `ringkv-demo-cluster-<host_port>-<id>`, saved ids per cluster URL: the two
// modes, and two clusters, never share a database.

import { NodeHandle } from './node-handle.js';
import { Network } from './network.js';

const STORE_KEY = 'ringkv-demo:nodes';
const JOIN_TIMEOUT_MS = 60_000;
const SETTLE_MS = 30_000;
const CHANGE_RETRY_MS = 120_000;
export const FOUNDERS = [1, 2, 3, 4, 5];
export const MAX_NODE_ID = 9;
export const database = (id) => `ringkv-demo-${id}`;

// Cluster mode: the page's replicas take ids from here up (native dev clusters use
// n1..n3); the span leaves room for ids a wiped earlier visit still holds in the ring.
export const CLUSTER_FIRST_ID = 101;
export const CLUSTER_SPAN = 99;
const clusterSlug = (url) => url.replace(/^wss?:\/\//, '').replace(/[^A-Za-z0-9.-]+/g, '_');

/** Where a mode keeps its node set and databases. */
export function naming(seed) {
  if (!seed) return { storeKey: STORE_KEY, database, ids: Array.from({ length: MAX_NODE_ID }, (_, i) => i + 1) };
  const slug = clusterSlug(seed);
  return {
    storeKey: `ringkv-demo-cluster:${slug}:nodes`,
    database: (id) => `ringkv-demo-cluster-${slug}-${id}`,
    prefix: `ringkv-demo-cluster-${slug}-`,
    ids: Array.from({ length: CLUSTER_SPAN }, (_, i) => CLUSTER_FIRST_ID + i),
  };
}

// Resolves when the database is gone, or after 5 s if something still holds it open.
function deleteDatabase(name) {
  return new Promise((resolve) => {
    const req = indexedDB.deleteDatabase(name);
    req.onsuccess = req.onerror = () => resolve();
    setTimeout(resolve, 5000);
  });
}

async function until(check, timeoutMs, what = 'the leave to complete') {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export class Cluster {
  /**
   * @param {{ replicas?: number, network?: Network, seeds?: string[], token?: string }} options
   *   seeds: cluster mode, join the native cluster at these ws:// URLs
   */
  constructor({ replicas = 3, network = new Network(), seeds = null, token = null } = {}) {
    this.replicas = replicas;
    this.network = network;
    this.seeds = seeds?.length ? seeds : null;
    this.token = token || null;
    this.naming = naming(this.seeds?.[0]);
    this.nodes = new Map();
    this.listeners = { state: new Set(), snapshot: new Set(), frame: new Set() };
    this.frames = new Map(); // kind -> { delivered, dropped }
  }

  on(event, fn) {
    this.listeners[event].add(fn);
  }

  #emit(event, ...args) {
    for (const fn of this.listeners[event]) fn(...args);
  }

  get clusterMode() {
    return this.seeds !== null;
  }

  /**
   * Ids to open: the saved set, or the five founders. Cluster mode: the saved set, or
   * (a first visit) the first five ids of its range that are not ring members already
   * (`taken`: another tab's replicas, or an earlier visit's whose databases were wiped).
   */
  savedIds(taken = []) {
    const saved = this.saved();
    if (saved.length > 0) return saved;
    if (!this.clusterMode) return [...FOUNDERS];
    return this.naming.ids.filter((id) => !taken.includes(id)).slice(0, FOUNDERS.length);
  }

  /** The node set saved by an earlier visit ([] if none). */
  saved() {
    const allowed = new Set(this.naming.ids);
    try {
      const ids = JSON.parse(localStorage.getItem(this.naming.storeKey));
      if (Array.isArray(ids)) return ids.filter((n) => allowed.has(n));
    } catch {}
    return [];
  }

  #save() {
    localStorage.setItem(this.naming.storeKey, JSON.stringify([...this.nodes.keys()].sort((a, b) => a - b)));
  }

  /** Deletes this mode's demo databases and its saved node set (before any node starts). */
  async wipe() {
    localStorage.removeItem(this.naming.storeKey);
    let names = this.naming.ids.map((id) => this.naming.database(id));
    if (this.clusterMode && indexedDB.databases) {
      // 99 possible ids: delete the ones that exist.
      names = (await indexedDB.databases()).map((d) => d.name).filter((n) => n?.startsWith(this.naming.prefix));
    }
    await Promise.all(names.map((name) => deleteDatabase(name)));
  }

  // Founders open with the initial layout (a reopen keeps its durable one); later
  // nodes open as joiners and wait for a member to add them. Cluster mode: every node
  // opens with the seeds; a new one joins (open resolves once it is a member), a
  // reopened one re-attaches to the native node its ring address names.
  #handle(id) {
    const options = { nodeId: id, database: this.naming.database(id) };
    if (this.clusterMode) {
      // One zone for the page's replicas (one tab: one failure domain), so every key
      // keeps at least one replica on a native node.
      Object.assign(options, { seeds: this.seeds, zone: 'browser', joinTimeoutMs: JOIN_TIMEOUT_MS });
      if (this.token) options.token = this.token;
    } else {
      options.replicas = this.replicas;
      if (FOUNDERS.includes(id)) options.members = FOUNDERS.map((m) => ({ id: m }));
    }
    const h = new NodeHandle(id, {
      options,
      onSend: (from, to, frame, kind) => this.#route(from, to, frame, kind),
      onSnapshot: (nid) => this.#emit('snapshot', nid),
      onState: (nid, state) => this.#emit('state', nid, state),
    });
    this.nodes.set(id, h);
    return h;
  }

  /**
   * Opens the given nodes (all at once); resolves to the ids that failed. Cluster mode:
   * one at a time, each after the previous one's membership change has committed
   * (changes are serialized cluster-wide; a join racing another only retries).
   * `onOpened(id)` after each.
   */
  async startAll(ids, { onOpened } = {}) {
    if (!this.clusterMode) {
      const ok = await Promise.all(ids.map((id) => (this.nodes.get(id) ?? this.#handle(id)).start()));
      this.#save();
      return ids.filter((_, i) => !ok[i]);
    }
    const failed = [];
    // Every node shows as this page's (stopped) from the start, not as a foreign member.
    for (const id of ids) if (!this.nodes.has(id)) this.#handle(id);
    this.#save();
    for (const id of ids) {
      const h = this.nodes.get(id);
      if (!(await h.start())) {
        failed.push(id);
        continue;
      }
      onOpened?.(id);
      await this.settled(h).catch(() => {});
    }
    return failed;
  }

  /** Resolves once node `h` reports a committed layout with no change pending. */
  settled(h, timeoutMs = SETTLE_MS) {
    const st = () => h.snapshot?.status;
    return until(() => !h.running || (st() && st().role === 'member' && st().pendingVersion == null), timeoutMs,
      `node ${h.id}'s membership change to commit`);
  }

  kill(id) {
    this.nodes.get(id)?.kill();
  }

  /** Restart after a kill: a new worker reopening the same database. */
  restart(id) {
    const h = this.nodes.get(id);
    return h ? h.start() : Promise.resolve(false);
  }

  /**
   * Adds node `id`: starts it as a joiner and asks a running member to add it. Cluster
   * mode: it joins through the seeds itself.
   */
  async add(id, via = this.anyRunning(id)) {
    if (this.nodes.has(id)) throw new Error(`node ${id} exists`);
    if (!via && !this.clusterMode) throw new Error('no running member to join through');
    const h = this.#handle(id);
    this.#save();
    if (!(await h.start())) throw new Error(`node ${id} did not open: ${h.error?.message}`);
    if (!this.clusterMode) await via.call('join', [{ id }], { timeoutMs: 60_000 });
    else await this.settled(h);
  }

  /**
   * Removes node `id`: a running node leaves (its ranges stream to their new owners
   * first); a stopped one is removed by a member. Then its worker and database go.
   */
  async remove(id) {
    const h = this.nodes.get(id);
    if (!h) return;
    if (h.running) {
      await this.#change(() => h.call('leave', [], { timeoutMs: 60_000 }));
      // The change is chosen; the node serves until its ranges have moved and the new
      // layout is committed (its role is then 'left').
      await until(() => h.snapshot?.status?.role === 'left' || !h.running, 120_000);
    } else {
      const via = this.anyRunning(id);
      if (!via) throw new Error('no running member to remove it through');
      await this.#change(() => via.call('remove', [id], { timeoutMs: 60_000 }));
    }
    h.kill();
    this.nodes.delete(id);
    this.#save();
    await deleteDatabase(this.naming.database(id));
    this.#emit('state', id, 'removed');
  }

  /**
   * Cluster mode: every node of this page leaves the ring (stopped ones are removed
   * through a running one first; the last running one leaves itself); their databases
   * go. `onStep(id)` after each.
   */
  async leaveAll({ onStep } = {}) {
    const order = [...this.nodes.values()].sort((a, b) => Number(a.running) - Number(b.running) || a.id - b.id).map((h) => h.id);
    for (const id of order) {
      await this.remove(id);
      onStep?.(id);
    }
    localStorage.removeItem(this.naming.storeKey);
  }

  /** Cluster mode: drops ring member `id` that is not this page's (gone for good). */
  async removeMember(id) {
    const via = this.anyRunning(id);
    if (!via) throw new Error('no running member to remove it through');
    await this.#change(() => via.call('remove', [id], { timeoutMs: 60_000 }));
  }

  // Cluster mode: a membership change refused with UNAVAILABLE while the previous one
  // still moves data (a leaver is 'left' before every member has synced) is retried.
  async #change(fn) {
    const deadline = performance.now() + CHANGE_RETRY_MS;
    for (;;) {
      try {
        return await fn();
      } catch (e) {
        if (!this.clusterMode || e.code !== 'UNAVAILABLE' || performance.now() > deadline) throw e;
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  /** A running node other than `except`, preferring members of the layout. */
  anyRunning(except) {
    const running = [...this.nodes.values()].filter((h) => h.running && h.id !== except);
    return running.find((h) => h.snapshot?.status?.role === 'member') ?? running[0] ?? null;
  }

  call(id, method, args, opts) {
    const h = this.nodes.get(id);
    if (!h) return Promise.reject(Object.assign(new Error(`no node ${id}`), { code: 'DOWN' }));
    return h.call(method, args, opts);
  }

  #count(kind, fate) {
    if (!this.frames.has(kind)) this.frames.set(kind, { delivered: 0, dropped: 0 });
    this.frames.get(kind)[fate]++;
  }

  #route(from, to, frame, kind) {
    if (this.clusterMode) return; // frames go over the relay; a worker never posts one
    const target = this.nodes.get(to);
    const fate = this.network.route(from, to);
    if (!target || !target.running || !fate.deliver) {
      const reason = fate.reason ?? (target ? target.state : 'unknown node');
      this.#count(kind, 'dropped');
      this.#emit('frame', { from, to, kind, dropped: reason });
      return;
    }
    const deliver = () => {
      // The link or the target may have gone down while the frame was in flight.
      const down = this.network.linkDown(from, to);
      const ok = !down && target === this.nodes.get(to) && target.deliver(from, frame);
      this.#count(kind, ok ? 'delivered' : 'dropped');
      this.#emit('frame', { from, to, kind, dropped: ok ? null : (down ?? target.state) });
    };
    if (fate.delayMs >= 1) setTimeout(deliver, fate.delayMs);
    else deliver();
  }
}
