// Runs in the benchmark page (headless Chromium): the same workload against a ringkv
// replica on IndexedDB and against raw IndexedDB, all at `durability: 'strict'`.

import { Replica } from '/pkg/browser.js';

const value = (i) => ({ id: i, name: `user-${i}`, tags: ['a', 'b'], score: i * 1.5, bio: 'x'.repeat(100) });
const now = () => performance.now();
const rate = (n, ms) => Math.round((n * 1000) / ms);

function req(r) {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

function done(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error ?? new Error('aborted'));
  });
}

async function fresh(name) {
  await req(indexedDB.deleteDatabase(name));
}

async function openRaw(name) {
  await fresh(name);
  const open = indexedDB.open(name, 1);
  open.onupgradeneeded = () => open.result.createObjectStore('kv');
  return req(open);
}

// Puts `n` values issuing at most `window` at once (window 1 = await each put).
async function windowed(n, window, put) {
  let next = 0;
  const worker = async () => {
    while (next < n) await put(next++);
  };
  await Promise.all(Array.from({ length: window }, worker));
}

const rawPut = (db) => (i) => {
  const tx = db.transaction('kv', 'readwrite', { durability: 'strict' });
  tx.objectStore('kv').put(value(i), `k${i}`);
  return done(tx);
};

export async function run({ puts, gets, window, batch }) {
  const out = { puts, gets, window, batch, results: {} };
  const record = (name, n, ms) => (out.results[name] = { ops: n, ms: Math.round(ms), perSecond: rate(n, ms) });

  // ringkv replica on IndexedDB.
  await fresh('bench-ringkv');
  let r = await Replica.open({ storage: 'indexeddb', database: 'bench-ringkv' });
  let t = now();
  await windowed(puts, 1, (i) => r.put(`k${i}`, value(i)));
  record('replica put (sequential)', puts, now() - t);
  t = now();
  await windowed(puts, window, (i) => r.put(`c${i}`, value(i)));
  record(`replica put (${window} in flight)`, puts, now() - t);
  t = now();
  for (let i = 0; i < gets; i++) await r.get(`k${i % puts}`);
  record('replica get (sequential)', gets, now() - t);
  out.replicaStatus = r.status();
  await r.close();
  // The data is really in IndexedDB: reopen and read one back.
  r = await Replica.open({ storage: 'indexeddb', database: 'bench-ringkv' });
  const back = await r.get(`c${puts - 1}`);
  if (back?.id !== puts - 1) throw new Error('replica lost data across reopen');
  await r.close();

  // Raw IndexedDB, one transaction per put (idb-keyval style).
  let db = await openRaw('bench-raw');
  t = now();
  await windowed(puts, 1, rawPut(db));
  record('raw IndexedDB put, 1 tx/put (sequential)', puts, now() - t);
  t = now();
  await windowed(puts, window, rawPut(db));
  record(`raw IndexedDB put, 1 tx/put (${window} in flight)`, puts, now() - t);
  t = now();
  for (let i = 0; i < gets; i++) {
    const tx = db.transaction('kv', 'readonly');
    await req(tx.objectStore('kv').get(`k${i % puts}`));
  }
  record('raw IndexedDB get, 1 tx/get (sequential)', gets, now() - t);
  db.close();

  // Raw IndexedDB, `batch` puts per transaction.
  db = await openRaw('bench-raw-batched');
  t = now();
  for (let start = 0; start < puts; start += batch) {
    const tx = db.transaction('kv', 'readwrite', { durability: 'strict' });
    const store = tx.objectStore('kv');
    for (let i = start; i < Math.min(puts, start + batch); i++) store.put(value(i), `k${i}`);
    await done(tx);
  }
  record(`raw IndexedDB put, ${batch} puts/tx`, puts, now() - t);
  db.close();
  return out;
}
