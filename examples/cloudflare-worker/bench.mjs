// Side by side: the Worker replica (this example: a Durable Object under workerd) and the
// Node edge replica (examples/edge-node), each joined to its own fresh 3-node native
// cluster on this machine, driven over HTTP /kv/:key. Prints, for each:
// - PUTs and GETs per second (closed loop, CLIENTS concurrent clients for SECONDS each,
//   100-byte values over 1,000 keys) with p50/p99 latency, and the same at 1 client;
// - cold start, ROUNDS times: the process killed (SIGKILL) and started again on its
//   storage, timed from spawn to the first served GET (200), and for the Worker also
//   from the Durable Object's instantiation to that request (its own clock, /status).
//
//   node bench.mjs [--seconds 3] [--clients 16] [--rounds 3]
//
// Needs what the tests need (RINGKV_BIN, wasm/pkg, npm ci here). A program that prints
// numbers, not a test: nothing is asserted beyond every operation succeeding.

import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { NativeCluster, freePort } from '../../scripts/lib/native-cluster.mjs';
import { WorkerdReplica, until } from './test/harness.mjs';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '3' },
    clients: { type: 'string', default: '16' },
    rounds: { type: 'string', default: '3' },
  },
});
const SECONDS = Number(args.seconds);
const CLIENTS = Number(args.clients);
const ROUNDS = Number(args.rounds);
const KEYS = 1000;
const VALUE = 'v'.repeat(100);
const root = fileURLToPath(new URL('../../', import.meta.url));

/** The Node edge replica (examples/edge-node/server.mjs) as a restartable process. */
class NodeEdge {
  static async create(seeds) {
    const dir = await mkdtemp(join(tmpdir(), 'ringkv-bench-edge-'));
    return new NodeEdge(seeds, dir, await freePort());
  }

  constructor(seeds, dir, port) {
    Object.assign(this, { seeds, dir, port, base: `http://127.0.0.1:${port}` });
  }

  async start() {
    const pkg = new URL('wasm/pkg/node.js', `file://${root}`).href;
    this.output = '';
    this.child = spawn(process.execPath, ['--experimental-websocket', join(root, 'examples/edge-node/server.mjs'),
      ...this.seeds.flatMap((s) => ['--seed', s]), '--node-id', '101', '--data', join(this.dir, 'data'),
      '--port', String(this.port)], { env: { ...process.env, RINGKV_PKG: pkg }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout.on('data', (d) => (this.output += d));
    this.child.stderr.on('data', (d) => (this.output += d));
    this.exited = new Promise((r) => this.child.once('exit', r));
    await until('the edge node to serve', () => {
      if (this.child.exitCode !== null) throw new Error(`edge node exited: ${this.output}`);
      return this.output.includes('serving http://');
    }, 60_000);
  }

  async kill() {
    if (this.child?.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGKILL');
      await this.exited;
    }
  }

  async stop() {
    await this.kill();
    await rm(this.dir, { recursive: true, force: true });
  }
}

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];

/** Closed loop of `clients` clients for `seconds`: ops/s and latency percentiles (ms). */
async function loop(base, method, clients, seconds) {
  const latencies = [];
  const end = performance.now() + seconds * 1000;
  let failures = 0;
  const client = async (c) => {
    for (let i = c; performance.now() < end; i += clients) {
      const key = `bench-${i % KEYS}`;
      const t = performance.now();
      const res = await fetch(`${base}/kv/${key}`, method === 'PUT' ? { method, body: VALUE } : {});
      await res.arrayBuffer();
      if (res.status !== (method === 'PUT' ? 204 : 200)) failures++;
      latencies.push(performance.now() - t);
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: clients }, (_, c) => client(c)));
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  if (failures) throw new Error(`${failures} ${method}s failed`);
  return { opsPerSec: latencies.length / elapsed, p50: pct(latencies, 0.5), p99: pct(latencies, 0.99) };
}

async function firstServed(base, key) {
  for (;;) {
    try {
      const res = await fetch(`${base}/kv/${key}`);
      await res.arrayBuffer();
      if (res.status === 200) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function measure(name, make) {
  const cluster = new NativeCluster();
  let target;
  try {
    await cluster.start(3);
    target = await make([cluster.url(1), cluster.url(2)]);
    await target.start();
    // Joined and warmed: every key written once.
    await until('the replica to serve', async () => (await fetch(`${target.base}/kv/warm`, { method: 'PUT', body: 'x' })).status === 204, 60_000);
    await loop(target.base, 'PUT', CLIENTS, 1);
    const rows = [];
    for (const clients of [CLIENTS, 1]) {
      for (const method of ['PUT', 'GET']) {
        const r = await loop(target.base, method, clients, SECONDS);
        rows.push(`  ${method} ${String(clients).padStart(2)} clients: ${r.opsPerSec.toFixed(0).padStart(6)} ops/s  ` +
          `p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms`);
      }
    }
    const colds = [];
    for (let round = 0; round < ROUNDS; round++) {
      await target.kill();
      const t = performance.now();
      await target.start();
      await firstServed(target.base, 'bench-1');
      const cold = { spawnToServedMs: performance.now() - t };
      if (target instanceof WorkerdReplica) {
        const { edge } = await (await fetch(`${target.base}/status`)).json();
        cold.objectToServedMs = edge.firstServedMs;
        cold.objectToOpenMs = edge.openedMs;
      }
      colds.push(cold);
    }
    console.log(`${name}:`);
    for (const row of rows) console.log(row);
    for (const c of colds) {
      console.log(`  cold start: spawn → first served GET ${c.spawnToServedMs.toFixed(0)} ms` +
        (c.objectToServedMs === undefined ? '' : `; object instantiated → replica open ${c.objectToOpenMs} ms → first served ${c.objectToServedMs} ms`));
    }
    if (target.built) console.log(`  bundle: ${(await import('./build.mjs')).describeSizes(target.built.sizes)}`);
  } finally {
    await target?.stop();
    await cluster.stop();
  }
}

console.log(`ringkv edge replicas: ${CLIENTS} and 1 clients, ${SECONDS} s per phase, ${KEYS} keys, 100-byte values, ${ROUNDS} cold starts`);
await measure('Worker replica (Durable Object under workerd)', (seeds) => WorkerdReplica.build(seeds));
await measure('Node edge replica (examples/edge-node)', (seeds) => NodeEdge.create(seeds));
