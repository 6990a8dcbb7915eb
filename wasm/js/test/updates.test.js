// Conditional writes, counters and scans of the built package (wasm/pkg): cas,
// setIfAbsent/setIfPresent, getAndSet and increment on a standalone replica and across
// the replicas of one cluster over an in-process JS network (the only winner of a race
// wins everywhere, concurrent increments from every replica sum exactly, a cas loop
// loses no update), and scan listing every live key once across pages.
//
// Run: ./scripts/build-npm && node --test wasm/js/test/   (scripts/test does both)

import { test } from 'node:test';
import assert from 'node:assert/strict';

const pkg = process.env.RINGKV_PKG ?? new URL('../../pkg/node.js', import.meta.url).href;
const {
  Replica, ClosedError, ContentionError, NotAnIntegerError, CorruptValueError, InvalidArgumentError,
  RingkvError,
} = await import(pkg);

/**
 * An in-process network (as in network.test.js, kept here so each test file runs on
 * its own): frames hop through a macrotask after 0-2 ms, so they are reordered and
 * concurrent rounds interleave differently from run to run.
 */
class Network {
  replicas = new Map();

  transport(from) {
    return {
      send: (to, frame) => {
        setTimeout(() => {
          try {
            this.replicas.get(to)?.deliver(from, frame);
          } catch (e) {
            if (!(e instanceof ClosedError)) throw e;
          }
        }, Math.floor(Math.random() * 3));
      },
    };
  }
}

async function cluster(ids) {
  const net = new Network();
  const members = ids.map((id) => ({ id, zone: `z${id}` }));
  for (const id of ids) {
    const r = await Replica.open({ nodeId: id, zone: `z${id}`, members, transport: net.transport(id) });
    net.replicas.set(id, r);
  }
  return net;
}

async function closeAll(net) {
  for (const r of net.replicas.values()) await r.close();
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs `op` until it does not fail with CONTENTION (which guarantees it did not take
 * effect, so a retry cannot apply it twice). Any other error fails the test: an
 * INDETERMINATE increment would make an exact sum unknowable.
 */
async function retrying(op, stats) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await op();
    } catch (e) {
      if (!(e instanceof ContentionError) || attempt >= 200) throw e;
      stats.contention++;
      await sleep(Math.random() * 5 * Math.min(attempt + 1, 8));
    }
  }
}

test('cas, setIfAbsent, setIfPresent and getAndSet on a standalone replica', async () => {
  const r = await Replica.open();
  try {
    // expected undefined: only while absent.
    assert.deepStrictEqual(await r.cas('k', undefined, { v: 1 }), { applied: true, previous: undefined });
    assert.deepStrictEqual(await r.cas('k', undefined, { v: 2 }), { applied: false, previous: { v: 1 } });
    assert.deepStrictEqual(await r.get('k'), { v: 1 });
    // A mismatched expectation changes nothing and reports what is there.
    assert.deepStrictEqual(await r.cas('k', { v: 9 }, { v: 2 }), { applied: false, previous: { v: 1 } });
    // What get returned, passed back, matches the stored encoding.
    const read = await r.get('k');
    assert.deepStrictEqual(await r.cas('k', read, { v: 2, big: 2n ** 70n }), { applied: true, previous: { v: 1 } });
    assert.deepStrictEqual(await r.get('k'), { v: 2, big: 2n ** 70n });
    // Encodings compare, not JS equality: key order counts.
    assert.equal((await r.cas('k', { big: 2n ** 70n, v: 2 }, 'x')).applied, false);
    // next undefined deletes.
    assert.deepStrictEqual(await r.cas('k', { v: 2, big: 2n ** 70n }, undefined),
      { applied: true, previous: { v: 2, big: 2n ** 70n } });
    assert.equal(await r.get('k'), undefined);

    assert.equal(await r.setIfPresent('p', 1), false);
    assert.equal(await r.get('p'), undefined);
    assert.equal(await r.setIfAbsent('p', 1), true);
    assert.equal(await r.setIfAbsent('p', 2), false);
    assert.equal(await r.setIfPresent('p', 3), true);
    assert.equal(await r.get('p'), 3);
    await assert.rejects(r.setIfAbsent('p', undefined), InvalidArgumentError);

    assert.equal(await r.getAndSet('g', 'a'), undefined);
    assert.equal(await r.getAndSet('g', new Date(5)), 'a');
    assert.deepStrictEqual(await r.getAndSet('g', undefined), new Date(5));
    assert.equal(await r.get('g'), undefined);

    // Raw values compare and come back as bytes.
    assert.equal((await r.cas('raw', undefined, 'abc', { encoding: 'raw' })).applied, true);
    const { applied, previous } = await r.cas('raw', new TextEncoder().encode('abc'), 'def', { encoding: 'raw' });
    assert.equal(applied, true);
    assert.deepStrictEqual(previous, new TextEncoder().encode('abc'));

    // Updates are linearizable only.
    await assert.rejects(r.cas('k', undefined, 1, { consistency: 'eventual' }), InvalidArgumentError);
    await assert.rejects(r.increment('k', 1, { context: new Uint8Array(1) }), InvalidArgumentError);
    await assert.rejects(r.getCounter('k', { consistency: 'eventual' }), InvalidArgumentError);
    await assert.rejects(r.getCounter('k', { bigint: 'yes' }), InvalidArgumentError);
  } finally {
    await r.close();
  }
});

