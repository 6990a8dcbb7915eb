import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkSegment } from '../src/wgl.js';
import { Checker, KeyChecker } from '../src/checker.js';

const w = (value, inv, end) => ({ kind: 'write', value, inv, end });
const r = (value, inv, end) => ({ kind: 'read', value, inv, end });

// Feeds ops to one KeyChecker: [kind, value, inv, end, outcome = 'ok'].
function run(ops, limits) {
  const kc = new KeyChecker('k', limits);
  for (const [kind, value, inv, end, outcome = 'ok'] of ops) kc.add(kind, value, inv, end, outcome);
  const found = kc.check(Infinity);
  return { kc, found };
}

test('segment: sequential write then read is linearizable', () => {
  const res = checkSegment([w('a', 0, 1), r('a', 2, 3)], [null]);
  assert.equal(res.result, 'ok');
  assert.deepEqual([...res.finals], ['a']);
});

test('segment: a stale read after an acknowledged write is a violation', () => {
  const res = checkSegment([w('a', 0, 1), w('b', 2, 3), r('a', 4, 5)], [null]);
  assert.equal(res.result, 'violation');
  assert.equal(res.stuck.op.value, 'a');
});

test('segment: a read of absent after an acknowledged write is a violation', () => {
  assert.equal(checkSegment([w('a', 0, 1), r(null, 2, 3)], [null]).result, 'violation');
});

test('segment: concurrent writes leave either value as possible final state', () => {
  const res = checkSegment([w('a', 0, 10), w('b', 1, 9)], [null]);
  assert.equal(res.result, 'ok');
  assert.deepEqual(new Set(res.finals), new Set(['a', 'b']));
});

test('segment: a read concurrent with a write may see old or new value, not flip back', () => {
  assert.equal(checkSegment([w('a', 0, 1), w('b', 2, 10), r('a', 3, 4), r('b', 5, 6)], [null]).result, 'ok');
  assert.equal(checkSegment([w('a', 0, 1), w('b', 2, 10), r('b', 3, 4), r('a', 5, 6)], [null]).result, 'violation');
});

test('segment: the budget makes a search inconclusive, not a pass', () => {
  const ops = [];
  for (let i = 0; i < 12; i++) ops.push(w(`v${i}`, 0, 100));
  ops.push(r('nope', 0, 100));
  assert.equal(checkSegment(ops, [null], { budget: 50 }).result, 'unknown');
});

test('key: an unavailable write did not happen, so reading its value is a violation', () => {
  const { found } = run([['write', 'a', 0, 1], ['write', 'b', 2, 3, 'unavailable'], ['read', 'b', 4, 5]]);
  assert.equal(found.length, 1);
  const ok = run([['write', 'a', 0, 1], ['write', 'b', 2, 3, 'unavailable'], ['read', 'a', 4, 5]]);
  assert.equal(ok.found.length, 0);
});

test('key: an indeterminate write may take effect any time after its invoke', () => {
  const late = run([['write', 'a', 0, 1], ['write', 'x', 2, null, 'indeterminate'], ['read', 'a', 50, 51], ['read', 'x', 100, 101]]);
  assert.equal(late.found.length, 0);
  const never = run([['write', 'a', 0, 1], ['write', 'x', 2, null, 'indeterminate'], ['read', 'a', 100, 101]]);
  assert.equal(never.found.length, 0);
  const early = run([['read', 'x', 0, 1], ['write', 'x', 2, null, 'indeterminate']]);
  assert.equal(early.found.length, 1);
});

test('key: once an indeterminate write is seen, an older value cannot come back', () => {
  const { found } = run([['write', 'a', 0, 1], ['write', 'x', 2, null, 'indeterminate'], ['read', 'x', 10, 11], ['read', 'a', 20, 21]]);
  assert.equal(found.length, 1);
});

test('key: failed reads are dropped', () => {
  const { found, kc } = run([['write', 'a', 0, 1], ['read', 'zzz', 2, 3, 'unavailable']]);
  assert.equal(found.length, 0);
  assert.equal(kc.stats.checked, 1);
});

// Long histories cut into many segments: the carried states and floating writes must
// keep a violation at the end detectable.
function longHistory(n) {
  const ops = [];
  let t = 0;
  for (let i = 0; i < n; i++) {
    ops.push(['write', `v${i}`, t, t + 2]);
    ops.push(['read', `v${i}`, t + 3, t + 4]);
    t += 5;
  }
  return { ops, t };
}

test('key: segments carry state (stale read after many segments is caught)', () => {
  const { ops, t } = longHistory(200);
  const good = run([...ops, ['read', 'v199', t, t + 1]], { segmentOps: 10 });
  assert.equal(good.found.length, 0);
  assert.ok(good.kc.stats.segments > 10, `segments: ${good.kc.stats.segments}`);
  const stale = run([...ops, ['read', 'v150', t, t + 1]], { segmentOps: 10 });
  assert.equal(stale.found.length, 1);
  assert.match(stale.found[0].message, /v150/);
});

