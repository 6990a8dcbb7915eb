// The built npm package (wasm/pkg) in Node: a replica on a FileBlockStore keeps
// structured values across close and reopen, survives a torn journal tail, refuses a
// damaged journal, and raises the documented error classes.
//
// Run: ./scripts/build-npm && node --test wasm/js/test/   (scripts/test does both)

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, appendFile, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const pkg = process.env.RINGKV_PKG ?? new URL('../../pkg/node.js', import.meta.url).href;
const { Replica, FileBlockStore, RingkvError, TooLargeError, ClosedError, InvalidArgumentError,
  StorageError, encodeValue, decodeValue } = await import(pkg);

const values = () => ({
  str: 'ünïcødé ✓',
  num: -0,
  nan: NaN,
  big: -(2n ** 100n),
  bytes: new Uint8Array([0, 1, 2, 255]),
  nested: { a: [1, { b: null, c: undefined }], d: new Map([['k', new Set([1, 2])]]) },
  date: new Date(1700000000000),
  bool: false,
});

async function withDir(fn) {
  const dir = await mkdtemp(join(tmpdir(), 'ringkv-node-test-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('a file-backed replica keeps structured values across close and reopen', () =>
  withDir(async (dir) => {
    let r = await Replica.open({ storage: new FileBlockStore(dir), nodeId: 7 });
    for (const [k, v] of Object.entries(values())) await r.put(k, v);
    await Promise.all(Array.from({ length: 300 }, (_, i) => r.put(`n${i}`, { i })));
    await r.delete('bool');
    assert.equal(r.status().storage, 'custom');
    await r.close();

    r = await Replica.open({ storage: new FileBlockStore(dir), nodeId: 7 });
    const want = values();
    delete want.bool;
    for (const [k, v] of Object.entries(want)) assert.deepStrictEqual(await r.get(k), v, k);
    assert.equal(await r.get('bool'), undefined);
    assert.deepStrictEqual(await r.get('n299'), { i: 299 });
    assert.equal(r.status().incarnation, 2);
    await r.close();
  }));

test('a torn journal tail is dropped; a damaged record is refused', () =>
  withDir(async (dir) => {
    let r = await Replica.open({ storage: new FileBlockStore(dir) });
    await r.put('kept', 1);
    await r.close();
    // A crash mid-append: a record header promising more bytes than were written.
    await appendFile(join(dir, 'journal'), Buffer.from([200, 0, 0, 0, 1, 2, 3]));
    r = await Replica.open({ storage: new FileBlockStore(dir) });
    assert.equal(await r.get('kept'), 1);
    await r.put('after', 2);
    await r.close();
    r = await Replica.open({ storage: new FileBlockStore(dir) });
    assert.equal(await r.get('after'), 2);
    await r.close();

    // Flip a byte inside the first record (not the last one): that is corruption.
    const j = await readFile(join(dir, 'journal'));
    j[12] ^= 0xff;
    await writeFile(join(dir, 'journal'), j);
    await assert.rejects(Replica.open({ storage: new FileBlockStore(dir) }), (e) => {
      assert.ok(e instanceof StorageError, `got ${e}`);
      assert.equal(e.code, 'STORAGE');
      return true;
    });
  }));

test('errors are RingkvError subclasses with codes', async () => {
  const r = await Replica.open();
  await assert.rejects(r.put('k', new Uint8Array(2 << 20)), (e) => {
    assert.ok(e instanceof TooLargeError && e instanceof RingkvError);
    assert.equal(e.code, 'TOO_LARGE');
    assert.equal(typeof e.limitBytes, 'number');
    return true;
  });
  await assert.rejects(r.get(42), InvalidArgumentError);
  await assert.rejects(Replica.open({ storage: 'floppy' }), InvalidArgumentError);
  await r.close();
  await assert.rejects(r.get('k'), ClosedError);
});

test('encodeValue/decodeValue follow the documented format', () => {
  assert.deepStrictEqual([...encodeValue(null)], [1, 0x01]);
  assert.deepStrictEqual([...encodeValue('hi')], [1, 0x05, 2, 0x68, 0x69]);
  assert.deepStrictEqual(decodeValue(encodeValue(values())), values());
  assert.throws(() => decodeValue(new Uint8Array([2, 0])), (e) => e.code === 'CORRUPT_VALUE');
});
