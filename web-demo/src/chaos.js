// Chaos mode: keeps injecting faults (kills and restarts, partitions, cut links, loss,
// latency) while background clients write unique values to a few keys and read them
// through random coordinators. Every operation goes to the linearizability checker.
// Stopping heals everything, restarts the killed nodes, waits for the cluster, and
// reads every key once more: a final read the history cannot explain is a lost
// acknowledged write (or a resurrected value).

import { Checker } from './checker.js';

const KEYS = 4;
const CLIENTS = 4;
const CALL_TIMEOUT_MS = 10_000;
const SETTLE_MS = 45_000;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pick = (arr) => arr[Math.floor(Math.random() * arr.length)];
const between = (lo, hi) => lo + Math.random() * (hi - lo);

export class Chaos {
  /** killsOnly: inject kills and restarts only (cluster mode: the page carries no frames). */
  constructor(cluster, { log, onUpdate, killsOnly = false }) {
    this.killsOnly = killsOnly;
    this.cluster = cluster;
    this.network = cluster.network;
    this.log = log;
    this.onUpdate = onUpdate;
    this.phase = 'idle'; // idle | running | settling | done
    this.report = null;
  }

  #fresh() {
    this.runId = Math.random().toString(36).slice(2, 8);
    this.keys = Array.from({ length: KEYS }, (_, i) => `chaos-${this.runId}-${i}`);
    this.checker = new Checker();
    this.seq = 0;
    this.reverts = new Set(); // pending timers undoing a fault
    this.stats = { ackedWrites: 0, reads: 0, unavailable: 0, indeterminate: 0, readFailures: 0, faults: 0, violations: 0, lost: 0 };
    this.found = [];
  }

  get running() {
    return this.phase === 'running';
  }

  start() {
    if (this.phase === 'running' || this.phase === 'settling') return;
    this.#fresh();
    this.phase = 'running';
    this.report = null;
    this.t0 = performance.now();
    this.log.add(`chaos: started (keys ${this.keys[0]}…, ${CLIENTS} clients)`, 'log-fault');
    this.loops = [this.#faults(), ...Array.from({ length: CLIENTS }, () => this.#client())];
    this.ticker = setInterval(() => this.#check(), 1000);
  }

  #running() {
    return [...this.cluster.nodes.values()].filter((n) => n.running).map((n) => n.id);
  }

  async #client() {
    while (this.phase === 'running') {
      const ids = this.#running();
      if (ids.length === 0) {
        await sleep(100);
        continue;
      }
      await this.#op(pick(this.keys), pick(ids), Math.random() < 0.5);
      await sleep(Math.random() * 15);
    }
  }

  async #op(key, node, write) {
    const value = write ? `${this.runId}:${++this.seq}` : undefined;
    const id = this.checker.invoke(key, performance.now());
    try {
      const args = write ? [key, value, { consistency: 'linearizable' }] : [key, { consistency: 'linearizable' }];
      const got = await this.cluster.call(node, write ? 'put' : 'get', args, { timeoutMs: CALL_TIMEOUT_MS });
      this.checker.complete(id, write ? 'write' : 'read', write ? value : got, performance.now(), 'ok');
      if (write) this.stats.ackedWrites++;
      else this.stats.reads++;
      return true;
    } catch (e) {
      // UNAVAILABLE: the write did not happen. Anything else (INDETERMINATE, the
      // coordinator killed, a timeout): it may have.
      const outcome = !write ? 'failed' : e.code === 'UNAVAILABLE' ? 'unavailable' : 'indeterminate';
      this.checker.complete(id, write ? 'write' : 'read', value, performance.now(), outcome);
      if (!write) this.stats.readFailures++;
      else this.stats[outcome]++;
      return false;
    }
  }

  // Undoes a fault after `ms` unless settling undoes everything first.
  #later(ms, undo) {
    const t = setTimeout(() => {
      this.reverts.delete(t);
      undo();
    }, ms);
    this.reverts.add(t);
  }

  async #faults() {
    while (this.phase === 'running') {
      await sleep(between(800, 2500));
      if (this.phase !== 'running') break;
      this.#inject();
    }
  }

  #inject() {
    const ids = [...this.cluster.nodes.keys()];
    const running = this.#running();
    const roll = this.killsOnly ? 0 : Math.random();
    let what;
    if (this.killsOnly && !(ids.length - running.length < 2 && running.length > 0)) return;
    if (roll < 0.3 && ids.length - running.length < 2 && running.length > 0) {
      const id = pick(running);
      this.cluster.kill(id);
      this.#later(between(1500, 6000), () => this.cluster.restart(id));
      what = `kill node ${id}`;
    } else if (roll < 0.55 && !this.network.partitioned) {
      const shuffled = [...ids].sort(() => Math.random() - 0.5);
      const k = 1 + Math.floor(Math.random() * (ids.length - 1));
      this.network.partition(shuffled.slice(0, k), shuffled.slice(k));
      this.#later(between(2000, 6000), () => this.network.heal());
      what = `partition {${shuffled.slice(0, k).join(',')}} | {${shuffled.slice(k).join(',')}}`;
    } else if (roll < 0.7) {
      const [a, b] = [...ids].sort(() => Math.random() - 0.5);
      if (!this.network.isCut(a, b)) {
        this.network.toggleLink(a, b);
        this.#later(between(1500, 5000), () => this.network.isCut(a, b) && this.network.toggleLink(a, b));
      }
      what = `cut link ${a}-${b}`;
    } else if (roll < 0.85) {
      const before = this.network.lossRate;
      this.network.lossRate = 0.2;
      this.#later(3000, () => (this.network.lossRate = before));
      what = 'drop 20% of frames for 3 s';
    } else {
      const before = [this.network.latencyMs, this.network.jitterMs];
      this.network.latencyMs = 20;
      this.network.jitterMs = 60;
      this.#later(3000, () => ([this.network.latencyMs, this.network.jitterMs] = before));
      what = 'latency 20–80 ms for 3 s (reordering)';
    }
    this.stats.faults++;
    this.log.add(`chaos: ${what}`, 'log-fault');
    this.onUpdate();
  }

  #check() {
    const found = this.checker.check();
    for (const v of found) this.log.add(`VIOLATION ${v.message}`, 'log-error');
    this.found.push(...found.slice(0, Math.max(0, 20 - this.found.length)));
    this.stats.violations += found.length;
    this.onUpdate();
    return found;
  }

  /** Stops injecting, heals, waits for the cluster, reads every key: the report. */
  async stop({ baseline } = {}) {
    if (this.phase !== 'running') return this.report;
    this.phase = 'settling';
    this.onUpdate();
    for (const t of this.reverts) clearTimeout(t);
    this.reverts.clear();
    await Promise.all(this.loops);
    this.network.heal();
    Object.assign(this.network, baseline ?? {});
    await Promise.all([...this.cluster.nodes.values()].filter((n) => n.state === 'killed' || n.state === 'failed').map((n) => this.cluster.restart(n.id)));
    this.log.add('chaos: stopped; network healed, nodes restarted; final reads', 'log-fault');
    this.#check();
    const finalFailed = await this.#finalReads();
    const before = this.stats.violations;
    this.#check();
    this.stats.lost = this.stats.violations - before;
    this.stats.violations = before;
    clearInterval(this.ticker);
    const t = this.checker.totals();
    this.report = {
      seconds: Math.round((performance.now() - this.t0) / 1000),
      ...this.stats,
      finalReadsFailed: finalFailed,
      checkedOps: t.checked,
      inconclusive: t.inconclusive,
      violationsFound: this.found.map((v) => v.message),
    };
    this.phase = 'done';
    this.log.add(`chaos: done: ${JSON.stringify({ ...this.report, violationsFound: undefined })}`);
    this.onUpdate();
    return this.report;
  }

  // One successful linearizable read per key (retried until SETTLE_MS); returns how
  // many keys could not be read.
  async #finalReads() {
    const deadline = performance.now() + SETTLE_MS;
    let failed = 0;
    for (const key of this.keys) {
      let ok = false;
      while (!ok && performance.now() < deadline) {
        const ids = this.#running();
        ok = ids.length > 0 && (await this.#op(key, pick(ids), false));
        if (!ok) await sleep(250);
      }
      if (!ok) failed++;
    }
    return failed;
  }
}
