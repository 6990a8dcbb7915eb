// The public API over the wasm-bindgen bindings (either the web or the Node build).
// It adds nothing but error classes and argument defaults: all behaviour is in Rust.

import { toRingkvError, ClosedError } from './errors.js';

const sync = (f) => {
  try {
    return f();
  } catch (e) {
    throw toRingkvError(e);
  }
};

const settle = async (promise) => {
  try {
    return await promise;
  } catch (e) {
    throw toRingkvError(e);
  }
};

/**
 * @param {object} bindings the generated module (Replica, encodeValue, decodeValue)
 * @param {() => Promise<void>} ready loads the .wasm once
 * @param {{ opfs?: (name: string) => object }} stores block stores this build provides
 *   for `storage` names (the browser build: 'opfs')
 */
export function makeApi(bindings, ready, stores = {}) {
  // Open replicas are kept reachable until close(): a cluster member must keep answering
  // its peers even when the application holds no reference to it.
  const open = new Set();

  class Replica {
    #inner;
    #closed = false;
    #closing = null;

    constructor(inner) {
      this.#inner = inner;
    }

    /** Opens a replica; see ReplicaOptions in index.d.ts. */
    static async open(options = {}) {
      await ready();
      if (options?.storage === 'opfs' && stores.opfs) {
        // The same default names as the IndexedDB database (options.rs).
        const name = options.database ?? String(options.nodeId ?? (options.seeds?.length ? 'cluster' : 1));
        options = { ...options, storage: stores.opfs(String(name)) };
      }
      const replica = new Replica(await settle(bindings.Replica.open(options)));
      open.add(replica);
      return replica;
    }

    #live() {
      if (this.#closed) throw new ClosedError('the replica is closed');
      return this.#inner;
    }

    put(key, value, options) {
      return settle(Promise.resolve().then(() => this.#live().put(key, value, options)));
    }

    get(key, options) {
      return settle(Promise.resolve().then(() => this.#live().get(key, options)));
    }

    getSiblings(key, options) {
      return settle(Promise.resolve().then(() => this.#live().getSiblings(key, options)));
    }

    delete(key, options) {
      return settle(Promise.resolve().then(() => this.#live().delete(key, options)));
    }

    cas(key, expected, next, options) {
      return settle(Promise.resolve().then(() => this.#live().cas(key, expected, next, options)));
    }

    setIfAbsent(key, value, options) {
      return settle(Promise.resolve().then(() => this.#live().setIfAbsent(key, value, options)));
    }

    setIfPresent(key, value, options) {
      return settle(Promise.resolve().then(() => this.#live().setIfPresent(key, value, options)));
    }

    getAndSet(key, value, options) {
      return settle(Promise.resolve().then(() => this.#live().getAndSet(key, value, options)));
    }

    increment(key, by, options) {
      return settle(Promise.resolve().then(() => this.#live().increment(key, by, options)));
    }

    getCounter(key, options) {
      return settle(Promise.resolve().then(() => this.#live().getCounter(key, options)));
    }

    /** One page of a scan: `{ keys, cursor }`; pass `cursor` back for the next (0n: done). */
    scanPage(cursor, options) {
      return settle(Promise.resolve().then(() => this.#live().scanPage(cursor, options)));
    }

    /** Every key, page by page (`scanPage` until the cursor is 0n). */
    async *scan(options) {
      let cursor = 0n;
      do {
        const page = await this.scanPage(cursor, options);
        yield* page.keys;
        cursor = page.cursor;
      } while (cursor !== 0n);
    }

    status() {
      return sync(() => this.#live().status());
    }

    /** Hands the replica a frame from node `from` (replicas opened with a `transport`). */
    deliver(from, frame) {
      return sync(() => this.#live().deliver(from, frame));
    }

    join(spec) {
      return settle(Promise.resolve().then(() => this.#live().join(spec)));
    }

    leave(id) {
      return settle(Promise.resolve().then(() => this.#live().leave(id)));
    }

    remove(id, options) {
      return settle(Promise.resolve().then(() => this.#live().remove(id, options)));
    }

    abort() {
      return settle(Promise.resolve().then(() => this.#live().abort()));
    }

    ring() {
      return sync(() => this.#live().ring());
    }

    preferenceList(key) {
      return sync(() => this.#live().preferenceList(key));
    }

    on(event, listener) {
      sync(() => this.#live().on(event, listener));
      return this;
    }

    off(event, listener) {
      sync(() => this.#live().off(event, listener));
      return this;
    }

    /** Resolves once in-flight operations are answered and durable; idempotent. */
    close() {
      // One close per replica: later calls share it (and free the wasm side once).
      this.#closing ??= (async () => {
        await settle(this.#inner.close());
        this.#closed = true;
        open.delete(this);
        // Frees the wasm-side replica now rather than at garbage collection.
        this.#inner.free();
      })();
      return this.#closing;
    }
  }

  class Client {
    #inner;

    constructor(inner) {
      this.#inner = inner;
    }

    /** Connects to the first of `seeds` that welcomes the client; see ClientOptions. */
    static async connect(seeds, options = {}) {
      await ready();
      return new Client(await settle(bindings.Client.connect(seeds, options)));
    }

    /** The id of the node this client talks to (undefined while reconnecting). */
    get node() {
      return this.#inner.node;
    }

    put(key, value, options) {
      return settle(Promise.resolve().then(() => this.#inner.put(key, value, options)));
    }

    get(key, options) {
      return settle(Promise.resolve().then(() => this.#inner.get(key, options)));
    }

    getSiblings(key, options) {
      return settle(Promise.resolve().then(() => this.#inner.getSiblings(key, options)));
    }

    delete(key, options) {
      return settle(Promise.resolve().then(() => this.#inner.delete(key, options)));
    }

    cas(key, expected, next, options) {
      return settle(Promise.resolve().then(() => this.#inner.cas(key, expected, next, options)));
    }

    setIfAbsent(key, value, options) {
      return settle(Promise.resolve().then(() => this.#inner.setIfAbsent(key, value, options)));
    }

    setIfPresent(key, value, options) {
      return settle(Promise.resolve().then(() => this.#inner.setIfPresent(key, value, options)));
    }

    getAndSet(key, value, options) {
      return settle(Promise.resolve().then(() => this.#inner.getAndSet(key, value, options)));
    }

    increment(key, by, options) {
      return settle(Promise.resolve().then(() => this.#inner.increment(key, by, options)));
    }

    getCounter(key, options) {
      return settle(Promise.resolve().then(() => this.#inner.getCounter(key, options)));
    }

    /** One page of a scan: `{ keys, cursor }`; pass `cursor` back for the next (0n: done). */
    scanPage(cursor, options) {
      return settle(Promise.resolve().then(() => this.#inner.scanPage(cursor, options)));
    }

    /** Every key, page by page (`scanPage` until the cursor is 0n). */
    async *scan(options) {
      let cursor = 0n;
      do {
        const page = await this.scanPage(cursor, options);
        yield* page.keys;
        cursor = page.cursor;
      } while (cursor !== 0n);
    }

    status() {
      return settle(Promise.resolve().then(() => this.#inner.status()));
    }

    close() {
      this.#inner.close();
    }
  }

  const frameKind = (frame) => sync(() => bindings.frameKind(frame));
  const describeContext = (context) => sync(() => bindings.describeContext(context));

  const encodeValue = (value) => {
    try {
      return bindings.encodeValue(value);
    } catch (e) {
      throw toRingkvError(e);
    }
  };
  const decodeValue = (bytes) => {
    try {
      return bindings.decodeValue(bytes);
    } catch (e) {
      throw toRingkvError(e);
    }
  };
  return { Replica, Client, encodeValue, decodeValue, frameKind, describeContext };
}
