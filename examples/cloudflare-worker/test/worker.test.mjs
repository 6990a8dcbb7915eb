// The Cloudflare Worker example under workerd (the real runtime, from npm) beside a
// native 3-node cluster of real `ringkv serve` processes:
// - the Durable Object replica joins the ring; a PUT through the Worker is read by RESP
//   GET on two native nodes, a RESP SET is read through the Worker;
// - 1,000 mixed operations through the Worker, checked for linearizability with the web
//   demo's checker (web-demo/src/checker.js): 0 violations;
// - one native node killed: reads and writes through the Worker still succeed; two of a
//   key's replicas down: the Worker answers 503 UNAVAILABLE for it;
// - workerd SIGKILLed mid-load and restarted on the same storage directory: the object's
//   alarm re-attaches it as the same member without any client request, and every PUT
//   that got 204 reads back.
//
// Needs the ringkv binary (RINGKV_BIN, default target/proc-test/ringkv), the npm package
// built into wasm/pkg (scripts/build-npm) and this directory's packages (npm ci).
// LIN_OPS overrides the number of checked operations (default 1000).

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { NativeCluster } from '../../../scripts/lib/native-cluster.mjs';
import { Checker } from '../../../web-demo/src/checker.js';
import { WorkerdReplica, settledMembers, until } from './harness.mjs';

const LIN_OPS = Number(process.env.LIN_OPS ?? 1000);

/** Joins `w` (started) and waits until every native node's settled layout has it. */
async function joined(cluster, w) {
  const status = await until('the Durable Object replica to be a member', async () => {
    const s = await w.status();
    return s.role === 'member' && s.transport.connected && s;
  });
  await until('the replica in every native layout', async () => {
    for (const node of cluster.nodes) {
      const members = await settledMembers(cluster, node.id);
      if (!members?.some((m) => m.id === status.nodeId)) return false;
    }
    return true;
  });
  return status;
}

/** A key whose preference list (asked of the replica) satisfies `want`. */
async function keyWhere(w, prefix, want) {
  for (let i = 0; i < 2000; i++) {
    const key = `${prefix}-${i}`;
    if (want((await w.placement(key)).nodes)) return key;
  }
  throw new Error(`no key ${prefix}-* with the wanted placement`);
}

/**
 * `ops` operations (half PUTs of unique values, half GETs) over `keys` keys from
 * `clients` concurrent clients through the Worker; every outcome goes to the checker.
 * A PUT answered 503 UNAVAILABLE did not happen; any other failure may have.
 */
async function checkedLoad(w, { ops, clients = 8, keys = 6 }) {
  const checker = new Checker();
  const counts = { puts: 0, gets: 0, unavailable: 0, indeterminate: 0, readFailures: 0 };
  let issued = 0;
  let seq = 0;
  const client = async (c) => {
    while (issued < ops) {
      issued++;
      const key = `lin-${Math.floor(Math.random() * keys)}`;
      const write = Math.random() < 0.5;
      const value = write ? `c${c}-${++seq}` : undefined;
      const id = checker.invoke(key, performance.now());
      let outcome = 'ok';
      let got;
      try {
        if (write) {
          const r = await w.put(key, value);
          if (r.status === 204) counts.puts++;
          else outcome = r.status === 503 && r.body.startsWith('UNAVAILABLE') ? 'unavailable' : 'indeterminate';
        } else {
          const r = await w.get(key);
          if (r.status === 200) got = r.body;
          else if (r.status !== 404) outcome = 'failed';
          if (outcome === 'ok') counts.gets++;
        }
      } catch {
        outcome = write ? 'indeterminate' : 'failed';
      }
      if (outcome === 'unavailable') counts.unavailable++;
      if (outcome === 'indeterminate') counts.indeterminate++;
      if (outcome === 'failed') counts.readFailures++;
      checker.complete(id, write ? 'write' : 'read', write ? value : got, performance.now(), outcome);
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: clients }, (_, c) => client(c)));
  const seconds = (performance.now() - started) / 1000;
  checker.check();
  return { counts, totals: checker.totals(), violations: checker.violations(), seconds };
}

