import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clusterModel } from '../src/model.js';

const ranges = [{ start: 0, end: 1, replicas: [1, 2], root: 'ab' }];
const status = (states, extra = {}) => ({
  layoutVersion: 1, pendingVersion: null, ranges,
  members: Object.entries(states).map(([id, state]) => ({ id: Number(id), state })),
  ...extra,
});
const node = (state, st) => ({ state, running: state === 'running', snapshot: st ? { status: st } : null, error: null });

test('all alive and in sync only when every node runs and sees every other alive', () => {
  const alive = { 1: 'alive', 2: 'alive' };
  const m = clusterModel(new Map([[1, node('running', status(alive))], [2, node('running', status(alive))]]), { observer: 1, coordinator: 2 });
  assert.equal(m.allAlive, true);
  assert.equal(m.inSync, true);
  assert.equal(m.rows[1].coordinator, true);
  assert.equal(m.rows[0].views, 'node 2: alive');

  const suspect = clusterModel(new Map([[1, node('running', status(alive))], [2, node('running', status({ 1: 'suspect', 2: 'alive' }))]]), { observer: 2 });
  assert.equal(suspect.allAlive, false);
  assert.equal(suspect.rows[0].membership, 'suspect');

  const killed = clusterModel(new Map([[1, node('running', status(alive))], [2, node('killed', status(alive))]]), { observer: 1 });
  assert.equal(killed.allAlive, false, 'a killed node\'s last snapshot does not count');
  assert.equal(killed.inSync, false);
  assert.equal(killed.running, 1);

  const starting = clusterModel(new Map([[1, node('running', status(alive))], [2, node('running', null)]]), { observer: 1 });
  assert.equal(starting.allAlive, false, 'a node without a snapshot yet is not known alive');
});

test('diverged roots are counted and block in-sync', () => {
  const alive = { 1: 'alive', 2: 'alive' };
  const other = status(alive, { ranges: [{ ...ranges[0], root: 'cd' }] });
  const m = clusterModel(new Map([[1, node('running', status(alive))], [2, node('running', other)]]), { observer: 1 });
  assert.equal(m.allAlive, true);
  assert.equal(m.inSync, false);
  assert.equal(m.notInSync, 1);
});
