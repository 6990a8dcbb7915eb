// A real native ringkv cluster for the JS tests (wasm/js/test, the browser checks,
// web-demo/e2e): `ringkv serve` processes on loopback with free ports, started with one
// `--member` list, and a minimal RESP client to talk to them.
//
// The binary: $RINGKV_BIN (scripts/test sets it to the one optimized build of the run),
// else $CARGO_TARGET_DIR/proc-test/ringkv, else target/proc-test/ringkv (build it with
// `cargo build -p ringkv --profile proc-test`; a relative CARGO_TARGET_DIR is taken
// from the repository root, as cargo does).

import { spawn } from 'node:child_process';
import { existsSync, openSync, closeSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const SECRET = 'web-demo-cluster-test-secret';

export function ringkvBin() {
  if (process.env.RINGKV_BIN) return resolve(process.env.RINGKV_BIN);
  return join(resolve(root, process.env.CARGO_TARGET_DIR ?? 'target'), 'proc-test', 'ringkv');
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Ports this process handed out: the kernel may give a just-released port again, and
 * two nodes of one cluster on one port fail to start (a CI run saw n3's peer port equal
 * n1's RESP port). */
const handedOut = new Set();

function probePort() {
  return new Promise((resolvePort, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

/** A port free now and not handed out before by this process. */
export async function freePort() {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = await probePort();
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('no fresh free port in 100 attempts');
}

/** One RESP command on a fresh connection: the reply ('OK', a string, null, or an Error). */
export function resp(port, ...args) {
  return new Promise((resolveReply, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let buffer = Buffer.alloc(0);
    socket.setTimeout(10_000, () => socket.destroy(new Error('RESP timeout')));
    socket.on('error', reject);
    socket.on('data', (chunk) => {
      buffer = Buffer.concat([buffer, chunk]);
      const line = buffer.indexOf('\r\n');
      if (line < 0) return;
      const head = buffer.subarray(0, line).toString();
      let reply;
      if (head[0] === '+') reply = head.slice(1);
      else if (head[0] === '-') reply = new Error(head.slice(1));
      else if (head === '$-1') reply = null;
      else if (head[0] === '$') {
        const len = Number(head.slice(1));
        if (buffer.length < line + 2 + len + 2) return;
        reply = buffer.subarray(line + 2, line + 2 + len).toString();
      } else reply = head;
      socket.end();
      resolveReply(reply);
    });
    socket.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`);
  });
}

export class NativeCluster {
  nodes = [];

  /**
   * Starts `n` nodes (ids 1..n, named n1..nn) and waits until each is a member of all n.
   * `extra`: more `serve` arguments for every node (e.g. --auth-token).
   */
  async start(n = 3, { timeoutMs = 30_000, extra = [] } = {}) {
    const bin = ringkvBin();
    if (!existsSync(bin)) {
      throw new Error(`no ringkv binary at ${bin}: build it (cargo build -p ringkv --profile proc-test) or set RINGKV_BIN`);
    }
    this.dir = await mkdtemp(join(tmpdir(), 'ringkv-demo-native-'));
    for (let id = 1; id <= n; id++) {
      this.nodes.push({ id, ws: await freePort(), resp: await freePort(), http: await freePort() });
    }
    const members = this.nodes.map((p) => `n${p.id}@127.0.0.1:${p.ws}`).join(',');
    for (const node of this.nodes) {
      node.log = join(this.dir, `n${node.id}.log`);
      const out = openSync(node.log, 'a');
      node.process = spawn(bin, ['serve', '--node-id', `n${node.id}`, '--listen', `127.0.0.1:${node.ws}`,
        '--resp', `127.0.0.1:${node.resp}`, '--http', `127.0.0.1:${node.http}`,
        '--data-dir', join(this.dir, `n${node.id}`), '--cluster-secret', SECRET,
        ...(n > 1 ? ['--member', members] : []), ...extra], { stdio: ['ignore', out, out] });
      closeSync(out);
      node.exited = new Promise((r) => node.process.once('exit', r));
    }
    const deadline = Date.now() + timeoutMs;
    for (const node of this.nodes) {
      for (;;) {
        try {
          const s = await this.status(node.id);
          if (s.role === 'member' && s.members.length === n) break;
        } catch {}
        if (node.process.exitCode !== null) throw new Error(`n${node.id} exited: ${await this.logs()}`);
        if (Date.now() > deadline) throw new Error(`n${node.id} did not become a member in ${timeoutMs} ms`);
        await sleep(100);
      }
    }
    return this;
  }

  node(id) {
    return this.nodes.find((n) => n.id === id);
  }

  /** SIGKILL of node `id` (a crash). */
  kill(id) {
    this.node(id).process.kill('SIGKILL');
  }

  /** ws://127.0.0.1:PORT of node `id` (a seed; what the page's ?cluster= takes). */
  url(id = 1) {
    return `ws://127.0.0.1:${this.node(id).ws}`;
  }

  /** Node `id`'s HTTP /status document. */
  async status(id) {
    const res = await fetch(`http://127.0.0.1:${this.node(id).http}/status`);
    return res.json();
  }

  resp(id, ...args) {
    return resp(this.node(id).resp, ...args);
  }

  async logs(chars = 3000) {
    const parts = await Promise.all(this.nodes.map((n) => readFile(n.log, 'utf8').catch(() => '')));
    return parts.map((log, i) => `--- n${this.nodes[i].id}\n${log.slice(-chars)}`).join('\n');
  }

  async stop() {
    for (const node of this.nodes) {
      if (node.process && node.process.exitCode === null) node.process.kill('SIGKILL');
    }
    await Promise.all(this.nodes.map((n) => n.exited));
    if (this.dir && !process.env.RINGKV_KEEP_LOGS) await rm(this.dir, { recursive: true, force: true });
  }
}