test('increment keeps a decimal counter: numbers while exact, BigInt beyond', async () => {
  const r = await Replica.open();
  try {
    assert.equal(await r.increment('c'), 1);
    assert.equal(await r.increment('c', 41), 42);
    assert.equal(await r.increment('c', -50), -8);
    assert.equal(await r.getCounter('c'), -8);
    assert.equal(await r.getCounter('c', { bigint: true }), -8n);
    assert.equal(await r.getCounter('never'), undefined);
    // The bytes are what Redis INCR keeps: ASCII decimal.
    assert.equal(new TextDecoder().decode(await r.get('c', { encoding: 'raw' })), '-8');
    // ... so they are not in the value encoding: get refuses them.
    await assert.rejects(r.get('c'), CorruptValueError);

    // Past 2^53 - 1 a number would round: a BigInt.
    assert.equal(await r.increment('big', Number.MAX_SAFE_INTEGER), Number.MAX_SAFE_INTEGER);
    assert.equal(await r.increment('big'), 2n ** 53n);
    assert.equal(await r.increment('big', -1), Number.MAX_SAFE_INTEGER);
    // A BigInt delta: always a BigInt.
    assert.equal(await r.increment('b', 1n), 1n);
    assert.equal(await r.increment('b', 2n ** 62n), 2n ** 62n + 1n);
    await assert.rejects(r.increment('b', 2n ** 62n), NotAnIntegerError, 'overflow');
    assert.equal(await r.getCounter('b'), 2n ** 62n + 1n, 'unchanged by the overflow');
    await assert.rejects(r.increment('b', 2n ** 63n), InvalidArgumentError);
    await assert.rejects(r.increment('b', 2 ** 60), InvalidArgumentError);
    await assert.rejects(r.increment('b', 0.5), InvalidArgumentError);

    // A structured value is not a counter; nothing changes.
    await r.put('s', 5);
    await assert.rejects(r.increment('s'), (e) => e instanceof NotAnIntegerError && e.code === 'NOT_AN_INTEGER'
      && e instanceof RingkvError);
    assert.equal(await r.get('s'), 5);
    await assert.rejects(r.getCounter('s'), NotAnIntegerError);

    // getAndSet over a counter applies, then cannot decode the previous value: the error
    // says the write happened.
    await assert.rejects(r.getAndSet('c', 'x'), (e) => {
      assert.ok(e instanceof CorruptValueError, `${e}`);
      assert.equal(e.applied, true);
      return true;
    });
    assert.equal(await r.get('c'), 'x');
  } finally {
    await r.close();
  }
});

test('setIfAbsent raced from every replica succeeds exactly once', async () => {
  const ids = [1, 2, 3, 4, 5];
  const net = await cluster(ids);
  const stats = { contention: 0 };
  try {
    for (let round = 0; round < 5; round++) {
      const key = `lock-${round}`;
      const wins = await Promise.all(ids.map((id) =>
        retrying(() => net.replicas.get(id).setIfAbsent(key, { owner: id }), stats)));
      const winners = ids.filter((_, i) => wins[i]);
      assert.equal(winners.length, 1, `${key}: winners ${winners}`);
      for (const id of ids) assert.deepStrictEqual(await net.replicas.get(id).get(key), { owner: winners[0] });
    }
    console.log(`setIfAbsent race: ${stats.contention} contention retries`);
  } finally {
    await closeAll(net);
  }
});

