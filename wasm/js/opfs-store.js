// OpfsBlockStore: the journal (journal.js) in the Origin Private File System, for
// dedicated workers, where FileSystemSyncAccessHandle gives synchronous reads, writes
// and flush (and an exclusive lock: a second opener fails).
//
// Layout: directory `ringkv-<name>` holding `journal-<generation>`. A commit appends one
// record and flushes. Compaction writes the live files as one snapshot record into
// `journal-<generation + 1>`, flushes it, and only then removes the old journal; so on
// load the newest generation with a complete record is the state (a newer one torn by
// a crash mid-snapshot is dropped, older ones are leftovers of a finished compaction).

import {
  HEADER_BYTES, applyRecord, copyFiles, encodeRecord, liveBytes, replay, shouldCompact, snapshotRecord,
} from './journal.js';

const PREFIX = 'journal-';

const generationOf = (name) => {
  if (!name.startsWith(PREFIX)) return null;
  const n = Number(name.slice(PREFIX.length));
  return Number.isSafeInteger(n) && n > 0 ? n : null;
};

function readAll(handle) {
  const size = handle.getSize();
  const buf = new Uint8Array(size);
  const read = handle.read(buf, { at: 0 });
  if (read !== size) throw new Error(`read ${read} of ${size} bytes`);
  return buf;
}

function writeAll(handle, bytes, at) {
  const written = handle.write(bytes, { at });
  if (written !== bytes.length) throw new Error(`wrote ${written} of ${bytes.length} bytes (quota?)`);
}

export class OpfsBlockStore {
  /** Shown as the replica's `status().storage`. */
  kind = 'opfs';

  /** @param {string} name the store's directory is `ringkv-<name>` in the origin's OPFS */
  constructor(name) {
    this.name = name;
    this.dir = null;
    this.handle = null;
    this.generation = 0;
    this.journalBytes = 0;
    this.files = new Map();
  }

  async load() {
    if (typeof FileSystemSyncAccessHandle === 'undefined' || !globalThis.navigator?.storage?.getDirectory) {
      throw new Error("storage 'opfs' needs a dedicated worker (FileSystemSyncAccessHandle); use 'indexeddb' elsewhere");
    }
    const root = await navigator.storage.getDirectory();
    this.dir = await root.getDirectoryHandle(`ringkv-${this.name}`, { create: true });
    const generations = [];
    for await (const name of this.dir.keys()) {
      const g = generationOf(name);
      if (g !== null) generations.push(g);
    }
    generations.sort((a, b) => b - a);
    let chosen = null;
    for (const g of generations) {
      if (chosen !== null) {
        await this.dir.removeEntry(PREFIX + g); // a finished compaction's predecessor
        continue;
      }
      const handle = await this.#open(g);
      let buf;
      let replayed;
      try {
        buf = readAll(handle);
        replayed = replay(buf, `${this.name}/${PREFIX}${g}`);
      } catch (e) {
        handle.close(); // release the lock: the store is damaged, not busy
        throw e;
      }
      const { files, validBytes } = replayed;
      const older = g !== generations[generations.length - 1];
      if (validBytes === 0 && buf.length > 0) {
        if (older) {
          // A snapshot torn by a crash: its predecessor still holds the state.
          handle.close();
          await this.dir.removeEntry(PREFIX + g);
          continue;
        }
        if (g > 1) {
          // A compacted generation is flushed before its predecessor goes: with none
          // left, a bad first record is damage, not a torn write.
          handle.close();
          throw new Error(`journal ${this.name}/${PREFIX}${g}: its snapshot record is damaged`);
        }
      }
      if (validBytes !== buf.length) {
        handle.truncate(validBytes); // cut a torn tail so new records follow the last good one
        handle.flush();
      }
      chosen = { g, handle, files, validBytes };
    }
    if (chosen === null) chosen = { g: 1, handle: await this.#open(1, true), files: new Map(), validBytes: 0 };
    this.generation = chosen.g;
    this.handle = chosen.handle;
    this.files = chosen.files;
    this.journalBytes = chosen.validBytes;
    return copyFiles(this.files);
  }

  async commit(changes) {
    if (!this.handle) throw new Error('OpfsBlockStore: load() first');
    const record = encodeRecord(0, changes.removed, changes.files);
    // Applied to the mirror first; if the write fails the replica fails and must be
    // reopened, which reloads from the journal.
    applyRecord(this.files, record.subarray(HEADER_BYTES));
    if (shouldCompact(this.journalBytes, liveBytes(this.files))) {
      await this.#compact();
      return;
    }
    writeAll(this.handle, record, this.journalBytes);
    this.handle.flush();
    this.journalBytes += record.length;
  }

  async #compact() {
    const next = this.generation + 1;
    const handle = await this.#open(next, true);
    const record = snapshotRecord(this.files);
    try {
      handle.truncate(0);
      writeAll(handle, record, 0);
      handle.flush();
    } catch (e) {
      // The old generation is intact; release the new file so a reopen can proceed.
      handle.close();
      await this.dir.removeEntry(PREFIX + next).catch(() => {});
      throw e;
    }
    this.handle.close();
    await this.dir.removeEntry(PREFIX + this.generation);
    this.handle = handle;
    this.generation = next;
    this.journalBytes = record.length;
  }

  // `create` only for a new generation: a listed one must not be recreated if it went.
  async #open(generation, create = false) {
    const file = await this.dir.getFileHandle(PREFIX + generation, { create });
    return file.createSyncAccessHandle();
  }

  async close() {
    const h = this.handle;
    this.handle = null;
    h?.close();
  }
}
