// Geometry of the ring view: positions (0..1 clockwise from the top) to SVG
// coordinates, vnode ownership arcs, annular sector paths. Pure; tested in Node.

const TAU = Math.PI * 2;

export const angle = (pos) => pos * TAU - Math.PI / 2;

export function point(cx, cy, r, pos) {
  const a = angle(pos);
  return { x: cx + r * Math.cos(a), y: cy + r * Math.sin(a) };
}

/**
 * The arc each virtual node owns: from the previous vnode's position (exclusive) to its
 * own (inclusive), clockwise, wrapping past 1. Returns [{ start, span, node }] sorted by start.
 */
export function arcs(vnodes) {
  const sorted = [...vnodes].sort((a, b) => a.position - b.position);
  return sorted.map((v, i) => {
    const prev = sorted[(i - 1 + sorted.length) % sorted.length].position;
    const span = sorted.length === 1 ? 1 : (v.position - prev + 1) % 1;
    return { start: prev, span, node: v.node };
  });
}

/** The node whose vnode is the first at or after `pos` clockwise. */
export function ownerOf(vnodes, pos) {
  const sorted = [...vnodes].sort((a, b) => a.position - b.position);
  return (sorted.find((v) => v.position >= pos) ?? sorted[0])?.node;
}

const f = (n) => n.toFixed(2);

/** SVG path of the annular sector from `start` over `span` (fractions of the ring). */
export function sectorPath(cx, cy, rOuter, rInner, start, span) {
  if (span >= 0.9999) {
    // A full ring: two half sectors, since one arc cannot start and end at one point.
    return sectorPath(cx, cy, rOuter, rInner, start, 0.5) + ' ' + sectorPath(cx, cy, rOuter, rInner, start + 0.5, 0.5);
  }
  const large = span > 0.5 ? 1 : 0;
  const o0 = point(cx, cy, rOuter, start);
  const o1 = point(cx, cy, rOuter, start + span);
  const i1 = point(cx, cy, rInner, start + span);
  const i0 = point(cx, cy, rInner, start);
  return (
    `M${f(o0.x)},${f(o0.y)} A${rOuter},${rOuter} 0 ${large} 1 ${f(o1.x)},${f(o1.y)} ` +
    `L${f(i1.x)},${f(i1.y)} A${rInner},${rInner} 0 ${large} 0 ${f(i0.x)},${f(i0.y)} Z`
  );
}

/** Node markers on a regular polygon inside the ring, in id order, first at the top. */
export function nodeLayout(ids, cx, cy, r) {
  const sorted = [...ids].sort((a, b) => a - b);
  return new Map(sorted.map((id, i) => [id, point(cx, cy, r, i / sorted.length)]));
}
