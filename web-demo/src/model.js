// What the page shows about the cluster, computed from the node handles' latest
// snapshots: per-node rows, Merkle sync, and the two summary flags (every node up and
// seen alive by every other; every range's roots equal). Pure; tested in Node.
//
// Cluster mode adds `external` ring members (not this page's: native nodes, and
// replicas relayed for someone else): rows of their own kind, seen through the page's
// replicas' membership; their Merkle roots are not observable.

import { rangeSync } from './sync.js';

/**
 * @param {Map<number, {state: string, running: boolean, snapshot: object|null, error: object|null}>} nodes
 * @param {{ observer?: number, coordinator?: number, side?: (id: number) => string|null,
 *   external?: Map<number, {kind: 'native'|'remote', address?: string, status?: object|null, error?: string|null}> }} view
 */
export function clusterModel(nodes, { observer, coordinator, side = () => null, external = new Map() } = {}) {
  const own = [...nodes.keys()].sort((a, b) => a - b);
  const ids = [...new Set([...own, ...external.keys()])].sort((a, b) => a - b);
  const statuses = new Map();
  for (const id of own) {
    const n = nodes.get(id);
    if (n.running && n.snapshot?.status) statuses.set(id, n.snapshot.status);
  }
  const seenBy = (viewer, id) => statuses.get(viewer)?.members?.find((m) => m.id === id)?.state;
  // A member's ring address as any running node knows it ('relay:<host id>' for a relayed one).
  const addressOf = (id) => {
    for (const st of statuses.values()) {
      const m = st.members?.find((x) => x.id === id);
      if (m?.address) return m.address;
    }
    return external.get(id)?.address ?? null;
  };
  const rows = ids.map((id) => {
    const n = nodes.get(id);
    const ext = n ? null : external.get(id);
    const address = addressOf(id);
    const relay = /^relay:(\d+)$/.exec(address ?? '');
    const views = [...statuses.keys()].filter((v) => v !== id && seenBy(v, id)).map((v) => `node ${v}: ${seenBy(v, id)}`);
    return {
      id,
      kind: ext ? ext.kind : 'page',
      process: ext ? ext.kind : n.state,
      membership: observer === undefined ? undefined : seenBy(observer, id),
      views: views.join(', '),
      side: ext ? null : side(id),
      coordinator: id === coordinator,
      snapshot: ext ? null : n.snapshot,
      external: ext ?? null,
      address,
      host: relay ? Number(relay[1]) : null,
      error: ext ? ext.error ?? undefined : n.error?.message,
    };
  });
  const unobservable = new Set([...external.keys()].filter((id) => !nodes.has(id)));
  const sync = rangeSync(statuses, { unobservable });
  const running = own.filter((id) => nodes.get(id).running).length;
  const allRunning = own.length > 0 && running === own.length;
  const allAlive = allRunning && statuses.size === own.length &&
    own.every((viewer) => ids.every((id) => seenBy(viewer, id) === 'alive'));
  return {
    ids,
    own,
    rows,
    sync,
    running,
    allAlive,
    inSync: allRunning && sync.allInSync,
    notInSync: sync.ranges.filter((r) => r.state !== 'in-sync' && r.state !== 'unobserved').length,
    compared: sync.ranges.length - sync.unobserved,
  };
}
