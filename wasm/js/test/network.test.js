// Replicas of the built package (wasm/pkg) forming one cluster over a network written in
// JS (the `transport` option): they agree on values, refuse linearizable operations
// without a quorum, let a node join and stream its ranges to it, report membership
// events, and their Merkle roots converge.
//
// Run: ./scripts/build-npm && node --test wasm/js/test/   (scripts/test does both)

import { test } from 'node:test';
import assert from 'node:assert/strict';

const pkg = process.env.RINGKV_PKG ?? new URL('../../pkg/node.js', import.meta.url).href;
const { Replica, UnavailableError, InvalidArgumentError, ClosedError, frameKind, describeContext } =
  await import(pkg);

/** An in-process network: frames hop through a macrotask; `cut` drops them. */
class Network {
  replicas = new Map();
  cut = new Set(); // "a-b" pairs, both directions
  kinds = new Map();

  transport(from) {
    return {
      send: (to, frame) => {
        const kind = frameKind(frame);
        this.kinds.set(kind, (this.kinds.get(kind) ?? 0) + 1);
        if (this.cut.has(`${from}-${to}`)) return;
        setTimeout(() => {
          try {
            this.replicas.get(to)?.deliver(from, frame);
          } catch (e) {
            if (!(e instanceof ClosedError)) throw e; // a frame for a closed replica is lost
          }
        }, 0);
      },
    };
  }

  partition(left, right) {
    for (const a of left) for (const b of right) {
      this.cut.add(`${a}-${b}`);
      this.cut.add(`${b}-${a}`);
    }
  }

  heal() {
    this.cut.clear();
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function until(what, check, limitMs = 20000) {
  const start = Date.now();
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() - start > limitMs) assert.fail(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

async function cluster(ids) {
  const net = new Network();
  const members = ids.map((id) => ({ id, zone: `z${id}` }));
  for (const id of ids) {
    const r = await Replica.open({ nodeId: id, zone: `z${id}`, members, transport: net.transport(id) });
    net.replicas.set(id, r);
  }
  return net;
}

/** Every range's co-replicas report the same Merkle root. */
function rootsMatch(replicas) {
  const roots = new Map();
  for (const r of replicas) {
    for (const range of r.status().ranges) {
      const key = `${range.start}:${range.end}`;
      if (roots.has(key) && roots.get(key) !== range.root) return false;
      roots.set(key, range.root);
    }
  }
  return roots.size > 0;
}

test('five replicas over a JS network agree, and refuse without a quorum', async () => {
  const net = await cluster([1, 2, 3, 4, 5]);
  const r = (id) => net.replicas.get(id);
  try {
    const ring = r(1).ring();
    assert.equal(ring.replicas, 3);
    assert.equal(new Set(ring.vnodes.map((v) => v.node)).size, 5);
    assert.ok(ring.vnodes.every((v) => v.position >= 0 && v.position < 1));

    await r(1).put('k', { n: 1 });
    const { nodes, position } = r(1).preferenceList('k');
    assert.equal(nodes.length, 3);
    assert.ok(position >= 0 && position < 1);
    for (const id of [1, 2, 3, 4, 5]) assert.deepEqual(await r(id).get('k'), { n: 1 });

    // Two of the key's three replicas cut off from the rest: the side with one refuses.
    const [a, b, c] = nodes;
    const others = [1, 2, 3, 4, 5].filter((id) => !nodes.includes(id));
    net.partition([a, b], [c, ...others]);
    await r(a).put('k', { n: 2 });
    await assert.rejects(r(c).put('k', { n: 3 }), UnavailableError);
    await assert.rejects(r(others[0]).get('k'), UnavailableError);
    net.heal();
    // Healed: once gossip shows the others alive again, every node reads the newest value.
    for (const id of [1, 2, 3, 4, 5]) {
      const value = await until(`n${id} to read again`, () =>
        r(id).get('k').catch((e) => (e instanceof UnavailableError ? undefined : Promise.reject(e))));
      assert.deepEqual(value, { n: 2 });
    }

    const status = r(1).status();
    assert.equal(status.role, 'member');
    assert.equal(status.members.length, 5);
    assert.ok(status.keys >= 0);
    assert.equal(status.transport.kind, 'js');
    assert.ok(net.kinds.get('Write') > 0 && net.kinds.get('Gossip') > 0, [...net.kinds.keys()].join());
    await until('Merkle roots to match', () => rootsMatch([...net.replicas.values()]));
  } finally {
    for (const replica of net.replicas.values()) await replica.close();
  }
});

test('a node joins through a member, receives its ranges, and listeners see it', async () => {
  const net = await cluster([1, 2, 3]);
  const r = (id) => net.replicas.get(id);
  try {
    for (let i = 0; i < 40; i++) await r(1 + (i % 3)).put(`key-${i}`, i);
    const events = [];
    r(1).on('membership', (e) => events.push(e));

    const joiner = await Replica.open({ nodeId: 4, transport: net.transport(4) });
    net.replicas.set(4, joiner);
    assert.equal(joiner.status().role, 'joining');
    await r(2).join({ id: 4, zone: 'z4' });
    await until('the joiner to be a member of a committed layout', () => {
      const s = joiner.status();
      return s.role === 'member' && s.pendingVersion === null;
    });
    await until('a membership event with 4 members', () =>
      events.some((e) => e.members.length === 4 && e.pendingVersion === null));
    // The joiner holds keys now and serves every one of them.
    assert.ok(joiner.status().keys > 0, 'ranges streamed to the joiner');
    for (let i = 0; i < 40; i++) assert.equal(await joiner.get(`key-${i}`), i);
    await until('Merkle roots to match', () => rootsMatch([...net.replicas.values()]));

    // Eventual mode: siblings and a readable version vector.
    await r(1).put('e', 'x', { consistency: 'eventual' });
    const { values, context } = await r(3).getSiblings('e');
    assert.deepEqual(values, ['x']);
    const vector = describeContext(context);
    assert.ok(Object.values(vector).every((n) => n >= 1) && Object.keys(vector).length >= 1);
  } finally {
    for (const replica of net.replicas.values()) await replica.close();
  }
});

test('bad cluster options and frames are refused with typed errors', async () => {
  await assert.rejects(Replica.open({ nodeId: 1, members: [{ id: 1 }] }), InvalidArgumentError);
  await assert.rejects(
    Replica.open({ nodeId: 1, members: [{ id: 2 }], transport: { send() {} } }),
    InvalidArgumentError,
  );
  await assert.rejects(
    Replica.open({ nodeId: 1, seeds: ['ws://127.0.0.1:1'], transport: { send() {} } }),
    InvalidArgumentError,
  );
  const r = await Replica.open({ nodeId: 1, members: [{ id: 1 }], transport: { send() {} } });
  try {
    assert.throws(() => r.deliver(2, new Uint8Array([1, 2, 3])), InvalidArgumentError);
    assert.throws(() => frameKind(new Uint8Array([9])), InvalidArgumentError);
    assert.throws(() => r.on('nope', () => {}), InvalidArgumentError);
  } finally {
    await r.close();
  }
});
