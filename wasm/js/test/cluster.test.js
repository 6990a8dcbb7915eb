// A wasm replica (the built package, in Node) joins a 3-node native cluster of real
// `ringkv serve` processes through a node's relay, and shares one ring with them:
// values written through RESP read back through the replica and the other way round;
// the replica survives a restart from its file store; with one native node killed its
// linearizable reads and writes still succeed; with two of a key's three replicas
// killed, that key's linearizable operations fail with UNAVAILABLE. `Client` talks to
// the same cluster over the client protocol, conditional writes and scans included
// (counters agree with RESP: decimal strings either way).
//
// Needs the ringkv binary (RINGKV_BIN, default target/proc-test/ringkv; the cluster
// comes from scripts/lib/native-cluster.mjs) and a global
// WebSocket (Node ≥ 22, or Node 20–21 with --experimental-websocket; scripts/test
// passes the flag).

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { NativeCluster, freePort, resp } from '../../../scripts/lib/native-cluster.mjs';

const pkg = process.env.RINGKV_PKG ?? new URL('../../pkg/node.js', import.meta.url).href;
const { Replica, Client, FileBlockStore, UnavailableError, InvalidArgumentError, IdentityError, NotAnIntegerError } =
  await import(pkg);
/** An IDENTITY refusal: an IdentityError that says what to do. */
const identityRefusal = (e) =>
  typeof IdentityError === 'function' && e instanceof IdentityError && e.code === 'IDENTITY' &&
  /rejoin under a new id/i.test(e.message);
/** Ids a host assigns replicas that ask for none: [2^32, 2^53). */
const ASSIGNED_MIN = 2 ** 32;

const root = new URL('../../../', import.meta.url).pathname;
const REPLICA = 100;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const text = (bytes) => (bytes === undefined ? undefined : new TextDecoder().decode(bytes));

async function until(what, check, limitMs = 30000) {
  const start = Date.now();
  let last;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (e) {
      last = e;
    }
    if (Date.now() - start > limitMs) assert.fail(`timed out waiting for ${what}: ${last ?? ''}`);
    await sleep(100);
  }
}

/**
 * Asserts that `opening` (a Replica.open) is refused as `expected` says. A replica it
 * opened anyway is closed, so the failure is reported instead of the open replica
 * keeping the process alive.
 */
async function refused(opening, expected) {
  let opened;
  try {
    await assert.rejects(opening.then((r) => { opened = r; }), expected);
  } finally {
    await opened?.close().catch(() => {});
  }
}

/** The shared native-cluster helper, with the names this file uses. */
class Cluster extends NativeCluster {
  start(n, extra = []) {
    return super.start(n, { extra });
  }

  seed(id) {
    return this.url(id);
  }
}

/** A key (k-0, k-1, ...) whose preference list satisfies `want`. */
function keyWhere(replica, want) {
  for (let i = 0; i < 10000; i++) {
    const key = `key-${i}`;
    if (want(replica.preferenceList(key).nodes)) return key;
  }
  throw new Error('no such key');
}

