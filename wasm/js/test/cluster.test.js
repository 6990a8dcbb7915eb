// A wasm replica (the built package, in Node) joins a 3-node native cluster of real
// `ringkv serve` processes through a node's relay, and shares one ring with them:
// values written through RESP read back through the replica and the other way round;
// the replica survives a restart from its file store; with one native node killed its
// linearizable reads and writes still succeed; with two of a key's three replicas
// killed, that key's linearizable operations fail with UNAVAILABLE. `Client` talks to
// the same cluster over the client protocol.
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
const { Replica, Client, FileBlockStore, UnavailableError, InvalidArgumentError } = await import(pkg);

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
    await assert.rejects(
      Replica.open({ nodeId: 7, seeds: [cluster.seed(1)], token: 'wrong-token' }),
      (e) => e instanceof InvalidArgumentError && /token/.test(e.message),
    );
    assert.ok(Date.now() - started < 10000, 'refused without waiting for the join timeout');
    await assert.rejects(
      Client.connect([cluster.seed(1)], { token: 'wrong-token' }),
      (e) => e instanceof InvalidArgumentError && /invalid token/.test(e.message),
    );
    const replica = await Replica.open({ nodeId: 7, seeds: [cluster.seed(1)], token: 'right-token' });
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
