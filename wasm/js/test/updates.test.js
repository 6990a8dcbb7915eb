// Conditional writes, counters and scans of the built package (wasm/pkg): cas,
// setIfAbsent/setIfPresent, getAndSet and increment on a standalone replica and across
// the replicas of one cluster over an in-process JS network (the only winner of a race
// wins everywhere, concurrent increments from every replica sum exactly and linearize,
// a cas loop loses no update), and scan listing every live key once across pages. The
// concurrent tests retry CONTENTION (nothing happened) and settle INDETERMINATE from
// the data, as an application must.
//
// Run: ./scripts/build-npm && node --test wasm/js/test/   (scripts/test does both)

import { test } from 'node:test';
import assert from 'node:assert/strict';

const pkg = process.env.RINGKV_PKG ?? new URL('../../pkg/node.js', import.meta.url).href;
const {
  Replica, ClosedError, ContentionError, NotAnIntegerError, CorruptValueError, InvalidArgumentError,
  IndeterminateError, RingkvError,
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
 * effect, so a retry cannot apply it twice). INDETERMINATE (the core's answer when an
 * accept of the update was partly stored and a later write may have built on it) is
 * returned as `{ indeterminate: error }`: the caller must find out from the data
 * whether it happened, never retry it blindly. Anything else fails the test.
 */
async function retrying(op, stats) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await op();
    } catch (e) {
      if (e instanceof IndeterminateError) {
        stats.indeterminate++;
        return { indeterminate: e };
      }
      if (!(e instanceof ContentionError) || attempt >= 200) throw e;
      stats.contention++;
      await sleep(Math.random() * 5 * Math.min(attempt + 1, 8));
    }
  }
}

const newStats = () => ({ contention: 0, indeterminate: 0 });

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
  const stats = newStats();
  try {
    for (let round = 0; round < 8; round++) {
      const key = `lock-${round}`;
      const outcomes = await Promise.all(ids.map((id) =>
        retrying(() => net.replicas.get(id).setIfAbsent(key, { owner: id }), stats)));
      const winners = ids.filter((_, i) => outcomes[i] === true);
      const unknown = ids.filter((_, i) => outcomes[i]?.indeterminate);
      assert.ok(winners.length <= 1, `${key}: winners ${winners}`);
      const held = await net.replicas.get(ids[round % ids.length]).get(key);
      if (winners.length === 1) {
        assert.deepStrictEqual(held, { owner: winners[0] }, `${key}: the winner's value`);
      } else {
        // Nobody knows they won: the holder, if any, is one whose answer was lost.
        assert.ok(held === undefined || unknown.includes(held.owner), `${key}: ${JSON.stringify(held)}`);
      }
      for (const id of ids) assert.deepStrictEqual(await net.replicas.get(id).get(key), held);
    }
    console.log(`setIfAbsent races: ${stats.contention} contention retries, ${stats.indeterminate} indeterminate`);
  } finally {
    await closeAll(net);
  }
});

test('concurrent increments from every replica sum exactly and linearize', async () => {
  const ids = [1, 2, 3, 4, 5];
  const net = await cluster(ids);
  const lanes = 3;
  const perLane = 4;
  const stats = newStats();
  try {
    // Every increment adds its own power of two, so the final sum says exactly which
    // ones took effect (an INDETERMINATE one may or may not have) and every returned
    // count says which had taken effect before it: linearizable adds give counts that
    // each contain the bits of all smaller counts.
    let next = 0n;
    const ops = [];
    const started = Date.now();
    await Promise.all(ids.flatMap((id) => Array.from({ length: lanes }, async () => {
      for (let i = 0; i < perLane; i++) {
        const bit = next++;
        const by = 1n << bit;
        const result = await retrying(() => net.replicas.get(id).increment('hits', by), stats);
        ops.push({ by, result });
      }
    })));
    const ms = Date.now() - started;
    assert.equal(ops.length, ids.length * lanes * perLane);
    assert.ok(next <= 63n, 'one bit per increment');
    const total = await net.replicas.get(1).getCounter('hits');
    assert.equal(typeof total, 'bigint');
    const definite = ops.filter((o) => typeof o.result === 'bigint');
    for (const { by, result } of definite) {
      assert.equal(total & by, by, `acknowledged +${by} is in the sum`);
      assert.equal(result & by, by, `+${by} answered a count that includes itself`);
    }
    // Only increments whose answer was lost may be missing.
    const missing = ops.filter((o) => (total & o.by) === 0n);
    assert.ok(missing.every((o) => o.result?.indeterminate), 'only indeterminate increments are missing');
    const counts = definite.map((o) => o.result).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (let i = 1; i < counts.length; i++) {
      assert.equal(counts[i] & counts[i - 1], counts[i - 1], `count ${counts[i]} extends ${counts[i - 1]}`);
    }
    assert.equal(new Set(counts).size, counts.length, 'every count returned once');
    for (const id of ids) assert.equal(await net.replicas.get(id).getCounter('hits', { bigint: true }), total);
    console.log(`${ops.length} increments from ${ids.length} replicas (${lanes} in flight each) in ${ms} ms: `
      + `${stats.contention} contention retries, ${stats.indeterminate} indeterminate `
      + `(${missing.length} of those did not apply)`);
  } finally {
    await closeAll(net);
  }
});

test('increments of one key issued at once through one replica all apply, as batches', async () => {
  const net = await cluster([1, 2, 3]);
  try {
    // The coordinator runs one round per key; the ones waiting go as the next round's
    // batch. Without that they outbid each other and most end INDETERMINATE.
    const results = await Promise.all(Array.from({ length: 100 }, () => net.replicas.get(2).increment('hot')));
    assert.deepEqual([...results].sort((a, b) => a - b), Array.from({ length: 100 }, (_, i) => i + 1));
    assert.equal(await net.replicas.get(3).getCounter('hot'), 100);
  } finally {
    await closeAll(net);
  }
});

test('a cas loop from every replica loses no update', async () => {
  const ids = [1, 2, 3];
  const net = await cluster(ids);
  const stats = { ...newStats(), conflicts: 0 };
  const perReplica = 5;
  try {
    await net.replicas.get(1).put('doc', { n: 0, by: [] });
    await Promise.all(ids.map(async (id) => {
      const r = net.replicas.get(id);
      let attempt = 0;
      for (let done = 0; done < perReplica;) {
        const token = `${id}.${attempt++}`;
        const doc = await r.get('doc');
        const result = await retrying(() => r.cas('doc', doc, { n: doc.n + 1, by: [...doc.by, token] }), stats);
        // A lost answer is settled by the data: the token is there or never will be
        // (a later write built on the document without it).
        const applied = result.indeterminate ? (await r.get('doc')).by.includes(token) : result.applied;
        if (applied) done++;
        else stats.conflicts++;
      }
    }));
    const doc = await net.replicas.get(2).get('doc');
    assert.equal(doc.n, ids.length * perReplica);
    assert.equal(doc.by.length, doc.n);
    assert.equal(new Set(doc.by).size, doc.n, 'no token twice');
    for (const id of ids) assert.equal(doc.by.filter((t) => t.startsWith(`${id}.`)).length, perReplica);
    console.log(`cas loop: ${stats.conflicts} lost races re-read, ${stats.contention} contention retries, `
      + `${stats.indeterminate} indeterminate`);
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