test('a wasm replica joins a native cluster through the relay and shares its ring', async (t) => {
  assert.equal(typeof WebSocket, 'function', 'a global WebSocket (Node 20: --experimental-websocket)');
  const cluster = new Cluster();
  const storeDir = await mkdtemp(join(tmpdir(), 'ringkv-wasm-replica-'));
  after(() => rm(storeDir, { recursive: true, force: true }));
  let replica;
  try {
    await cluster.start(3);
    const open = () =>
      Replica.open({
        nodeId: REPLICA,
        zone: 'browser',
        seeds: [cluster.seed(1)],
        storage: new FileBlockStore(storeDir),
        valueEncoding: 'raw',
        joinTimeoutMs: 30000,
      });
    replica = await open();
    let status = replica.status();
    assert.equal(status.role, 'member');
    assert.equal(status.transport.kind, 'relay');
    assert.equal(status.transport.host, 1);
    await until('the replica in every native layout', async () => {
      for (const node of cluster.nodes) {
        const s = await (await fetch(`http://127.0.0.1:${node.http}/status`)).json();
        if (s.members.length !== 4 || s.membership.pending_version !== null) return false;
      }
      return true;
    });

    await t.test('RESP writes read back through the replica and the other way round', async () => {
      assert.equal(await resp(cluster.node(2).resp, 'SET', 'from-resp', 'r1'), 'OK');
      assert.equal(text(await replica.get('from-resp')), 'r1');
      await replica.put('from-replica', 'w1');
      assert.equal(await resp(cluster.node(3).resp, 'GET', 'from-replica'), 'w1');
      // Keys the replica holds itself, written from both sides.
      const own = keyWhere(replica, (nodes) => nodes.includes(REPLICA));
      assert.equal(await resp(cluster.node(1).resp, 'SET', own, 'v1'), 'OK');
      assert.equal(text(await replica.get(own)), 'v1');
      await replica.put(own, 'v2');
      assert.equal(await resp(cluster.node(2).resp, 'GET', own), 'v2');
    });

    await t.test('a Client reads and writes the same keys over the client protocol', async () => {
      const client = await Client.connect([cluster.seed(2), cluster.seed(3)], { valueEncoding: 'raw' });
      try {
        assert.equal(client.node, 2);
        assert.equal(text(await client.get('from-replica')), 'w1');
        await client.put('from-client', 'c1');
        assert.equal(await resp(cluster.node(1).resp, 'GET', 'from-client'), 'c1');
        assert.equal(text(await replica.get('from-client')), 'c1');
        await client.put('structured', { a: [1, 2n] }, { encoding: 'structured' });
        assert.deepEqual(await client.get('structured', { encoding: 'structured' }), { a: [1, 2n] });
        const status = await client.status();
        assert.equal(status.role, 'member');
      } finally {
        client.close();
      }
    });

    await t.test('conditional writes, counters and scans through a Client and the replica', async () => {
      const client = await Client.connect([cluster.seed(3)], { valueEncoding: 'raw' });
      try {
        // A counter is what RESP keeps: a decimal string. The package counts on from one
        // RESP wrote, and RESP reads the sum.
        assert.equal(await resp(cluster.node(2).resp, 'SET', 'visits', '41'), 'OK');
        assert.equal(await client.increment('visits'), 42);
        assert.equal(await replica.increment('visits', 8), 50);
        assert.equal(await resp(cluster.node(1).resp, 'GET', 'visits'), '50');
        assert.equal(await client.getCounter('visits', { bigint: true }), 50n);
        // Redis's own INCR and the package's increment count on the same key.
        assert.equal(await resp(cluster.node(3).resp, 'INCR', 'visits'), ':51');
        assert.equal(await replica.increment('visits', -1), 50);
        assert.equal(await resp(cluster.node(2).resp, 'INCRBY', 'visits', '9007199254740990'), ':9007199254741040');
        assert.equal(await client.getCounter('visits'), 9007199254741040n, 'a BigInt past 2^53');
        assert.equal(await client.increment('visits', -9007199254741000n), 40n);
        assert.equal(await resp(cluster.node(1).resp, 'SET', 'not-a-number', 'abc'), 'OK');
        await assert.rejects(client.increment('not-a-number'), NotAnIntegerError);

        // Compare-and-set over the client protocol and on the relayed replica, raw values.
        assert.deepEqual(await client.cas('cas-key', undefined, 'one'), { applied: true, previous: undefined });
        const lost = await replica.cas('cas-key', 'two', 'three');
        assert.equal(lost.applied, false);
        assert.equal(text(lost.previous), 'one');
        assert.equal(await client.setIfAbsent('cas-key', 'x'), false);
        assert.equal(text(await replica.getAndSet('cas-key', 'two')), 'one');
        assert.equal(await resp(cluster.node(2).resp, 'GET', 'cas-key'), 'two');

        // One keyspace: the client's scan lists what RESP, the replica and clients wrote.
        const keys = new Set();
        for await (const key of client.scan({ count: 5 })) keys.add(key);
        for (const key of ['from-resp', 'from-replica', 'from-client', 'visits', 'cas-key']) {
          assert.ok(keys.has(key), `${key} in ${[...keys]}`);
        }
        const matched = [];
        for await (const key of replica.scan({ match: 'from-*' })) matched.push(key);
        assert.deepEqual(matched.sort(), ['from-client', 'from-replica', 'from-resp']);
      } finally {
        client.close();
      }
    });

    await t.test('the replica reopens from its store and re-attaches to its host', async () => {
      const own = keyWhere(replica, (nodes) => nodes.includes(REPLICA));
      await replica.put(own, 'before-restart');
      await replica.close();
      replica = await open();
      status = replica.status();
      assert.equal(status.role, 'member');
      assert.ok(status.incarnation >= 2);
      assert.equal(text(await replica.get(own)), 'before-restart');
      assert.equal(text(await replica.get('from-resp')), 'r1');
    });

    await t.test('one native node killed: linearizable reads and writes still succeed', async () => {
      const events = [];
      replica.on('membership', (e) => events.push(e));
      cluster.kill(3);
      for (let i = 0; i < 20; i++) {
        const key = `after-kill-${i}`;
        await replica.put(key, `v${i}`);
        assert.equal(text(await replica.get(key)), `v${i}`);
      }
      // Keys n3 replicates, on purpose.
      const onN3 = keyWhere(replica, (nodes) => nodes.includes(3));
      await replica.put(onN3, 'n3-down');
      assert.equal(text(await replica.get(onN3)), 'n3-down');
      assert.equal(await resp(cluster.node(2).resp, 'GET', onN3), 'n3-down');
      await until('a membership event showing n3 down', () =>
        events.some((e) => e.members.some((m) => m.id === 3 && m.state !== 'alive')));
    });

    await t.test("two of a key's three replicas killed: that key is UNAVAILABLE", async () => {
      cluster.kill(2);
      const lost = keyWhere(replica, (nodes) => nodes.includes(2) && nodes.includes(3));
      await assert.rejects(replica.put(lost, 'x'), UnavailableError);
      await assert.rejects(replica.get(lost), UnavailableError);
      // A key on the replica and n1 (the live two of its three) still works.
      const live = keyWhere(
        replica,
        (nodes) => nodes.includes(REPLICA) && nodes.includes(1),
      );
      await replica.put(live, 'still-here');
      assert.equal(text(await replica.get(live)), 'still-here');
    });

    await t.test('remove({ force }) and abort() through the package', async () => {
      await assert.rejects(replica.remove(3, { force: 'yes' }), InvalidArgumentError);
      await assert.rejects(replica.abort(), /nothing to abort/);
      // n3 is down, and so is n2, which shares ranges with it: even forced, the
      // removal is refused, naming a range, instead of waiting for n2.
      await until('n2 believed down', () =>
        replica.status().members.some((m) => m.id === 2 && m.state === 'dead'), 30000);
      await assert.rejects(replica.remove(3, { force: true }), /range .* down too/);
    });
  } catch (e) {
    console.error(await cluster.logs());
    throw e;
  } finally {
    await replica?.close().catch(() => {});
    await cluster.stop();
  }
});

