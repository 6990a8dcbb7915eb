// The page's side of one replica worker: start it, call it, kill it. A kill is
// worker.terminate(): the replica gets no chance to finish anything, and what its
// IndexedDB had committed is what a restart finds.

const CALL_TIMEOUT_MS = 15_000;

export class NodeHandle {
  /**
   * @param {number} id
   * @param {{ options: object, onSend: Function, onSnapshot: Function, onState: Function }} hooks
   *   options: Replica.open options (without storage/transport, added in the worker)
   */
  constructor(id, { options, onSend, onSnapshot, onState }) {
    this.id = id;
    this.options = options;
    this.onSend = onSend;
    this.onSnapshot = onSnapshot;
    this.onState = onState;
    this.state = 'stopped'; // stopped | starting | running | killed | failed
    this.error = null;
    this.snapshot = null;
    this.worker = null;
    this.calls = new Map();
    this.nextCall = 1;
  }

  get running() {
    return this.state === 'running';
  }

  /** Starts the worker and opens the replica; resolves when open (or failed). */
  start() {
    if (this.worker) this.kill();
    const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module', name: `ringkv node ${this.id}` });
    this.worker = worker;
    this.snapshot = null; // a killed node's last status is not what the new one sees
    this.error = null;
    this.#setState('starting');
    return new Promise((resolve) => {
      worker.onmessage = ({ data: m }) => {
        if (worker !== this.worker) return;
        if (m.type === 'send') this.onSend(this.id, m.to, m.frame, m.kind);
        else if (m.type === 'reply') this.#settle(m);
        else if (m.type === 'snapshot') {
          this.snapshot = m.error ? { ...this.snapshot, error: m.error } : { status: m.status, ring: m.ring, at: performance.now() };
          this.onSnapshot(this.id);
        } else if (m.type === 'opened') {
          this.#setState('running');
          resolve(true);
        } else if (m.type === 'open-failed') {
          this.error = m.error;
          this.#setState('failed');
          resolve(false);
        }
      };
      worker.onerror = (e) => {
        this.error = { code: 'WORKER', message: e.message ?? 'worker error' };
        if (this.state === 'starting') {
          this.#setState('failed');
          resolve(false);
        }
      };
      worker.postMessage({ type: 'open', options: this.options });
    });
  }

  /** Hard kill: terminates the worker; calls in flight fail with code KILLED. */
  kill() {
    if (!this.worker) return;
    this.worker.terminate();
    this.worker = null;
    for (const { reject, timer } of this.calls.values()) {
      clearTimeout(timer);
      reject(Object.assign(new Error(`node ${this.id} was killed`), { code: 'KILLED' }));
    }
    this.calls.clear();
    this.#setState('killed');
  }

  /** Hands the replica a frame from node `from` (dropped unless running). */
  deliver(from, frame) {
    if (this.state !== 'running') return false;
    this.worker.postMessage({ type: 'frame', from, frame }, [frame.buffer]);
    return true;
  }

  /** Calls a replica method in the worker (worker.js `methods`). */
  call(method, args = [], { timeoutMs = CALL_TIMEOUT_MS } = {}) {
    if (!this.worker || this.state !== 'running') {
      return Promise.reject(Object.assign(new Error(`node ${this.id} is ${this.state}`), { code: 'DOWN' }));
    }
    const id = this.nextCall++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.calls.delete(id);
        reject(Object.assign(new Error(`node ${this.id}: no answer to ${method} in ${timeoutMs} ms`), { code: 'TIMEOUT' }));
      }, timeoutMs);
      this.calls.set(id, { resolve, reject, timer });
      this.worker.postMessage({ type: 'call', id, method, args });
    });
  }

  #settle(m) {
    const call = this.calls.get(m.id);
    if (!call) return;
    this.calls.delete(m.id);
    clearTimeout(call.timer);
    if (m.ok) call.resolve(m.value);
    else call.reject(Object.assign(new Error(m.error.message), m.error));
  }

  #setState(state) {
    this.state = state;
    this.onState(this.id, state);
  }
}
