// The cluster in the page: one NodeHandle (worker + IndexedDB database) per replica, and
// the simulated network every peer frame crosses: worker -> page -> (link up? after a
// delay : dropped) -> worker. Which node ids exist is kept in localStorage so a reload
// reopens the same databases.

import { NodeHandle } from './node-handle.js';
import { Network } from './network.js';

const STORE_KEY = 'ringkv-demo:nodes';
export const FOUNDERS = [1, 2, 3, 4, 5];
export const MAX_NODE_ID = 9;
export const database = (id) => `ringkv-demo-${id}`;

// Resolves when the database is gone, or after 5 s if something still holds it open.
function deleteDatabase(name) {
  return new Promise((resolve) => {
    const req = indexedDB.deleteDatabase(name);
    req.onsuccess = req.onerror = () => resolve();
    setTimeout(resolve, 5000);
  });
}

async function until(check, timeoutMs) {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) throw new Error('timed out waiting for the leave to complete');
    await new Promise((r) => setTimeout(r, 200));
  }
}

export class Cluster {
  constructor({ replicas = 3, network = new Network() } = {}) {
    this.replicas = replicas;
    this.network = network;
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

  /** Ids to open: the saved set, or the five founders. */
  static savedIds() {
    try {
      const ids = JSON.parse(localStorage.getItem(STORE_KEY));
      if (Array.isArray(ids) && ids.length > 0) return ids.filter((n) => Number.isInteger(n) && n >= 1 && n <= MAX_NODE_ID);
    } catch {}
    return [...FOUNDERS];
  }

  #save() {
    localStorage.setItem(STORE_KEY, JSON.stringify([...this.nodes.keys()].sort((a, b) => a - b)));
  }

  /** Deletes every demo database and the saved node set (before any node starts). */
  static async wipe() {
    localStorage.removeItem(STORE_KEY);
    const ids = Array.from({ length: MAX_NODE_ID }, (_, i) => i + 1);
    await Promise.all(ids.map((id) => deleteDatabase(database(id))));
  }

  // Founders open with the initial layout (a reopen keeps its durable one); later
  // nodes open as joiners and wait for a member to add them.
  #handle(id) {
    const options = { nodeId: id, database: database(id), replicas: this.replicas };
    if (FOUNDERS.includes(id)) options.members = FOUNDERS.map((m) => ({ id: m }));
    const h = new NodeHandle(id, {
      options,
      onSend: (from, to, frame, kind) => this.#route(from, to, frame, kind),
      onSnapshot: (nid) => this.#emit('snapshot', nid),
      onState: (nid, state) => this.#emit('state', nid, state),
    });
    this.nodes.set(id, h);
    return h;
  }

  /** Opens the given nodes (all at once); resolves to the ids that failed. */
  async startAll(ids) {
    const ok = await Promise.all(ids.map((id) => (this.nodes.get(id) ?? this.#handle(id)).start()));
    this.#save();
    return ids.filter((_, i) => !ok[i]);
  }

  kill(id) {
    this.nodes.get(id)?.kill();
  }

  /** Restart after a kill: a new worker reopening the same database. */
  restart(id) {
    const h = this.nodes.get(id);
    return h ? h.start() : Promise.resolve(false);
  }

  /** Adds node `id`: starts it as a joiner and asks a running member to add it. */
  async add(id, via = this.anyRunning(id)) {
    if (this.nodes.has(id)) throw new Error(`node ${id} exists`);
    if (!via) throw new Error('no running member to join through');
    const h = this.#handle(id);
    this.#save();
    if (!(await h.start())) throw new Error(`node ${id} did not open: ${h.error?.message}`);
    await via.call('join', [{ id }], { timeoutMs: 60_000 });
  }

  /**
   * Removes node `id`: a running node leaves (its ranges stream to their new owners
   * first); a stopped one is removed by a member. Then its worker and database go.
   */
  async remove(id) {
    const h = this.nodes.get(id);
    if (!h) return;
    if (h.running) {
      await h.call('leave', [], { timeoutMs: 60_000 });
      // The change is chosen; the node serves until its ranges have moved and the new
      // layout is committed (its role is then 'left').
      await until(() => h.snapshot?.status?.role === 'left' || !h.running, 120_000);
    } else {
      const via = this.anyRunning(id);
      if (!via) throw new Error('no running member to remove it through');
      await via.call('remove', [id], { timeoutMs: 60_000 });
    }
    h.kill();
    this.nodes.delete(id);
    this.#save();
    await deleteDatabase(database(id));
    this.#emit('state', id, 'removed');
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
