// The public API over the wasm-bindgen bindings (either the web or the Node build).
// It adds nothing but error classes and argument defaults: all behaviour is in Rust.

import { toRingkvError, ClosedError } from './errors.js';

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
 */
export function makeApi(bindings, ready) {
  class Replica {
    #inner;
    #closed = false;

    constructor(inner) {
      this.#inner = inner;
    }

    /** Opens a replica; see ReplicaOptions in index.d.ts. */
    static async open(options = {}) {
      await ready();
      return new Replica(await settle(bindings.Replica.open(options)));
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

    getSiblings(key) {
      return settle(Promise.resolve().then(() => this.#live().getSiblings(key)));
    }

    delete(key, options) {
      return settle(Promise.resolve().then(() => this.#live().delete(key, options)));
    }

    status() {
      try {
        return this.#live().status();
      } catch (e) {
        throw toRingkvError(e);
      }
    }

    /** Resolves once in-flight operations are answered and durable; idempotent. */
    async close() {
      if (this.#closed) return;
      await settle(this.#inner.close());
      this.#closed = true;
      // Frees the wasm-side replica now rather than at garbage collection.
      this.#inner.free();
    }
  }

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
  return { Replica, encodeValue, decodeValue };
}
