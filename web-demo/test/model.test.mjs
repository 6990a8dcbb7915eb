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

test('cluster mode: external members are rows of their kind, and must be seen alive too', () => {
  const states = { 1: 'alive', 101: 'alive', 102: 'alive' };
  const mine = (st) => node('running', status(st, { ranges: [{ start: 0, end: 1, replicas: [1, 101, 102], root: 'ab' }] }));
  const external = new Map([[1, { kind: 'native', address: '127.0.0.1:7001' }]]);
  const m = clusterModel(new Map([[101, mine(states)], [102, mine(states)]]), { observer: 101, coordinator: 101, external });
  assert.deepEqual(m.ids, [1, 101, 102]);
  assert.deepEqual(m.own, [101, 102]);
  assert.deepEqual(m.rows.map((r) => r.kind), ['native', 'page', 'page']);
  assert.equal(m.rows[0].process, 'native');
  assert.equal(m.rows[0].membership, 'alive');
  assert.equal(m.rows[0].views, 'node 101: alive, node 102: alive');
  assert.equal(m.allAlive, true);
  assert.equal(m.inSync, true, 'the range compares among the two page replicas');
  assert.equal(m.running, 2);
  assert.equal(m.rows[0].address, '127.0.0.1:7001');
  assert.equal(m.rows[0].host, null);

  const nativeDown = clusterModel(new Map([[101, mine({ ...states, 1: 'dead' })], [102, mine(states)]]), { observer: 101, external });
  assert.equal(nativeDown.allAlive, false, 'a native node seen dead');
  assert.equal(nativeDown.rows[0].membership, 'dead');
});

test('cluster mode: a relayed member\'s host comes from its ring address', () => {
  const st = status({ 1: 'alive', 101: 'alive' });
  st.members = [{ id: 1, state: 'alive', address: '127.0.0.1:7001' }, { id: 101, state: 'alive', address: 'relay:1' },
    { id: 150, state: 'dead', address: 'relay:1' }];
  const external = new Map([[1, { kind: 'native' }], [150, { kind: 'remote' }]]);
  const m = clusterModel(new Map([[101, node('running', st)]]), { observer: 101, external });
  const row = (id) => m.rows.find((r) => r.id === id);
  assert.equal(row(101).host, 1);
  assert.equal(row(101).kind, 'page');
  assert.equal(row(150).kind, 'remote');
  assert.equal(row(150).host, 1);
  assert.equal(row(150).membership, 'dead');
  assert.equal(m.allAlive, false, 'a dead relayed member of someone else counts too');
});
