// FileBlockStore: a block store for Node.js backed by one journal file in a directory.
//
// Each commit appends one record and fdatasyncs it, so a commit is atomic: a record torn
// by a crash fails its length or checksum and is dropped on load (with everything after
// it, of which there is nothing: records are only appended). When the journal grows past
// 4x the live data (+1 MiB) it is rewritten as one snapshot record (temp file, fsync,
// rename, fsync of the directory).
//
//   record  := u32 LE payload length | u32 LE crc32(payload) | payload
//   payload := u8 kind (0 delta, 1 snapshot: clear first) | u32 n | (u32 len, utf8 name)*
//              (removed) | u32 n | (u32 len, name, f64 size, u32 chunks,
//              (f64 offset, u32 len, bytes)*)* (files)

import { open, mkdir, rename, readFile } from 'node:fs/promises';
import { join } from 'node:path';

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(bytes) {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });

function encodeRecord(kind, removed, files) {
  const parts = [];
  let len = 1;
  const u32 = (n) => { const b = Buffer.alloc(4); b.writeUInt32LE(n); parts.push(b); len += 4; };
  const f64 = (n) => { const b = Buffer.alloc(8); b.writeDoubleLE(n); parts.push(b); len += 8; };
  const bytes = (b) => { u32(b.length); parts.push(b); len += b.length; };
  parts.push(Buffer.from([kind]));
  u32(removed.length);
  for (const name of removed) bytes(enc.encode(name));
  u32(files.length);
  for (const f of files) {
    bytes(enc.encode(f.name));
    f64(f.size);
    u32(f.chunks.length);
    for (const c of f.chunks) { f64(c.offset); bytes(c.bytes); }
  }
  const payload = Buffer.concat(parts, len);
  const head = Buffer.alloc(8);
  head.writeUInt32LE(payload.length, 0);
  head.writeUInt32LE(crc32(payload), 4);
  return Buffer.concat([head, payload]);
}

class Reader {
  constructor(buf) { this.buf = buf; this.pos = 0; }
  need(n) { if (this.pos + n > this.buf.length) throw new Error('record ends early'); }
  u8() { this.need(1); return this.buf[this.pos++]; }
  u32() { this.need(4); const v = this.buf.readUInt32LE(this.pos); this.pos += 4; return v; }
  f64() { this.need(8); const v = this.buf.readDoubleLE(this.pos); this.pos += 8; return v; }
  bytes() { const n = this.u32(); this.need(n); const b = this.buf.subarray(this.pos, this.pos + n); this.pos += n; return b; }
}

function applyRecord(files, payload) {
  const r = new Reader(payload);
  const kind = r.u8();
  if (kind > 1) throw new Error(`unknown record kind ${kind}`);
  if (kind === 1) files.clear();
  for (let n = r.u32(); n > 0; n--) files.delete(dec.decode(r.bytes()));
  for (let n = r.u32(); n > 0; n--) {
    const name = dec.decode(r.bytes());
    const size = r.f64();
    if (!Number.isSafeInteger(size) || size < 0) throw new Error(`bad size for ${name}`);
    const old = files.get(name) ?? new Uint8Array(0);
    const next = new Uint8Array(size);
    next.set(old.subarray(0, Math.min(old.length, size)));
    for (let c = r.u32(); c > 0; c--) {
      const offset = r.f64();
      const bytes = r.bytes();
      if (!Number.isSafeInteger(offset) || offset < 0 || offset + bytes.length > size) {
        throw new Error(`chunk of ${name} at ${offset} outside its ${size} bytes`);
      }
      next.set(bytes, offset);
    }
    files.set(name, next);
  }
  if (r.pos !== payload.length) throw new Error('bytes after the record');
}

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
    const files = new Map();
    let pos = 0;
    while (pos + 8 <= buf.length) {
      const len = buf.readUInt32LE(pos);
      const end = pos + 8 + len;
      if (end > buf.length) break; // torn tail: its extent runs past the file
      const payload = buf.subarray(pos + 8, end);
      if (crc32(payload) !== buf.readUInt32LE(pos + 4)) {
        if (end === buf.length) break; // the last record, torn inside its extent
        throw new Error(`journal ${this.path}: bad checksum at offset ${pos}`);
      }
      try {
        applyRecord(files, payload);
      } catch (e) {
        throw new Error(`journal ${this.path}: record at offset ${pos}: ${e.message}`);
      }
      pos = end;
    }
    this.handle = await open(this.path, buf.length === 0 ? 'w+' : 'r+');
    // Cut a torn tail so new records follow the last good one.
    if (pos !== buf.length) {
      await this.handle.truncate(pos);
      await this.handle.datasync();
    }
    this.journalBytes = pos;
    this.files = files;
    this.liveBytes = [...files.values()].reduce((n, b) => n + b.length, 0);
    return new Map([...files].map(([k, v]) => [k, v.slice()]));
  }

  async commit(changes) {
    if (!this.handle) throw new Error('FileBlockStore: load() first');
    const record = encodeRecord(0, changes.removed, changes.files);
    // Applied to the mirror first; if the write below fails the replica fails and must
    // be reopened, which reloads from the file.
    applyRecord(this.files, record.subarray(8));
    this.liveBytes = [...this.files.values()].reduce((n, b) => n + b.length, 0);
    if (this.journalBytes > 4 * this.liveBytes + (1 << 20)) {
      await this.#rewrite();
      return;
    }
    await this.handle.write(record, 0, record.length, this.journalBytes);
    await this.handle.datasync();
    this.journalBytes += record.length;
  }

  async #rewrite() {
    const snapshot = [...this.files].map(([name, bytes]) => ({
      name, size: bytes.length, chunks: bytes.length ? [{ offset: 0, bytes }] : [],
    }));
    const record = encodeRecord(1, [], snapshot);
    const tmp = `${this.path}.tmp`;
    const h = await open(tmp, 'w');
    await h.write(record, 0, record.length, 0);
    await h.datasync();
    await h.close();
    await rename(tmp, this.path);
    const dir = await open(this.dir, 'r');
    await dir.sync();
    await dir.close();
    await this.handle.close();
    this.handle = await open(this.path, 'r+');
    this.journalBytes = record.length;
  }

  async close() {
    const h = this.handle;
    this.handle = null;
    if (h) await h.close();
  }
}
