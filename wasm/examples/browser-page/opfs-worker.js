// A dedicated worker running a replica on storage 'opfs'. Messages from opfs.html:
//   { op: 'write', from, count, size }  puts keys from..from+count (values of `size` bytes),
//                                       posting { acked: i } after each acknowledgement
//   { op: 'verify', upTo }               reads keys 0..upTo, posts { ok, missing, status }
import { Replica } from './node_modules/ringkv/browser.js';

const value = (i, size) => `v${i}:`.padEnd(size, 'x');
let replica;

onmessage = async ({ data }) => {
  try {
    replica ??= await Replica.open({ storage: 'opfs', database: 'check', nodeId: 1 });
    if (data.op === 'write') {
      for (let i = data.from; i < data.from + data.count; i++) {
        await replica.put(`k${i % data.keys}`, value(i, data.size));
        postMessage({ acked: i });
      }
      postMessage({ done: true });
    } else if (data.op === 'verify') {
      let missing = 0;
      // Key k holds the value of the last write to it (writes cycle through `keys`).
      for (let k = 0; k < data.keys; k++) {
        const last = data.lastAcked - ((data.lastAcked - k) % data.keys + data.keys) % data.keys;
        if (last < 0) continue;
        const got = await replica.get(`k${k}`);
        // An unacknowledged later write may have landed too; never an older one.
        const index = Number(String(got).slice(1, String(got).indexOf(':')));
        if (!(index >= last)) missing++;
      }
      const s = replica.status();
      // The journal's generation (journal-<n>): above 1 once a compaction has run.
      const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle('ringkv-check');
      const journals = [];
      for await (const name of dir.keys()) journals.push(name);
      postMessage({ verified: true, missing, storage: s.storage, journals });
    }
  } catch (e) {
    postMessage({ error: `${e.code ?? ''} ${e.message}` });
  }
};
