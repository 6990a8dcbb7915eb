// FileBlockStore: a block store for Node.js backed by one journal file in a directory
// (format and crash rules: journal.js). Each commit appends one record and fdatasyncs
// it; a journal past 4x the live data (+1 MiB) is rewritten as one snapshot record
// (temp file, fsync, rename, fsync of the directory).

import { open, mkdir, rename, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  HEADER_BYTES, applyRecord, copyFiles, encodeRecord, liveBytes, replay, shouldCompact, snapshotRecord,
} from './journal.js';

export class FileBlockStore {
  /** @param {string} dir directory holding the journal (created if missing) */
  constructor(dir) {
    this.dir = dir;
    this.path = join(dir, 'journal');
    this.handle = null;
    this.journalBytes = 0;
    this.liveBytes = 0;
    this.files = new Map();
  }

  async load() {
    await mkdir(this.dir, { recursive: true });
    let buf;
    try {
      buf = await readFile(this.path);
    } catch (e) {
      if (e.code !== 'ENOENT') throw e;
      buf = Buffer.alloc(0);
    }
    const { files, validBytes: pos } = replay(buf, this.path);
    const created = buf.length === 0;
    this.handle = await open(this.path, created ? 'w+' : 'r+');
    if (created) await this.#syncDir(); // the journal's directory entry must survive too
    // Cut a torn tail so new records follow the last good one.
    if (pos !== buf.length) {
      await this.handle.truncate(pos);
      await this.handle.datasync();
    }
    this.journalBytes = pos;
    this.files = files;
    this.liveBytes = liveBytes(files);
    return copyFiles(files);
  }

  async commit(changes) {
    if (!this.handle) throw new Error('FileBlockStore: load() first');
    const record = encodeRecord(0, changes.removed, changes.files);
    // Applied to the mirror first; if the write below fails the replica fails and must
    // be reopened, which reloads from the file.
    applyRecord(this.files, record.subarray(HEADER_BYTES));
    this.liveBytes = liveBytes(this.files);
    if (shouldCompact(this.journalBytes, this.liveBytes)) {
      await this.#rewrite();
      return;
    }
    await this.handle.write(record, 0, record.length, this.journalBytes);
    await this.handle.datasync();
    this.journalBytes += record.length;
  }

  async #rewrite() {
    const record = snapshotRecord(this.files);
    const tmp = `${this.path}.tmp`;
    const h = await open(tmp, 'w');
    await h.write(record, 0, record.length, 0);
    await h.datasync();
    await h.close();
    await rename(tmp, this.path);
    await this.#syncDir();
    await this.handle.close();
    this.handle = await open(this.path, 'r+');
    this.journalBytes = record.length;
  }

  async #syncDir() {
    const dir = await open(this.dir, 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }

  async close() {
    const h = this.handle;
    this.handle = null;
    if (h) await h.close();
  }
}
