// The journal behind the file-backed block stores (FileBlockStore in Node, OpfsBlockStore
// in browser workers): platform-neutral encoding, replay and compaction policy over
// Uint8Array. The stores only do IO.
//
// Each commit appends one record and syncs it, so a commit is atomic. On load, the
// first record that does not check (bad header checksum, extent past the end, bad
// payload checksum) ends the journal: if no complete, valid record follows anywhere
// after it, it is the torn tail of a crashed append and is dropped; if one does, the
// journal is damaged in the middle and the load fails (never silent loss of what
// follows). When the journal grows past 4x the live data (+1 MiB) the store rewrites it
// as one snapshot record.
//
//   record  := u32 LE payload length | u32 LE crc32(payload)
//              | u32 LE crc32(the 8 bytes before) | payload
//   payload := u8 kind (0 delta, 1 snapshot: clear first) | u32 n | (u32 len, utf8 name)*
//              (removed) | u32 n | (u32 len, name, f64 size, u32 chunks,
//              (f64 offset, u32 len, bytes)*)* (files)

export const HEADER_BYTES = 12;
/** The smallest payload: a kind byte and two empty counts. */
const PAYLOAD_BYTES_MIN = 9;
/** A record longer than this is corruption (a commit is bounded far below it). */
export const RECORD_BYTES_MAX = 1 << 30;

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(bytes) {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });

/** One record: `kind` 0 (delta) or 1 (snapshot), names removed, files changed. */
export function encodeRecord(kind, removed, files) {
  const parts = [];
  let len = 0;
  const push = (b) => { parts.push(b); len += b.length; };
  const u32 = (n) => { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, n, true); push(b); };
  const f64 = (n) => { const b = new Uint8Array(8); new DataView(b.buffer).setFloat64(0, n, true); push(b); };
  const bytes = (b) => { u32(b.length); push(b); };
  push(Uint8Array.of(kind));
  u32(removed.length);
  for (const name of removed) bytes(enc.encode(name));
  u32(files.length);
  for (const f of files) {
    bytes(enc.encode(f.name));
    f64(f.size);
    u32(f.chunks.length);
    for (const c of f.chunks) { f64(c.offset); bytes(c.bytes); }
  }
  const out = new Uint8Array(HEADER_BYTES + len);
  let at = HEADER_BYTES;
  for (const p of parts) { out.set(p, at); at += p.length; }
  const view = new DataView(out.buffer);
  view.setUint32(0, len, true);
  view.setUint32(4, crc32(out.subarray(HEADER_BYTES)), true);
  view.setUint32(8, crc32(out.subarray(0, 8)), true);
  return out;
}

/** A snapshot record of `files` (every file whole). */
export function snapshotRecord(files) {
  const all = [...files].map(([name, bytes]) => ({
    name, size: bytes.length, chunks: bytes.length ? [{ offset: 0, bytes }] : [],
  }));
  return encodeRecord(1, [], all);
}

class Reader {
  constructor(buf) { this.buf = buf; this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength); this.pos = 0; }
  need(n) { if (this.pos + n > this.buf.length) throw new Error('record ends early'); }
  u8() { this.need(1); return this.buf[this.pos++]; }
  u32() { this.need(4); const v = this.view.getUint32(this.pos, true); this.pos += 4; return v; }
  f64() { this.need(8); const v = this.view.getFloat64(this.pos, true); this.pos += 8; return v; }
  bytes() { const n = this.u32(); this.need(n); const b = this.buf.subarray(this.pos, this.pos + n); this.pos += n; return b; }
}

/** Applies one record's payload to `files` (name → bytes). */
export function applyRecord(files, payload) {
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

/**
 * Whether a complete, valid record starts at `pos`: header checksum, a sane length
 * within `buf`, and payload checksum.
 */
function recordAt(buf, view, pos) {
  if (pos + HEADER_BYTES > buf.length) return null;
  if (crc32(buf.subarray(pos, pos + 8)) !== view.getUint32(pos + 8, true)) return null;
  const len = view.getUint32(pos, true);
  const end = pos + HEADER_BYTES + len;
  if (len < PAYLOAD_BYTES_MIN || len > RECORD_BYTES_MAX || end > buf.length) return null;
  const payload = buf.subarray(pos + HEADER_BYTES, end);
  if (crc32(payload) !== view.getUint32(pos + 4, true)) return null;
  return { payload, end };
}

/** The offset of the first complete, valid record after `from`, or -1. */
function validRecordAfter(buf, view, from) {
  for (let pos = from + 1; pos + HEADER_BYTES <= buf.length; pos++) {
    if (recordAt(buf, view, pos)) return pos;
  }
  return -1;
}

/**
 * Replays a whole journal. Returns the files and `validBytes`, the length of the good
 * prefix (shorter than `buf` when the tail is torn: cut the journal there). Throws when
 * the journal is damaged before its last record.
 */
export function replay(buf, what) {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const files = new Map();
  let pos = 0;
  while (pos < buf.length) {
    const record = recordAt(buf, view, pos);
    if (!record) {
      const later = validRecordAfter(buf, view, pos);
      if (later >= 0) {
        throw new Error(`journal ${what}: damaged record at offset ${pos} (a valid one follows at ${later})`);
      }
      break; // the torn tail of a crashed append
    }
    try {
      applyRecord(files, record.payload);
    } catch (e) {
      throw new Error(`journal ${what}: record at offset ${pos}: ${e.message}`);
    }
    pos = record.end;
  }
  return { files, validBytes: pos };
}

export const liveBytes = (files) => [...files.values()].reduce((n, b) => n + b.length, 0);

/** Whether a journal of `journalBytes` holding `live` bytes should be rewritten. */
export const shouldCompact = (journalBytes, live) => journalBytes > 4 * live + (1 << 20);

/** A copy of `files` for the caller (the store keeps its own mirror). */
export const copyFiles = (files) => new Map([...files].map(([k, v]) => [k, v.slice()]));
