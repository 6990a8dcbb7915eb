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
  assert.deepEqual(s.perNode.get(1), { inSync: 1, total: 2, unobserved: 0 });
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

test('cluster mode: native replicas are unobservable; ranges compare among the rest', () => {
  const native = new Set([1]);
  // Ranges: [1, 101, 102] (two observable replicas), [1, 2, 101] with 2 native too
  // (one observable: nothing to compare).
  const a = (root) => st([rg(0, 0.5, [1, 101, 102], root), rg(0.5, 1, [1, 2, 101], 'xx')]);
  const b = (root) => st([rg(0, 0.5, [1, 101, 102], root)]);
  const unobservable = new Set([...native, 2]);
  const s = rangeSync(new Map([[101, a('aa')], [102, b('aa')]]), { unobservable });
  assert.deepEqual(s.ranges.map((r) => r.state), ['in-sync', 'unobserved']);
  assert.deepEqual(s.perNode.get(101), { inSync: 1, total: 1, unobserved: 1 });
  assert.equal(s.unobserved, 1);
  assert.equal(s.allInSync, true);
  const d = rangeSync(new Map([[101, a('aa')], [102, b('bb')]]), { unobservable });
  assert.equal(d.ranges[0].state, 'diverged');
  assert.equal(d.allInSync, false);
  const missing = rangeSync(new Map([[101, a('aa')]]), { unobservable });
  assert.equal(missing.ranges[0].state, 'partial', 'an observable replica that has not reported');
  assert.equal(missing.allInSync, false);
  // Without the unobservable set the same statuses are partial, as in the in-page mode.
  assert.deepEqual(rangeSync(new Map([[101, a('aa')], [102, b('aa')]])).ranges.map((r) => r.state), ['partial', 'partial']);
});
