import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rangeSync } from '../src/sync.js';

const st = (ranges, v = 3) => ({ layoutVersion: v, pendingVersion: null, ranges });
const rg = (start, end, replicas, root) => ({ start, end, replicas, root });

test('co-replicas with equal roots are in sync; different roots diverge', () => {
  const s = rangeSync(new Map([
    [1, st([rg(0, 0.5, [1, 2], 'aa'), rg(0.5, 1, [1, 2], 'bb')])],
    [2, st([rg(0, 0.5, [1, 2], 'aa'), rg(0.5, 1, [1, 2], 'cc')])],
  ]));
  assert.deepEqual(s.ranges.map((r) => r.state), ['in-sync', 'diverged']);
  assert.deepEqual(s.perNode.get(1), { inSync: 1, total: 2 });
  assert.equal(s.allInSync, false);
});

test('all in sync only when every replica reports, one layout, nothing pending', () => {
  const a = st([rg(0, 1, [1, 2], 'aa')]);
  assert.equal(rangeSync(new Map([[1, a], [2, a]])).allInSync, true);
  assert.equal(rangeSync(new Map([[1, a]])).ranges[0].state, 'partial');
  assert.equal(rangeSync(new Map([[1, a]])).allInSync, false);
  assert.equal(rangeSync(new Map([[1, a], [2, st(a.ranges, 4)]])).allInSync, false);
  assert.equal(rangeSync(new Map([[1, a], [2, { ...a, pendingVersion: 4 }]])).allInSync, false);
  assert.equal(rangeSync(new Map()).allInSync, false);
});
