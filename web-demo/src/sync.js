// Which ranges are in sync: co-replicas of a range whose Merkle roots are equal hold the
// same data. Computed from the latest status of every running node. Pure.
//
// Cluster mode: native nodes do not report their Merkle roots (their /status has none),
// so they are `unobservable`: a range is compared among its observable replicas only,
// and a range with fewer than two of them has nothing to compare ('unobserved').

/**
 * @param {Map<number, {layoutVersion?: number, pendingVersion?: number|null,
 *   ranges?: {start: number, end: number, replicas: number[], root: string}[]}>} statuses
 *   the latest status of each running node
 * @param {{ unobservable?: Set<number> }} [options] nodes whose roots are never reported
 * @returns {{ ranges: object[], perNode: Map<number, {inSync: number, total: number, unobserved: number}>,
 *   allInSync: boolean, versions: number[], unobserved: number }}
 */
export function rangeSync(statuses, { unobservable = new Set() } = {}) {
  const byRange = new Map();
  const versions = new Set();
  let pending = false;
  for (const [id, st] of statuses) {
    versions.add(st.layoutVersion);
    if (st.pendingVersion != null) pending = true;
    for (const rg of st.ranges ?? []) {
      const k = `${rg.start}:${rg.end}`;
      if (!byRange.has(k)) byRange.set(k, { start: rg.start, end: rg.end, replicas: rg.replicas, roots: new Map() });
      byRange.get(k).roots.set(id, rg.root);
    }
  }
  const perNode = new Map([...statuses.keys()].map((id) => [id, { inSync: 0, total: 0, unobserved: 0 }]));
  const ranges = [];
  for (const rg of byRange.values()) {
    const observable = rg.replicas.filter((id) => !unobservable.has(id));
    const reported = rg.replicas.filter((id) => rg.roots.has(id));
    const roots = new Set(reported.map((id) => rg.roots.get(id)));
    const state = reported.length < observable.length ? 'partial'
      : roots.size > 1 ? 'diverged'
      : observable.length < 2 && observable.length < rg.replicas.length ? 'unobserved'
      : 'in-sync';
    ranges.push({ ...rg, state });
    for (const id of reported) {
      const n = perNode.get(id);
      if (state === 'unobserved') {
        n.unobserved++;
        continue;
      }
      n.total++;
      if (state === 'in-sync') n.inSync++;
    }
  }
  ranges.sort((a, b) => a.start - b.start);
  const compared = ranges.filter((r) => r.state !== 'unobserved');
  const allInSync =
    statuses.size > 0 && !pending && versions.size === 1 && compared.length > 0 && compared.every((r) => r.state === 'in-sync');
  return { ranges, perNode, allInSync, versions: [...versions], unobserved: ranges.length - compared.length };
}
