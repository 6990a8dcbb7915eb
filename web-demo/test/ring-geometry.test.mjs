import { test } from 'node:test';
import assert from 'node:assert/strict';
import { arcs, ownerOf, point, sectorPath, nodeLayout } from '../src/ring-geometry.js';

// A mocked ring() result: the shape the package returns.
const ring = {
  version: 1,
  replicas: 3,
  pending: false,
  vnodes: [
    { position: 0.9, node: 3 },
    { position: 0.1, node: 1 },
    { position: 0.5, node: 2 },
  ],
};

test('each vnode owns the arc ending at its position; arcs cover the ring once', () => {
  const a = arcs(ring.vnodes);
  assert.deepEqual(a.map((x) => x.node), [1, 2, 3]);
  assert.equal(a[0].start, 0.9);
  assert.ok(Math.abs(a[0].span - 0.2) < 1e-9);
  assert.ok(Math.abs(a.reduce((s, x) => s + x.span, 0) - 1) < 1e-9);
  assert.deepEqual(arcs([{ position: 0.3, node: 7 }]), [{ start: 0.3, span: 1, node: 7 }]);
});

test('owner of a position is the first vnode clockwise, wrapping', () => {
  assert.equal(ownerOf(ring.vnodes, 0.05), 1);
  assert.equal(ownerOf(ring.vnodes, 0.1), 1);
  assert.equal(ownerOf(ring.vnodes, 0.3), 2);
  assert.equal(ownerOf(ring.vnodes, 0.95), 1);
});

test('positions run clockwise from the top', () => {
  const top = point(100, 100, 50, 0);
  const right = point(100, 100, 50, 0.25);
  assert.ok(Math.abs(top.x - 100) < 1e-9 && Math.abs(top.y - 50) < 1e-9);
  assert.ok(Math.abs(right.x - 150) < 1e-9 && Math.abs(right.y - 100) < 1e-9);
});

test('sector paths: closed, large-arc flag for spans over half, full ring in two halves', () => {
  const small = sectorPath(0, 0, 10, 5, 0, 0.25);
  assert.match(small, /^M.* A10,10 0 0 1 .* A5,5 0 0 0 .* Z$/);
  assert.match(sectorPath(0, 0, 10, 5, 0, 0.75), / A10,10 0 1 1 /);
  assert.equal(sectorPath(0, 0, 10, 5, 0, 1).match(/Z/g).length, 2);
});

test('node markers are placed in id order around a circle', () => {
  const m = nodeLayout([5, 1, 3], 0, 0, 10);
  assert.deepEqual([...m.keys()], [1, 3, 5]);
  assert.ok(Math.abs(m.get(1).y + 10) < 1e-9);
});

test('zoom window: from before the key to the vnodes that picked each replica', async () => {
  const { zoomWindow } = await import('../src/zoom-view.js');
  const vnodes = [
    { position: 0.1, node: 1 }, { position: 0.2, node: 1 }, { position: 0.3, node: 2 },
    { position: 0.4, node: 3 }, { position: 0.95, node: 2 },
  ];
  const w = zoomWindow(vnodes, { position: 0.15, nodes: [1, 2, 3] });
  assert.deepEqual(w.picks.map((v) => v.position), [0.2, 0.3, 0.4]);
  assert.ok(w.from < 0.15 && Math.abs(w.from + w.span - 0.4) > 0 && w.from + w.span > 0.4);
  // Wrapping past the top of the ring.
  const wrap = zoomWindow(vnodes, { position: 0.9, nodes: [2, 1, 3] });
  assert.deepEqual(wrap.picks.map((v) => v.position), [0.95, 0.1, 0.4]);
  assert.ok(wrap.span > 0.5 && wrap.span <= 1);
});
