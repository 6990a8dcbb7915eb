// Test and benchmark helpers: a built Worker served by a real workerd process beside a
// real native cluster (scripts/lib/native-cluster.mjs), and a small HTTP client for it.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { freePort } from '../../../scripts/lib/native-cluster.mjs';
import { buildWorker } from '../build.mjs';
import { startWorkerd } from '../workerd.mjs';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns something truthy; fails after `limitMs` with the last error. */
export async function until(what, check, limitMs = 30_000) {
  const start = Date.now();
  let last;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (e) {
      last = e;
    }
    if (Date.now() - start > limitMs) throw new Error(`timed out after ${limitMs} ms waiting for ${what}: ${last?.message ?? ''}`);
    await sleep(50);
  }
}

/** One workerd process serving the example, on a fixed port and storage directory. */
export class WorkerdReplica {
  /** Builds the Worker for `seeds` into a fresh directory. */
  static async build(seeds, { nodeId } = {}) {
    const dir = await mkdtemp(join(tmpdir(), 'ringkv-workerd-'));
    const port = await freePort();
    const built = await buildWorker({ seeds, port, data: join(dir, 'storage'), out: join(dir, 'dist'), nodeId });
    return new WorkerdReplica(dir, port, built);
  }

  constructor(dir, port, built) {
    this.dir = dir;
    this.port = port;
    this.built = built;
    this.base = `http://127.0.0.1:${port}`;
    this.output = '';
    this.child = null;
  }

  /** Starts workerd; resolves once it accepts HTTP (the replica object is not opened by this). */
  async start() {
    const child = startWorkerd(this.built.config, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.startedAt = Date.now();
    child.stdout.on('data', (d) => (this.output += d));
    child.stderr.on('data', (d) => (this.output += d));
    this.exited = new Promise((r) => child.once('exit', r));
    await until('workerd to listen', () => {
      if (child.exitCode !== null) throw new Error(`workerd exited: ${this.output}`);
      return probe(this.base);
    }, 20_000);
    return this;
  }

  /** SIGKILL (a crash); resolves once the process is gone. */
  async kill() {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGKILL');
      await this.exited;
    }
  }

  /** The replica's status (opens the object's replica if needed). */
  async status() {
    const res = await fetch(`${this.base}/status`);
    if (res.status !== 200) throw new Error(`/status: ${res.status} ${await res.text()}`);
    return res.json();
  }

  async placement(key) {
    return (await fetch(`${this.base}/placement/${encodeURIComponent(key)}`)).json();
  }

  /** PUT: `{ status, body }`. */
  async put(key, value) {
    const res = await fetch(`${this.base}/kv/${encodeURIComponent(key)}`, { method: 'PUT', body: value });
    return { status: res.status, body: await res.text() };
  }

  /** GET: `{ status, body }` (body: the value's text on 200). */
  async get(key) {
    const res = await fetch(`${this.base}/kv/${encodeURIComponent(key)}`);
    return { status: res.status, body: await res.text() };
  }

  async del(key) {
    const res = await fetch(`${this.base}/kv/${encodeURIComponent(key)}`, { method: 'DELETE' });
    return { status: res.status, body: await res.text() };
  }

  async stop() {
    await this.kill();
    if (!process.env.RINGKV_KEEP_LOGS) await rm(this.dir, { recursive: true, force: true });
  }
}

/** Whether something answers HTTP at `base` (any status). */
async function probe(base) {
  try {
    await fetch(`${base}/`);
    return true;
  } catch {
    return false;
  }
}

/** Native node `id`'s settled layout members (null while a change is pending). */
export async function settledMembers(cluster, id) {
  const s = await cluster.status(id);
  return s.membership.pending_version === null ? s.members : null;
}