test('a Durable Object replica under workerd is a member of a native cluster', async (t) => {
  const cluster = new NativeCluster();
  let w;
  try {
    await cluster.start(3);
    w = await WorkerdReplica.build([cluster.url(1), cluster.url(2)]);
    await w.start();
    const status = await joined(cluster, w);
    assert.equal(status.transport.kind, 'relay');
    assert.equal(status.transport.host, 1);
    assert.equal(status.storage, 'custom');
    const id = status.nodeId;

    await t.test('a PUT through the Worker is read by RESP GET on two native nodes', async () => {
      assert.equal((await w.put('from-worker', 'hello-edge')).status, 204);
      assert.equal(await cluster.resp(2, 'GET', 'from-worker'), 'hello-edge');
      assert.equal(await cluster.resp(3, 'GET', 'from-worker'), 'hello-edge');
    });

    await t.test('a RESP SET is read through the Worker; 404, DELETE and 413 as examples/edge-node', async () => {
      assert.equal(await cluster.resp(3, 'SET', 'from-resp', 'hello-native'), 'OK');
      assert.deepEqual(await w.get('from-resp'), { status: 200, body: 'hello-native' });
      assert.equal((await w.get('absent-key')).status, 404);
      assert.equal((await w.del('from-worker')).status, 204);
      assert.equal(await cluster.resp(1, 'GET', 'from-worker'), null);
      assert.equal((await w.get('from-worker')).status, 404);
      const big = await w.put('too-big', new Uint8Array((1 << 20) + 1));
      assert.equal(big.status, 413);
      assert.match(big.body, /^TOO_LARGE/);
    });

    await t.test(`${LIN_OPS} mixed operations through the Worker are linearizable`, async () => {
      const run = await checkedLoad(w, { ops: LIN_OPS });
      console.log(`checked load: ${JSON.stringify(run.counts)} ${JSON.stringify(run.totals)} in ${run.seconds.toFixed(1)} s`);
      assert.deepEqual(run.violations, [], 'no linearizability violations');
      assert.equal(run.totals.violations, 0);
      assert.equal(run.counts.unavailable + run.counts.indeterminate + run.counts.readFailures, 0,
        'with every node up every operation succeeds');
      // Every operation was checked: none left inconclusive or forgotten.
      assert.equal(run.totals.checked, LIN_OPS);
      assert.equal(run.totals.inconclusive, 0);
    });

    await t.test('one native node killed: reads and writes through the Worker still succeed', async () => {
      const onN3 = await keyWhere(w, 'on-n3', (nodes) => nodes.includes(3));
      cluster.kill(3);
      await cluster.node(3).exited;
      for (let i = 0; i < 10; i++) {
        assert.equal((await w.put(`after-kill-${i}`, `v${i}`)).status, 204);
        assert.deepEqual(await w.get(`after-kill-${i}`), { status: 200, body: `v${i}` });
      }
      assert.equal((await w.put(onN3, 'n3-down')).status, 204);
      assert.deepEqual(await w.get(onN3), { status: 200, body: 'n3-down' });
      assert.equal(await cluster.resp(2, 'GET', onN3), 'n3-down');
    });

    await t.test("two of a key's replicas down: the Worker answers 503 UNAVAILABLE", async () => {
      const lost = await keyWhere(w, 'lost', (nodes) => nodes.includes(2) && nodes.includes(3));
      const live = await keyWhere(w, 'live', (nodes) => nodes.includes(id) && nodes.includes(1));
      cluster.kill(2);
      const put = await w.put(lost, 'x');
      assert.equal(put.status, 503, put.body);
      assert.match(put.body, /^UNAVAILABLE/);
      const get = await w.get(lost);
      assert.equal(get.status, 503, get.body);
      assert.match(get.body, /^UNAVAILABLE/);
      // A key on the replica and n1 (the live two of its three) still works.
      assert.equal((await w.put(live, 'still-here')).status, 204);
      assert.deepEqual(await w.get(live), { status: 200, body: 'still-here' });
    });
  } catch (e) {
    console.error(w?.output, await cluster.logs());
    throw e;
  } finally {
    await w?.stop();
    await cluster.stop();
  }
});

