// Which ranges are in sync: co-replicas of a range whose Merkle roots are equal hold the
// same data. Computed from the latest status of every running node. Pure.

/**
 * @param {Map<number, {layoutVersion?: number, pendingVersion?: number|null,
 *   ranges?: {start: number, end: number, replicas: number[], root: string}[]}>} statuses
 *   the latest status of each running node
 * @returns {{ ranges: object[], perNode: Map<number, {inSync: number, total: number}>,
 *   allInSync: boolean, versions: number[] }}
 */
export function rangeSync(statuses) {
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
  const perNode = new Map([...statuses.keys()].map((id) => [id, { inSync: 0, total: 0 }]));
  const ranges = [];
  for (const rg of byRange.values()) {
    const reported = rg.replicas.filter((id) => rg.roots.has(id));
    const roots = new Set(reported.map((id) => rg.roots.get(id)));
    const state = reported.length < rg.replicas.length ? 'partial' : roots.size === 1 ? 'in-sync' : 'diverged';
    ranges.push({ ...rg, state });
    for (const id of reported) {
      const n = perNode.get(id);
      n.total++;
      if (state === 'in-sync') n.inSync++;
    }
  }
  ranges.sort((a, b) => a.start - b.start);
  const allInSync =
    statuses.size > 0 && !pending && versions.size === 1 && ranges.length > 0 && ranges.every((r) => r.state === 'in-sync');
  return { ranges, perNode, allInSync, versions: [...versions] };
}
