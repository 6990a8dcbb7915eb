// DurableObjectBlockStore: a block store over a Cloudflare Durable Object's transactional
// storage (the key-value API, `ctx.storage`), for a replica running inside a Durable
// Object (workerd locally, Cloudflare in production). Works on both storage backends:
// SQLite-backed objects (workerd's only one) and the legacy key-value backend.
//
// Layout (keys are strings, values structured-cloned):
//   f/<name>          the file's size in bytes (a number)
//   p/<name>#<index>  page <index> (8 hex digits) of the file: bytes
//                     [index * pageBytes, min(size, (index + 1) * pageBytes))
//
// Pages are `pageBytes` long (default 64 KiB, at most 128 KiB: the legacy backend's value
// limit; the SQLite backend allows 2 MB per key and value). A commit touches only the
// pages its chunks cover (the replica's chunks are suffix writes, so typically the file's
// last page or two), reading a page first when the commit keeps part of it.
//
// What must hold (the BlockStore contract, wasm/README.md "Custom block stores"):
// - Atomic: every write of one commit is issued in one synchronous run (no `await`
//   between the first and the last put/delete). Durable Objects coalesce the writes of
//   one such run into one atomic write ("automatic write coalescing"): after a crash the
//   storage holds all of them or none.
// - Durable when `commit` resolves: it awaits `storage.sync()`, which resolves once every
//   pending write is confirmed on disk. (Output gates would also hold back this object's
//   outgoing messages until then; the replica does not rely on that alone: it releases
//   a turn's replies and peer sends only after `commit` resolves.)
// - The replica never runs two commits at once, and nothing else writes these keys.

const FILE = 'f/';
const PAGE = 'p/';
/** Keys one `get`/`put`/`delete` call takes at most (the Durable Object API's limit). */
const BATCH_KEYS_MAX = 128;
/** The legacy key-value backend's value limit; pages must fit in it. */
export const DO_VALUE_BYTES_MAX = 128 * 1024;
/** Keys are `p/<name>#xxxxxxxx`; both backends take keys of up to 2 KiB. */
export const DO_KEY_BYTES_MAX = 2048;
export const PAGE_BYTES_DEFAULT = 64 * 1024;

const pageKey = (name, index) => `${PAGE}${name}#${index.toString(16).padStart(8, '0')}`;
const pagesOf = (size, pageBytes) => Math.ceil(size / pageBytes);
const enc = new TextEncoder();

export class DurableObjectStorageError extends Error {
  constructor(message, options) {
    super(message, options);
    this.name = 'DurableObjectStorageError';
  }
}

export class DurableObjectBlockStore {
  #storage;
  #pageBytes;
  /** name → size of every stored file, as of the last commit (or load). */
  #sizes = new Map();
  #loaded = false;

  /**
   * @param {DurableObjectStorage} storage the object's `ctx.storage` (or `state.storage`)
   * @param {{ pageBytes?: number }} options page size: a multiple of 4 KiB (the
   *   replica's chunk size), at most 128 KiB
   */
  constructor(storage, { pageBytes = PAGE_BYTES_DEFAULT } = {}) {
    if (!storage || typeof storage.list !== 'function' || typeof storage.put !== 'function') {
      throw new TypeError('DurableObjectBlockStore needs a Durable Object storage (ctx.storage)');
    }
    if (!Number.isSafeInteger(pageBytes) || pageBytes <= 0 || pageBytes % 4096 !== 0 || pageBytes > DO_VALUE_BYTES_MAX) {
      throw new RangeError(`pageBytes must be a multiple of 4096 and at most ${DO_VALUE_BYTES_MAX}`);
    }
    this.#storage = storage;
    this.#pageBytes = pageBytes;
  }

  async load() {
    const sizes = await this.#storage.list({ prefix: FILE });
    const files = new Map();
    this.#sizes.clear();
    for (const [key, size] of sizes) {
      const name = key.slice(FILE.length);
      if (!Number.isSafeInteger(size) || size < 0) {
        throw new DurableObjectStorageError(`stored size of ${name} is not a byte count: ${size}`);
      }
      files.set(name, new Uint8Array(size));
      this.#sizes.set(name, size);
    }
    // Pages are listed in key order; a page past its file's size (or of a file with no
    // size) cannot come from a completed commit, which writes both in one atomic write.
    for (const [key, page] of await this.#storage.list({ prefix: PAGE })) {
      const hash = key.lastIndexOf('#');
      const name = key.slice(PAGE.length, hash);
      const index = Number.parseInt(key.slice(hash + 1), 16);
      const bytes = files.get(name);
      const at = index * this.#pageBytes;
      if (!bytes || !(page instanceof Uint8Array) || !Number.isSafeInteger(index) || at + page.length > bytes.length) {
        throw new DurableObjectStorageError(
          `page ${key} does not fit its file (${bytes ? `${bytes.length} bytes` : 'no such file'}); ` +
            'the storage was written by something else or with another pageBytes');
      }
      bytes.set(page, at);
    }
    this.#loaded = true;
    return files;
  }

