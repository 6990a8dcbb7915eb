// The journal format behind FileBlockStore and OpfsBlockStore (wasm/js/journal.js):
// a torn tail is dropped, damage before the last record is refused, including damage
// to a record's length (which would otherwise look like a torn tail).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HEADER_BYTES, encodeRecord, replay, snapshotRecord } from '../journal.js';

const record = (n) =>
  encodeRecord(0, [], [{ name: `f${n}`, size: 4, chunks: [{ offset: 0, bytes: Uint8Array.of(n, n, n, n) }] }]);
const concat = (...parts) => {
  const out = new Uint8Array(parts.reduce((n, b) => n + b.length, 0));
  let at = 0;
  for (const b of parts) { out.set(b, at); at += b.length; }
  return out;
};
const journal = concat(record(1), record(2), record(3));
const first = record(1).length;

test('a clean journal replays every record', () => {
  const { files, validBytes } = replay(journal, 'j');
  assert.equal(validBytes, journal.length);
  assert.deepEqual([...files.keys()], ['f1', 'f2', 'f3']);
});

test('torn tails are dropped: a cut record, zeros, garbage, a bad last checksum', () => {
  const cut = journal.subarray(0, journal.length - 3);
  assert.equal(replay(cut, 'j').validBytes, 2 * first);
  assert.equal(replay(concat(journal, new Uint8Array(4096)), 'j').validBytes, journal.length);
  assert.equal(replay(concat(journal, Uint8Array.of(200, 0, 0, 0, 1, 2, 3)), 'j').validBytes, journal.length);
  const flipped = journal.slice();
  flipped[journal.length - 1] ^= 1;
  assert.equal(replay(flipped, 'j').validBytes, 2 * first);
});

test('damage before the last record is refused, wherever it is', () => {
  for (const offset of [0, 3, 4, 8, HEADER_BYTES, HEADER_BYTES + 5, first, first + 2, first + HEADER_BYTES + 1]) {
    const damaged = journal.slice();
    damaged[offset] ^= 0x10;
    assert.throws(() => replay(damaged, 'j'), /damaged record/, `flip at ${offset}`);
  }
});

test('a snapshot record replaces everything before it', () => {
  const snap = snapshotRecord(new Map([['only', Uint8Array.of(9)]]));
  const { files } = replay(concat(journal, snap, record(4)), 'j');
  assert.deepEqual([...files.keys()], ['only', 'f4']);
});