/** Runs examples/edge-node/server.mjs; resolves once it serves. */
async function startEdgeNode(seed, dataDir, port) {
  const script = join(root, 'examples', 'edge-node', 'server.mjs');
  const child = spawn(
    process.execPath,
    ['--experimental-websocket', script, '--seed', seed, '--node-id', '101', '--data', dataDir,
      '--port', String(port)],
    { env: { ...process.env, RINGKV_PKG: pkg }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  await until('the edge node to serve', () => {
    if (child.exitCode !== null) throw new Error(`edge node exited: ${output}`);
    return output.includes('serving http://');
  }, 60000);
  return { child, output: () => output };
}

test('examples/edge-node joins a native cluster and serves GET/PUT /kv/:key', async () => {
  const cluster = new Cluster();
  const dataDir = await mkdtemp(join(tmpdir(), 'ringkv-edge-node-'));
  let edge;
  try {
    await cluster.start(3);
    const port = await freePort();
    edge = await startEdgeNode(cluster.seed(2), dataDir, port);
    const base = `http://127.0.0.1:${port}`;
    const put = await fetch(`${base}/kv/edge-key`, { method: 'PUT', body: 'from-http' });
    assert.equal(put.status, 204);
    assert.equal(await resp(cluster.node(1).resp, 'GET', 'edge-key'), 'from-http');
    assert.equal(await resp(cluster.node(3).resp, 'SET', 'resp-key', 'from-resp'), 'OK');
    const get = await fetch(`${base}/kv/resp-key`);
    assert.equal(get.status, 200);
    assert.equal(await get.text(), 'from-resp');
    assert.equal((await fetch(`${base}/kv/absent`)).status, 404);
    assert.equal((await fetch(`${base}/kv/edge-key`, { method: 'DELETE' })).status, 204);
    assert.equal(await resp(cluster.node(2).resp, 'GET', 'edge-key'), null);
    const status = await (await fetch(`${base}/status`)).json();
    assert.equal(status.role, 'member');
    assert.equal(status.members.length, 4);
  } catch (e) {
    console.error(edge?.output(), await cluster.logs());
    throw e;
  } finally {
    edge?.child.kill('SIGKILL');
    await cluster.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
});

test('a token-protected cluster refuses a wrong token at once and admits the right one', async () => {
  const cluster = new Cluster();
  try {
    await cluster.start(1, ['--auth-token', 'right-token']);
    const started = Date.now();
    await refused(
      Replica.open({ ephemeral: true, seeds: [cluster.seed(1)], token: 'wrong-token' }),
      (e) => e instanceof InvalidArgumentError && /token/.test(e.message),
    );
    assert.ok(Date.now() - started < 10000, 'refused without waiting for the join timeout');
    await assert.rejects(
      Client.connect([cluster.seed(1)], { token: 'wrong-token' }),
      (e) => e instanceof InvalidArgumentError && /invalid token/.test(e.message),
    );
    const replica = await Replica.open({ ephemeral: true, seeds: [cluster.seed(1)], token: 'right-token' });
    await replica.put('k', { ok: true });
    const client = await Client.connect([cluster.seed(1)], { token: 'right-token' });
    assert.deepEqual(await client.get('k'), { ok: true });
    client.close();
    await replica.close();
  } catch (e) {
    console.error(await cluster.logs());
    throw e;
  } finally {
    await cluster.stop();
  }
});

/** A block store in memory that counts loads and closes. */
class CountingStore {
  files = new Map();
  loads = 0;
  closes = 0;
  async load() {
    this.loads++;
    return new Map(this.files);
  }
  async commit({ removed, files }) {
    for (const name of removed) this.files.delete(name);
    for (const f of files) {
      const next = new Uint8Array(f.size);
      next.set((this.files.get(f.name) ?? new Uint8Array()).subarray(0, f.size));
      for (const c of f.chunks) next.set(c.bytes, c.offset);
      this.files.set(f.name, next);
    }
  }
  async close() {
    this.closes++;
  }
}

test('unreachable seeds: open and connect fail with UNAVAILABLE, and release the store', async () => {
  const dead = `ws://127.0.0.1:${await freePort()}`;
  const store = new CountingStore();
  const started = Date.now();
  await assert.rejects(
    Replica.open({ nodeId: 9, seeds: [dead], storage: store, joinTimeoutMs: 1500 }),
    (e) => e instanceof UnavailableError && /no seed accepted/.test(e.message),
  );
  assert.ok(Date.now() - started < 10000);
  assert.equal(store.loads, 1);
  assert.equal(store.closes, 1, 'the store is closed after a failed join');
  await assert.rejects(Client.connect([dead]), UnavailableError);
  // Refused before the store is touched: a seed that is not a WebSocket address.
  await assert.rejects(
    Replica.open({ nodeId: 9, seeds: ['http://127.0.0.1:1'], storage: store }),
    InvalidArgumentError,
  );
  assert.equal(store.loads, 1);
});

/** Runs a membership change, retrying while another one is in progress (UNAVAILABLE). */
async function change(fn, limitMs = 60000) {
  const start = Date.now();
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (!(e instanceof UnavailableError) || Date.now() - start > limitMs) throw e;
      await sleep(500);
    }
  }
}

/** Node `id`'s layout members (its HTTP /status), once no change is pending. */
async function settledMembers(cluster, id) {
  const s = await cluster.status(id);
  return s.membership.pending_version === null ? s.members.map((m) => m.id) : null;
}

test('replica identity: ids from the cluster, kept with the store; opt-in for memory; amnesia refused', async (t) => {
  const cluster = new Cluster();
  const dirs = [];
  const dir = async () => {
    const d = await mkdtemp(join(tmpdir(), 'ringkv-wasm-identity-'));
    dirs.push(d);
    return d;
  };
  after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));
  const open = [];
  let member; // a replica that stays open: changes go through it
  const closeAll = () => Promise.all(open.splice(0).map((r) => r.close().catch(() => {})));
  try {
    await cluster.start(3);
    const seeds = [cluster.seed(1), cluster.seed(2)];
    const quick = { seeds, joinTimeoutMs: 4000 };

    await t.test('a memory store joins only with ephemeral: true, and never under a given id', async () => {
      // Refused at once, before anything is sent.
      const started = Date.now();
      await refused(Replica.open(quick), (e) => e instanceof InvalidArgumentError && /ephemeral/.test(e.message));
      await refused(
        Replica.open({ ...quick, storage: 'memory', nodeId: 5 }),
        (e) => e instanceof InvalidArgumentError && /ephemeral/.test(e.message),
      );
      await refused(
        Replica.open({ ...quick, ephemeral: true, nodeId: 5 }),
        (e) => e instanceof InvalidArgumentError && /fresh id/.test(e.message),
      );
      assert.ok(Date.now() - started < 2000, 'refused without dialling');
    });

    await t.test('replicas without a nodeId get distinct ids from the cluster, kept with their data', async () => {
      const dirA = await dir();
      const a = await Replica.open({ ...quick, storage: new FileBlockStore(dirA), joinTimeoutMs: 30000 });
      open.push(a);
      const b = await Replica.open({ ...quick, storage: new FileBlockStore(await dir()), joinTimeoutMs: 30000 });
      open.push(b);
      member = b;
      const idA = a.status().nodeId;
      const idB = b.status().nodeId;
      for (const id of [idA, idB]) {
        assert.ok(Number.isSafeInteger(id) && id >= ASSIGNED_MIN, `assigned id ${id}`);
      }
      assert.notEqual(idA, idB);
      assert.equal(a.status().role, 'member');
      await a.put('shared', { from: 'a' });
      assert.deepEqual(await b.get('shared'), { from: 'a' });
      await until("both replicas in n3's layout", async () => {
        const members = await settledMembers(cluster, 3);
        return members && members.includes(idA) && members.includes(idB);
      });
      // Reopened without a nodeId, the store keeps its id (it never asks again); a
      // nodeId that is not the store's is refused; the store's own is accepted.
      await a.close();
      open.splice(open.indexOf(a), 1);
      const reopened = await Replica.open({ ...quick, storage: new FileBlockStore(dirA), joinTimeoutMs: 30000 });
      assert.equal(reopened.status().nodeId, idA);
      assert.equal(reopened.status().role, 'member');
      assert.deepEqual(await reopened.get('shared'), { from: 'a' });
      await reopened.close();
      await refused(
        Replica.open({ ...quick, nodeId: idA + 1, storage: new FileBlockStore(dirA) }),
        (e) => e instanceof InvalidArgumentError && new RegExp(`belongs to node ${idA}`).test(e.message),
      );
      // Kept open: a member left dead would make later changes wait for its ranges.
      const explicit = await Replica.open({ ...quick, nodeId: idA, storage: new FileBlockStore(dirA), joinTimeoutMs: 30000 });
      open.push(explicit);
      assert.equal(explicit.status().nodeId, idA);
    });

    await t.test('a replica reloaded without its data (same nodeId) is refused with IDENTITY at once', async () => {
      // A store in memory (a custom block store: not refused as 'memory' is) joins as
      // n300, writes, and is gone: a reload under the same id starts from nothing.
      const first = await Replica.open({ seeds, nodeId: 300, storage: new CountingStore(), joinTimeoutMs: 30000 });
      await first.put('acknowledged', 'by-300');
      await first.close();
      const started = Date.now();
      await refused(
        Replica.open({ seeds, nodeId: 300, storage: new CountingStore(), joinTimeoutMs: 20000 }),
        identityRefusal,
      );
      assert.ok(Date.now() - started < 5000, `refused at once, not after the join timeout (${Date.now() - started} ms)`);
      // The remedy the error names: remove n300 (gone for good), then the store joins
      // under a new id (no nodeId: assigned), and what n300 acknowledged is still there.
      await change(() => member.remove(300));
      await until("n300 gone from n3's layout", async () => {
        const members = await settledMembers(cluster, 3);
        return members && !members.includes(300);
      });
      const rejoined = await Replica.open({ seeds, storage: new CountingStore(), joinTimeoutMs: 30000 });
      open.push(rejoined);
      assert.ok(rejoined.status().nodeId >= ASSIGNED_MIN, `assigned id ${rejoined.status().nodeId}`);
      assert.equal(await rejoined.get('acknowledged'), 'by-300');
    });

    await t.test('ephemeral replicas get fresh ids and leave the cluster on close', async () => {
      const e1 = await Replica.open({ seeds, ephemeral: true, joinTimeoutMs: 30000 });
      open.push(e1);
      const e2 = await Replica.open({ seeds, ephemeral: true, joinTimeoutMs: 30000 });
      open.push(e2);
      const [id1, id2] = [e1.status().nodeId, e2.status().nodeId];
      assert.ok(id1 >= ASSIGNED_MIN && id2 >= ASSIGNED_MIN && id1 !== id2, `${id1} ${id2}`);
      assert.equal(e1.status().storage, 'memory');
      await e1.put('ephemeral', 'yes');
      assert.equal(await e2.get('ephemeral'), 'yes');
      for (const e of [e1, e2]) {
        const { nodeId } = e.status();
        const closing = Date.now();
        await e.close();
        open.splice(open.indexOf(e), 1);
        console.log(`ephemeral n${nodeId} left and closed in ${Date.now() - closing} ms`);
      }
      await until("the ephemeral replicas gone from n3's layout", async () => {
        const members = await settledMembers(cluster, 3);
        return members && !members.includes(id1) && !members.includes(id2);
      });
    });
  } catch (e) {
    console.error(await cluster.logs());
    throw e;
  } finally {
    await closeAll();
    await cluster.stop();
  }
});

