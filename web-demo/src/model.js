// What the page shows about the cluster, computed from the node handles' latest
// snapshots: per-node rows, Merkle sync, and the two summary flags (every node up and
// seen alive by every other; every range's roots equal). Pure; tested in Node.

import { rangeSync } from './sync.js';

/**
 * @param {Map<number, {state: string, running: boolean, snapshot: object|null, error: object|null}>} nodes
 * @param {{ observer?: number, coordinator?: number, side?: (id: number) => string|null }} view
 */
export function clusterModel(nodes, { observer, coordinator, side = () => null } = {}) {
  const ids = [...nodes.keys()].sort((a, b) => a - b);
  const statuses = new Map();
  for (const id of ids) {
    const n = nodes.get(id);
    if (n.running && n.snapshot?.status) statuses.set(id, n.snapshot.status);
  }
  const seenBy = (viewer, id) => statuses.get(viewer)?.members?.find((m) => m.id === id)?.state;
  const rows = ids.map((id) => {
    const n = nodes.get(id);
    const views = [...statuses.keys()].filter((v) => v !== id && seenBy(v, id)).map((v) => `node ${v}: ${seenBy(v, id)}`);
    return {
      id,
      process: n.state,
      membership: observer === undefined ? undefined : seenBy(observer, id),
      views: views.join(', '),
      side: side(id),
      coordinator: id === coordinator,
      snapshot: n.snapshot,
      error: n.error?.message,
    };
  });
  const sync = rangeSync(statuses);
  const running = ids.filter((id) => nodes.get(id).running).length;
  const allRunning = ids.length > 0 && running === ids.length;
  const allAlive = allRunning && statuses.size === ids.length &&
    ids.every((viewer) => ids.every((id) => seenBy(viewer, id) === 'alive'));
  return {
    ids,
    rows,
    sync,
    running,
    allAlive,
    inSync: allRunning && sync.allInSync,
    notInSync: sync.ranges.filter((r) => r.state !== 'in-sync').length,
  };
}