test('key: concurrent writes at a cut carry both values, but the order then sticks', () => {
  const base = [['write', 'a', 0, 10], ['write', 'b', 1, 9]];
  const rest = (x, y) => [['read', x, 20, 21], ['read', y, 30, 31]];
  assert.equal(run([...base, ...rest('a', 'a')], { segmentOps: 2 }).found.length, 0);
  assert.equal(run([...base, ...rest('b', 'b')], { segmentOps: 2 }).found.length, 0);
  assert.equal(run([...base, ...rest('b', 'a')], { segmentOps: 2 }).found.length, 1);
});

test('key: an indeterminate write floats across segments and is consumed once', () => {
  const { ops, t } = longHistory(30);
  const hist = [['write', 'x', -5, null, 'indeterminate'], ...ops, ['read', 'x', t, t + 1]];
  assert.equal(run(hist, { segmentOps: 8 }).found.length, 0);
  const flip = [...hist, ['write', 'y', t + 2, t + 3], ['read', 'y', t + 4, t + 5], ['read', 'x', t + 6, t + 7]];
  assert.equal(run(flip, { segmentOps: 8 }).found.length, 1);
});

test('checker: in-flight operations hold the cut; results per key', () => {
  const c = new Checker({ segmentOps: 1 });
  const w1 = c.invoke('k', 0);
  c.complete(w1, 'write', 'a', 1, 'ok');
  const slow = c.invoke('k', 2);
  const r1 = c.invoke('k', 3);
  c.complete(r1, 'read', 'a', 4, 'ok');
  c.check();
  assert.equal(c.keys.get('k').ops.length, 1, 'the read after the in-flight write waits');
  c.complete(slow, 'write', 'b', 10, 'ok');
  const r2 = c.invoke('k', 11);
  c.complete(r2, 'read', 'a', 12, 'ok');
  const found = c.check();
  assert.equal(found.length, 1, 'stale read after the slow write completed');
  assert.equal(c.totals().violations, 1);
  const other = c.invoke('j', 20);
  c.complete(other, 'read', undefined, 21, 'ok');
  assert.equal(c.check().length, 0);
});

test('key: without a quiet instant, the pending list is bounded', () => {
  const kc = new KeyChecker('k', { pendingOpsMax: 100, segmentOps: 1000 });
  // Each write overlaps the next: no cut exists while the horizon is 0.
  for (let i = 0; i < 150; i++) kc.add('write', `v${i}`, i, i + 2, 'ok');
  kc.check(0);
  assert.ok(kc.ops.length <= 100);
  assert.equal(kc.stats.inconclusive, 1);
});

// Random linearizable histories: each operation takes effect at a random instant inside
// its interval against a real register. The checker must accept all of them, and must
// reject the same history once one read is made stale.
function randomHistory(seed, n) {
  let s = seed;
  const rand = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
  const events = [];
  for (let i = 0; i < n; i++) {
    const inv = rand() * n * 3;
    const end = inv + 0.5 + rand() * 6;
    const point = inv + rand() * (end - inv);
    events.push({ kind: rand() < 0.5 ? 'write' : 'read', inv, end, point, value: `w${i}` });
  }
  events.sort((a, b) => a.point - b.point);
  let reg = null;
  const writes = [];
  for (const e of events) {
    if (e.kind === 'write') {
      reg = e.value;
      writes.push(e);
    } else e.value = reg;
  }
  return events;
}

test('random linearizable histories pass; a stale read in them fails', () => {
  let mutated = 0;
  for (let seed = 1; seed <= 40; seed++) {
    const events = randomHistory(seed, 120);
    const feed = (evs) => run(evs.map((e) => [e.kind, e.value, e.inv, e.end]), { segmentOps: 16 });
    assert.equal(feed(events).found.length, 0, `seed ${seed} should pass`);
    // Make a late read return the first write's value, long overwritten.
    const firstWrite = events.find((e) => e.kind === 'write');
    const laterWrite = events.find((e) => e.kind === 'write' && e.inv > firstWrite.end + 1);
    const read = events.find((e) => e.kind === 'read' && laterWrite && e.inv > laterWrite.end + 1 && e.value !== firstWrite.value);
    if (!read) continue;
    mutated++;
    const bad = events.map((e) => (e === read ? { ...e, value: firstWrite.value } : e));
    assert.equal(feed(bad).found.length, 1, `seed ${seed}: stale read must be flagged`);
  }
  assert.ok(mutated >= 30, `mutated ${mutated}`);
});