test('re-homing: the host gone, the replica moves to another seed; its id stays its own', async () => {
  const cluster = new Cluster();
  const storeDir = await mkdtemp(join(tmpdir(), 'ringkv-wasm-rehome-'));
  const otherDir = await mkdtemp(join(tmpdir(), 'ringkv-wasm-rehome-other-'));
  after(() => Promise.all([storeDir, otherDir].map((d) => rm(d, { recursive: true, force: true }))));
  let replica;
  try {
    await cluster.start(3);
    const open = () =>
      Replica.open({
        nodeId: REPLICA,
        seeds: [cluster.seed(1), cluster.seed(2)],
        storage: new FileBlockStore(storeDir),
        valueEncoding: 'raw',
        joinTimeoutMs: 30000,
      });
    replica = await open();
    assert.equal(replica.status().transport.host, 1);
    const own = (r) => r.status().members.find((m) => m.id === REPLICA)?.address;
    assert.equal(own(replica), 'relay:1');
    await until('the replica in every native layout', async () => {
      for (const node of cluster.nodes) {
        const members = await settledMembers(cluster, node.id);
        if (!members?.includes(REPLICA)) return false;
      }
      return true;
    });
    const mine = keyWhere(replica, (nodes) => nodes.includes(REPLICA));
    await replica.put(mine, 'before');

    // Its host dies: the replica attaches to n2 with its secret and asks n2 to move it.
    cluster.kill(1);
    const killed = Date.now();
    await until('the replica re-homed to n2', () =>
      replica.status().transport.host === 2 && own(replica) === 'relay:2', 45000);
    await until('n3 sees the replica at relay:2', async () => {
      const s = await cluster.status(3);
      return s.members.find((m) => m.id === REPLICA)?.address === 'relay:2';
    });
    console.log(`re-homed ${Date.now() - killed} ms after its host was killed`);
    assert.equal(text(await replica.get(mine)), 'before');
    for (let i = 0; i < 10; i++) {
      await replica.put(`rehomed-${i}`, `v${i}`);
      assert.equal(text(await replica.get(`rehomed-${i}`)), `v${i}`);
    }
    await replica.put(mine, 'after');
    assert.equal(await resp(cluster.node(3).resp, 'GET', mine), 'after');
    assert.equal(await resp(cluster.node(2).resp, 'GET', 'rehomed-3'), 'v3');

    // Closed, its id is released at the host, but not to another store: a replica
    // holding another store (whoever has the client token) is refused.
    await replica.close();
    replica = undefined;
    const started = Date.now();
    await refused(
      Replica.open({ nodeId: REPLICA, seeds: [cluster.seed(2)], storage: new FileBlockStore(otherDir), joinTimeoutMs: 20000 }),
      identityRefusal,
    );
    assert.ok(Date.now() - started < 5000, `refused at once (${Date.now() - started} ms)`);

    // Its own store reopens it, at n2 (n1 is still down), with its data.
    replica = await open();
    assert.equal(replica.status().transport.host, 2);
    assert.equal(own(replica), 'relay:2');
    assert.equal(text(await replica.get(mine)), 'after');
  } catch (e) {
    console.error(replica?.status?.().transport, await cluster.logs());
    throw e;
  } finally {
    await replica?.close().catch(() => {});
    await cluster.stop();
  }
});
