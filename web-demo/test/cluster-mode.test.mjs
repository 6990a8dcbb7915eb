import { test } from 'node:test';
import assert from 'node:assert/strict';
import { naming, CLUSTER_FIRST_ID } from '../src/cluster.js';
import { memberUrl, nativeFacts } from '../src/native-status.js';

test('the in-page mode and cluster mode (per cluster URL) never share a database or a saved node set', () => {
  const page = naming(null);
  const a = naming('ws://127.0.0.1:7001');
  const b = naming('ws://127.0.0.1:7002');
  assert.equal(page.database(1), 'ringkv-demo-1', 'the in-page mode keeps its names');
  assert.equal(page.storeKey, 'ringkv-demo:nodes');
  assert.equal(a.database(101), 'ringkv-demo-cluster-127.0.0.1_7001-101');
  assert.ok(a.database(101).startsWith(a.prefix));
  assert.notEqual(a.database(101), b.database(101));
  assert.notEqual(a.storeKey, b.storeKey);
  assert.notEqual(a.storeKey, page.storeKey);
  assert.equal(a.ids[0], CLUSTER_FIRST_ID);
  assert.ok(!a.ids.some((id) => page.ids.includes(id)), 'cluster-mode ids are not in-page ids (nor n1..n9)');
});

test('native members are polled at their address, in the seed\'s scheme; relayed ones are not', () => {
  assert.equal(memberUrl('127.0.0.1:7002', 'ws://127.0.0.1:7001'), 'ws://127.0.0.1:7002');
  assert.equal(memberUrl('db.example:443', 'wss://db.example'), 'wss://db.example:443');
  assert.equal(memberUrl('relay:1', 'ws://127.0.0.1:7001'), null);
  assert.equal(memberUrl(null, 'ws://127.0.0.1:7001'), null);
});

test('a native node\'s card facts come from its status document', () => {
  const doc = {
    role: 'member', layout_version: 6, membership: { pending_version: 7 },
    members: [{ hints_held_for: 2 }, { hints_held_for: 1 }],
    anti_entropy: { ranges_exchanged: 10, exchanges_repaired: 1 },
  };
  assert.equal(nativeFacts(doc), 'member · layout v6→v7 · hints 3 · anti-entropy: 10 range exchanges, 1 repaired');
});
