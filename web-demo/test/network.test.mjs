import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Network } from '../src/network.js';

test('links are up until partitioned; frames across sides are dropped, within a side delivered', () => {
  const net = new Network({ latencyMs: 2, jitterMs: 0 });
  assert.deepEqual(net.route(1, 2), { deliver: true, delayMs: 2, reason: null });
  net.partition([1, 2, 3], [4, 5]);
  assert.equal(net.route(1, 4).reason, 'partition');
  assert.equal(net.route(5, 2).deliver, false);
  assert.equal(net.route(4, 5).deliver, true);
  assert.equal(net.route(1, 3).deliver, true);
  assert.equal(net.side(6), 'A', 'unplaced nodes are on side A');
  assert.equal(net.route(6, 1).deliver, true);
  net.heal();
  assert.equal(net.route(1, 4).deliver, true);
  assert.equal(net.partitioned, false);
});

test('single links can be cut and repaired, in both directions', () => {
  const net = new Network({ jitterMs: 0 });
  assert.equal(net.toggleLink(3, 1), false);
  assert.equal(net.route(1, 3).reason, 'cut');
  assert.equal(net.route(3, 1).reason, 'cut');
  assert.equal(net.route(1, 2).deliver, true);
  assert.equal(net.toggleLink(1, 3), true);
  assert.equal(net.route(1, 3).deliver, true);
  net.toggleLink(1, 2);
  net.heal();
  assert.equal(net.isCut(1, 2), false);
});

test('loss drops about the configured fraction', () => {
  let s = 7;
  const random = () => ((s = (s * 16807) % 2147483647) / 2147483647);
  const net = new Network({ lossRate: 0.3, random });
  let lost = 0;
  for (let i = 0; i < 10000; i++) if (net.route(1, 2).reason === 'loss') lost++;
  assert.ok(lost > 2700 && lost < 3300, `lost ${lost}`);
});