test('workerd SIGKILLed mid-load: restarted on its storage, the object re-attaches as the same member with every acknowledged PUT', async () => {
  const cluster = new NativeCluster();
  let w;
  try {
    await cluster.start(3);
    w = await WorkerdReplica.build([cluster.url(1), cluster.url(2)]);
    await w.start();
    const before = await joined(cluster, w);

    // Writers of unique keys until workerd dies under them.
    const acked = new Map();
    let dead = false;
    let attempts = 0;
    const writer = async (c) => {
      for (let i = 0; !dead; i++) {
        const key = `crash-${c}-${i}`;
        const value = `v-${c}-${i}`;
        attempts++;
        try {
          const r = await w.put(key, value);
          if (r.status === 204) acked.set(key, value);
        } catch {
          return; // the connection died with workerd: indeterminate, not acknowledged
        }
      }
    };
    const writers = Array.from({ length: 6 }, (_, c) => writer(c));
    await until('150 acknowledged PUTs', () => acked.size >= 150, 60_000);
    await w.kill();
    dead = true;
    await Promise.all(writers);
    console.log(`killed workerd after ${acked.size} acknowledged of ${attempts} PUTs`);

    // Restarted with no client request: the stored alarm fires, the object reopens its
    // replica from storage and re-attaches to its host (the native node sees the
    // member's incarnation go up).
    await w.start();
    const restartedAt = Date.now();
    await until('the member re-attached by its alarm', async () => {
      const members = await settledMembers(cluster, 1);
      const m = members?.find((x) => x.id === before.nodeId);
      return m && m.incarnation > before.incarnation && m.state === 'alive';
    }, 30_000);
    console.log(`re-attached by its alarm ${Date.now() - restartedAt} ms after workerd started`);

    const after = await w.status();
    assert.equal(after.nodeId, before.nodeId, 'the same member id');
    assert.equal(after.role, 'member');
    assert.ok(after.incarnation > before.incarnation);
    assert.equal(after.transport.connected, true);
    assert.ok(after.edge.alarms >= 1, 'opened by the alarm');
    const members = await settledMembers(cluster, 2);
    assert.equal(members.length, 4, 'no new member joined');
    assert.equal(members.find((m) => m.id === before.nodeId)?.address, 'relay:1');

    const missing = [];
    for (const [key, value] of acked) {
      const r = await w.get(key);
      if (r.status !== 200 || r.body !== value) missing.push(`${key}: ${r.status} ${r.body}`);
    }
    assert.deepEqual(missing, [], 'every PUT that got 204 reads back');
    // And from the native side (a sample).
    for (const key of [...acked.keys()].slice(0, 10)) {
      assert.equal(await cluster.resp(3, 'GET', key), acked.get(key));
    }
  } catch (e) {
    console.error(w?.output, await cluster.logs());
    throw e;
  } finally {
    await w?.stop();
    await cluster.stop();
  }
});

test('large values through memtable flushes and compaction survive a SIGKILL of workerd', async () => {
  const cluster = new NativeCluster();
  let w;
  try {
    await cluster.start(3);
    w = await WorkerdReplica.build([cluster.url(1)]);
    await w.start();
    await joined(cluster, w);
    // 100 keys, each written twice with 60 KiB values (12 MiB in all, 6 MiB live): past
    // the replica's 4 MiB memtable several times, so the engine flushes tables and drops
    // log files, which the block store commits as page writes, truncations and removals.
    const value = (key, round) => {
      const bytes = new Uint8Array(60 * 1024);
      const seed = `${key}:${round}:`;
      for (let i = 0; i < bytes.length; i++) bytes[i] = seed.charCodeAt(i % seed.length);
      return bytes;
    };
    const keys = Array.from({ length: 100 }, (_, i) => `big-${i}`);
    for (let round = 0; round < 2; round++) {
      await Promise.all(keys.map(async (key) => {
        const r = await w.put(key, value(key, round));
        assert.equal(r.status, 204, r.body);
      }));
    }
    const before = await w.status();
    console.log(`engine before the kill: ${JSON.stringify(before.engine)}, store ${before.storeBytes} bytes`);
    assert.ok(before.engine.flushes >= 2, `flushed (${before.engine.flushes})`);
    await w.kill();
    await w.start();
    const after = await until('the replica reopened', async () => {
      const s = await w.status();
      return s.role === 'member' && s.transport.connected && s;
    });
    assert.equal(after.nodeId, before.nodeId);
    // The object's own store came back whole (quorum reads alone could hide a loss):
    // its tables, and every key it holds (the edge zone is in every preference list).
    assert.ok(after.engine.tables >= before.engine.tables, JSON.stringify(after.engine));
    assert.ok(before.keys >= keys.length, `keys held before: ${before.keys}`);
    assert.equal(after.keys, before.keys);
    const expected = new TextDecoder().decode(value('x', 0)).length;
    for (const key of keys) {
      const r = await w.get(key);
      assert.equal(r.status, 200);
      assert.equal(r.body.length, expected);
      assert.equal(r.body, new TextDecoder().decode(value(key, 1)), `${key} holds its last value`);
    }
  } catch (e) {
    console.error(w?.output, await cluster.logs());
    throw e;
  } finally {
    await w?.stop();
    await cluster.stop();
  }
});
