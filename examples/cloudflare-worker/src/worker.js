// A ringkv replica in a Durable Object, and a stateless Worker in front of it.
//
// The Durable Object (`RingkvReplica`) is one ring member: the ringkv core compiled to
// WebAssembly, its block store the object's transactional storage
// (DurableObjectBlockStore: the key-value API, 64 KiB pages, one atomic write per
// commit), joined to a native cluster through a node's `/replica` relay over an
// outbound WebSocket. The Worker (`default.fetch`) routes `GET/PUT/DELETE /kv/:key`,
// `GET /placement/:key` and `GET /status` to it, answering as examples/edge-node does (ringkv/http).
//
// Lifecycle. The object opens its replica on its first event (a request or its alarm)
// and keeps an alarm every HEARTBEAT_MS: the alarm re-opens the replica after the
// object was evicted or the runtime restarted (alarms are stored and fire again after a
// restart), so the member comes back without waiting for a client. State comes back
// from storage: the files, the node id and the identity secret the replica proves its
// membership with are all in the block store. While the replica is open the relay
// socket reconnects by itself (backoff 250 ms .. 5 s, cycling through the seeds).
//
// Environment (wrangler.toml [vars], or the bindings build.mjs writes for workerd):
//   RINGKV_SEEDS              comma-separated ws:// or wss:// addresses of native nodes
//   RINGKV_TOKEN              the cluster's client token, if it has one
//   RINGKV_NODE_ID            this member's id; unset: the cluster assigns one, kept in storage
//   RINGKV_REPLICA            the Durable Object's name (default "edge-1"): one name, one member
//   RINGKV_ZONE               failure domain (default "edge")
//   RINGKV_STORAGE_BYTES_MAX  bound on the store (held in memory; default 32 MiB, at most 64 MiB)

import { Replica, initWasm } from 'ringkv';
import { DurableObjectBlockStore } from 'ringkv/durable-object-store';
import { serveKvRequest, toResponse, errorAnswer, BODY_BYTES_MAX } from 'ringkv/http';
// A compiled WebAssembly.Module: workerd's `wasm` module type, wrangler's CompiledWasm rule.
import wasmModule from 'ringkv/web/ringkv_wasm_bg.wasm';
// Only handlers may be exported from a Worker's main module: settings live in limits.js.
import { HEARTBEAT_MS, WORKER_DEADLINE_MS, replicaOptions } from './limits.js';

const plain = (status, text) => new Response(text, { status, headers: { 'content-type': 'text/plain' } });

export default {
  /** Stateless: every `/kv/*` and `/status` request goes to the one replica object. */
  async fetch(request, env) {
    const { pathname } = new URL(request.url);
    if (!(pathname.startsWith('/kv/') || pathname.startsWith('/placement/') || pathname === '/status')) {
      return plain(404, 'use /kv/:key, /placement/:key or /status\n');
    }
    const declared = Number(request.headers.get('content-length'));
    if (declared > BODY_BYTES_MAX) return plain(413, `TOO_LARGE: request body over ${BODY_BYTES_MAX} bytes\n`);
    const stub = env.REPLICA.get(env.REPLICA.idFromName(env.RINGKV_REPLICA || 'edge-1'));
    let timer;
    const deadline = new Promise((resolve) => {
      timer = setTimeout(() => resolve(null), WORKER_DEADLINE_MS);
    });
    try {
      const answer = await Promise.race([stub.fetch(request), deadline]);
      if (answer) return answer;
      return request.method === 'GET'
        ? plain(503, `UNAVAILABLE: no answer from the replica within ${WORKER_DEADLINE_MS} ms\n`)
        : plain(504, `INDETERMINATE: no answer from the replica within ${WORKER_DEADLINE_MS} ms; the write may have applied\n`);
    } catch (e) {
      // The object threw or was reset (e.g. storage failure, eviction mid-request): for a
      // write that may have applied, so it is indeterminate.
      return request.method === 'GET'
        ? plain(503, `UNAVAILABLE: replica object failed: ${e?.message ?? e}\n`)
        : plain(504, `INDETERMINATE: replica object failed: ${e?.message ?? e}\n`);
    } finally {
      clearTimeout(timer);
    }
  },
};

export class RingkvReplica {
  #ctx;
  #env;
  #replica = null;
  #opening = null;
  /** For /status: when this instance was created, and its first served request. */
  #edge = { instantiatedAt: Date.now(), openedMs: null, firstServedMs: null, opens: 0, openFailures: 0, lastOpenError: null, alarms: 0 };

  constructor(ctx, env) {
    this.#ctx = ctx;
    this.#env = env;
  }

  /** The open replica, opening it (once, shared by concurrent callers) if needed. */
  #open() {
    if (this.#replica) return Promise.resolve(this.#replica);
    this.#opening ??= (async () => {
      try {
        await initWasm(wasmModule);
        const replica = await Replica.open(replicaOptions(this.#env, new DurableObjectBlockStore(this.#ctx.storage)));
        this.#edge.opens++;
        this.#edge.openedMs ??= Date.now() - this.#edge.instantiatedAt;
        this.#edge.lastOpenError = null;
        replica.on('membership', (e) =>
          console.log(`ringkv n${replica.status().nodeId}: layout v${e.version} ` +
            e.members.map((m) => `n${m.id}:${m.state}`).join(' ')));
        this.#replica = replica;
        return replica;
      } catch (e) {
        this.#edge.openFailures++;
        this.#edge.lastOpenError = String(e?.message ?? e);
        throw e;
      } finally {
        this.#opening = null;
      }
    })();
    return this.#opening;
  }

  /** A replica that failed (its storage commit failed, or it closed) is dropped and reopened. */
  #broken(replica, e) {
    if (this.#replica === replica && (e?.code === 'STORAGE' || e?.code === 'CLOSED')) {
      this.#replica = null;
      replica.close().catch(() => {});
    }
  }

  async #keepAlarm() {
    if ((await this.#ctx.storage.getAlarm()) === null) {
      await this.#ctx.storage.setAlarm(Date.now() + HEARTBEAT_MS);
    }
  }

  async alarm() {
    this.#edge.alarms++;
    // Rescheduled first, so a failed open is retried at the next beat.
    await this.#ctx.storage.setAlarm(Date.now() + HEARTBEAT_MS);
    try {
      const replica = await this.#open();
      if (replica.status().failed) this.#broken(replica, { code: 'STORAGE' });
    } catch (e) {
      console.log(`ringkv: open failed (retried in ${HEARTBEAT_MS} ms): ${e?.message ?? e}`);
    }
  }

  async fetch(request) {
    await this.#keepAlarm();
    let replica;
    try {
      replica = await this.#open();
    } catch (e) {
      return toResponse(errorAnswer(e.code ? e : Object.assign(e, { code: 'UNAVAILABLE' })));
    }
    const response = await serveKvRequest(replica, request, {
      status: () => ({ ...replica.status(), edge: { ...this.#edge } }),
    });
    if (response.status >= 500) {
      const failed = replica.status().failed;
      if (failed) this.#broken(replica, { code: 'STORAGE', message: failed });
    }
    if (this.#edge.firstServedMs === null) this.#edge.firstServedMs = Date.now() - this.#edge.instantiatedAt;
    return response;
  }
}
