// One replica per Web Worker: a real ringkv Replica on its own IndexedDB database. Its
// peer frames go to the page (which decides whether the simulated network delivers
// them); the page calls its methods by message. Opened with `seeds` (cluster mode) it
// has no JS transport: it joins a native cluster through a node's relay, and its frames
// go over that WebSocket, never through the page. Messages:
//   page -> worker  { type: 'open', options } | { type: 'frame', from, frame }
//                   | { type: 'call', id, method, args }
//   worker -> page  { type: 'opened' } | { type: 'open-failed', error }
//                   | { type: 'send', to, frame, kind } | { type: 'reply', id, ok, value, error }
//                   | { type: 'snapshot', status, ring }

import * as ringkv from '/pkg/browser.js';

const SNAPSHOT_MS = 400;
const OPEN_RETRY_MS = 10_000; // a killed predecessor's IndexedDB lock takes a moment to go

let replica = null;

const errorOf = (e) => ({ code: e?.code ?? 'ERROR', name: e?.name ?? 'Error', message: String(e?.message ?? e) });

const transport = {
  send(to, frame) {
    // A copy, so transferring it never detaches memory the replica still uses.
    const copy = frame.slice();
    let kind = 'Frame';
    try {
      kind = ringkv.frameKind ? ringkv.frameKind(copy) : kind;
    } catch {
      kind = 'Undecodable';
    }
    postMessage({ type: 'send', to: Number(to), frame: copy, kind }, [copy.buffer]);
  },
};

async function open(options) {
  const deadline = Date.now() + OPEN_RETRY_MS;
  for (;;) {
    try {
      return await ringkv.Replica.open({ ...options, storage: 'indexeddb', ...(options.seeds ? {} : { transport }) });
    } catch (e) {
      if (e?.code !== 'STORAGE' || Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

function snapshot() {
  if (!replica) return;
  try {
    postMessage({ type: 'snapshot', status: replica.status(), ring: replica.ring() });
  } catch (e) {
    postMessage({ type: 'snapshot', error: errorOf(e) });
  }
}

// The page's calls; each returns something structured-cloneable.
const methods = {
  put: (key, value, opts) => replica.put(key, value, opts),
  get: (key, opts) => replica.get(key, opts),
  delete: (key, opts) => replica.delete(key, opts),
  async siblings(key, opts) {
    const { values, context } = await replica.getSiblings(key, opts);
    return { values, context, version: ringkv.describeContext ? ringkv.describeContext(context) : null };
  },
  preferenceList: (key) => replica.preferenceList(key),
  join: (spec) => replica.join(spec),
  leave: (id) => replica.leave(id),
  remove: (id, options) => replica.remove(id, options),
  async close() {
    await replica.close();
    replica = null;
  },
};

self.onmessage = async ({ data: m }) => {
  if (m.type === 'frame') {
    // Frames that arrive before the replica is open are lost, as on a real network.
    try {
      replica?.deliver(m.from, m.frame);
    } catch (e) {
      console.warn(`node deliver failed: ${e?.message ?? e}`);
    }
  } else if (m.type === 'call') {
    try {
      if (!replica) throw Object.assign(new Error('the replica is not open'), { code: 'CLOSED' });
      const value = await methods[m.method](...m.args);
      postMessage({ type: 'reply', id: m.id, ok: true, value });
    } catch (e) {
      postMessage({ type: 'reply', id: m.id, ok: false, error: errorOf(e) });
    }
  } else if (m.type === 'open') {
    try {
      replica = await open(m.options);
      replica.on?.('membership', snapshot);
      setInterval(snapshot, SNAPSHOT_MS);
      postMessage({ type: 'opened' });
      snapshot();
    } catch (e) {
      postMessage({ type: 'open-failed', error: errorOf(e) });
    }
  }
};