  async commit({ removed, files }) {
    if (!this.#loaded) throw new DurableObjectStorageError('DurableObjectBlockStore: load() first');
    const P = this.#pageBytes;
    const sizes = new Map(this.#sizes);
    const deletes = [];
    for (const name of removed) {
      const old = sizes.get(name);
      if (old === undefined) continue;
      deletes.push(`${FILE}${name}`);
      for (let i = 0; i < pagesOf(old, P); i++) deletes.push(pageKey(name, i));
      sizes.delete(name);
    }
    // Plan each file's pages: which to write (and which of those keep stored bytes),
    // which to drop.
    const plans = [];
    const reads = new Set();
    for (const { name, size, chunks } of files) {
      if (enc.encode(pageKey(name, 0)).length > DO_KEY_BYTES_MAX) {
        throw new DurableObjectStorageError(`file name too long for a storage key: ${name.slice(0, 64)}...`);
      }
      const old = sizes.get(name) ?? 0;
      const touched = new Map(); // page index → covered byte ranges within the new size
      for (const { offset, bytes } of chunks) {
        if (offset + bytes.length > size) {
          throw new DurableObjectStorageError(`chunk of ${name} at ${offset} outside its ${size} bytes`);
        }
        for (let i = Math.floor(offset / P); i * P < offset + bytes.length; i++) touched.set(i, true);
      }
      // Shrunk into a page: that page is rewritten cut to the new size.
      if (size < old && size % P !== 0) touched.set(Math.floor(size / P), true);
      for (const i of touched.keys()) {
        if (i * P < Math.min(old, size) && !covered(chunks, i * P, Math.min(size, (i + 1) * P))) {
          reads.add(pageKey(name, i));
        }
      }
      plans.push({ name, size, old, chunks, touched });
      sizes.set(name, size);
    }
    const stored = new Map();
    const readKeys = [...reads];
    for (let i = 0; i < readKeys.length; i += BATCH_KEYS_MAX) {
      for (const [k, v] of await this.#storage.get(readKeys.slice(i, i + BATCH_KEYS_MAX))) stored.set(k, v);
    }
    const puts = [];
    for (const { name, size, old, chunks, touched } of plans) {
      for (const i of touched.keys()) {
        const start = i * P;
        const len = Math.min(P, size - start);
        if (len <= 0) continue;
        const page = new Uint8Array(len);
        const before = stored.get(pageKey(name, i));
        if (before) page.set(before.subarray(0, Math.min(before.length, len)));
        for (const { offset, bytes } of chunks) {
          const from = Math.max(offset, start);
          const to = Math.min(offset + bytes.length, start + len);
          if (from < to) page.set(bytes.subarray(from - offset, to - offset), from - start);
        }
        puts.push([pageKey(name, i), page]);
      }
      for (let i = pagesOf(size, P); i < pagesOf(old, P); i++) deletes.push(pageKey(name, i));
      puts.push([`${FILE}${name}`, size]);
    }
    // One synchronous run of writes: coalesced into one atomic write. Deletes first (a
    // file removed and written again in this commit is wiped, then written).
    const pending = [];
    for (let i = 0; i < deletes.length; i += BATCH_KEYS_MAX) {
      pending.push(this.#storage.delete(deletes.slice(i, i + BATCH_KEYS_MAX)));
    }
    for (let i = 0; i < puts.length; i += BATCH_KEYS_MAX) {
      pending.push(this.#storage.put(Object.fromEntries(puts.slice(i, i + BATCH_KEYS_MAX))));
    }
    try {
      await Promise.all(pending);
      await this.#storage.sync();
    } catch (e) {
      throw new DurableObjectStorageError(`Durable Object storage commit failed: ${e?.message ?? e}`, { cause: e });
    }
    this.#sizes = sizes;
  }

  close() {
    this.#loaded = false;
  }
}

/** Whether `chunks` cover every byte of [from, to). */
function covered(chunks, from, to) {
  const spans = chunks
    .map(({ offset, bytes }) => [Math.max(offset, from), Math.min(offset + bytes.length, to)])
    .filter(([a, b]) => a < b)
    .sort((x, y) => x[0] - y[0]);
  let at = from;
  for (const [a, b] of spans) {
    if (a > at) return false;
    at = Math.max(at, b);
  }
  return at >= to;
}