test('concurrent increments from every replica sum exactly, each count seen once', async () => {
  const ids = [1, 2, 3, 4, 5];
  const net = await cluster(ids);
  const perReplica = 20;
  const stats = { contention: 0 };
  try {
    const started = Date.now();
    const counts = (await Promise.all(ids.map(async (id) => {
      const r = net.replicas.get(id);
      // Each replica keeps 4 increments in flight.
      const lanes = Array.from({ length: 4 }, async () => {
        const seen = [];
        for (let i = 0; i < perReplica / 4; i++) seen.push(await retrying(() => r.increment('hits'), stats));
        return seen;
      });
      return (await Promise.all(lanes)).flat();
    }))).flat();
    const total = ids.length * perReplica;
    // Linearizable adds of 1: the counts returned are exactly 1..total, once each.
    assert.deepStrictEqual([...counts].sort((a, b) => a - b), Array.from({ length: total }, (_, i) => i + 1));
    for (const id of ids) assert.equal(await net.replicas.get(id).getCounter('hits'), total);
    console.log(`${total} increments from ${ids.length} replicas in ${Date.now() - started} ms, `
      + `${stats.contention} contention retries`);
  } finally {
    await closeAll(net);
  }
});

test('a cas loop from every replica loses no update', async () => {
  const ids = [1, 2, 3];
  const net = await cluster(ids);
  const stats = { contention: 0, conflicts: 0 };
  try {
    await net.replicas.get(1).put('doc', { n: 0, by: [] });
    await Promise.all(ids.map(async (id) => {
      const r = net.replicas.get(id);
      for (let i = 0; i < 5; i++) {
        for (;;) {
          const doc = await r.get('doc');
          const next = { n: doc.n + 1, by: [...doc.by, id] };
          const { applied } = await retrying(() => r.cas('doc', doc, next), stats);
          if (applied) break;
          stats.conflicts++;
        }
      }
    }));
    const doc = await net.replicas.get(2).get('doc');
    assert.equal(doc.n, 15);
    for (const id of ids) assert.equal(doc.by.filter((x) => x === id).length, 5);
    console.log(`cas loop: ${stats.conflicts} lost races re-read, ${stats.contention} contention retries`);
  } finally {
    await closeAll(net);
  }
});

test('scan lists every live key once across pages and skips deleted ones', async () => {
  const ids = [1, 2, 3];
  const net = await cluster(ids);
  const r = (id) => net.replicas.get(id);
  try {
    const live = new Set();
    for (let i = 0; i < 240; i++) {
      await r(1 + (i % 3)).put(`user:${i}`, i);
      live.add(`user:${i}`);
    }
    for (let i = 0; i < 240; i += 4) {
      await r(1 + (i % 3)).delete(`user:${i}`);
      live.delete(`user:${i}`);
    }
    await r(1).put('hits', 1);
    live.add('hits');
    const bytesKey = new Uint8Array([0xff, 0x00, 0x61]); // not UTF-8
    await r(2).put(bytesKey, 'b');

    // Small pages, from another replica than the writers: many round trips.
    const seen = new Map();
    let pages = 0;
    let cursor = 0n;
    do {
      const page = await r(3).scanPage(cursor, { count: 7 });
      assert.equal(typeof page.cursor, 'bigint');
      pages++;
      for (const key of page.keys) {
        const name = typeof key === 'string' ? key : `bytes:${[...key]}`;
        seen.set(name, (seen.get(name) ?? 0) + 1);
      }
      cursor = page.cursor;
    } while (cursor !== 0n);
    assert.ok(pages > 10, `${pages} pages`);
    const twice = [...seen].filter(([, n]) => n > 1);
    assert.deepStrictEqual(twice, [], 'no key listed twice');
    assert.deepStrictEqual([...seen.keys()].sort(), [...live, 'bytes:255,0,97'].sort());

    // The iterator, with a glob, and raw keys.
    const matched = [];
    for await (const key of r(2).scan({ match: 'user:1?', count: 50 })) matched.push(key);
    assert.deepStrictEqual(matched.sort(), ['user:10', 'user:11', 'user:13', 'user:14', 'user:15', 'user:17',
      'user:18', 'user:19']);
    const raw = [];
    for await (const key of r(1).scan({ keyEncoding: 'raw', match: 'hits' })) raw.push(key);
    assert.deepStrictEqual(raw, [new TextEncoder().encode('hits')]);
    let all = 0;
    for await (const _key of r(1).scan()) all++;
    assert.equal(all, live.size + 1);

    await assert.rejects(r(1).scanPage(-1n), InvalidArgumentError);
    await assert.rejects(r(1).scanPage(0n, { count: 0 }), InvalidArgumentError);
    await assert.rejects(r(1).scanPage(0n, { keyEncoding: 'hex' }), InvalidArgumentError);
  } finally {
    await closeAll(net);
  }
});
