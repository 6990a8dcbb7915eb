// The ring around the typed key, magnified: with hundreds of virtual nodes per node the
// full ring is a blur, so this strip shows the stretch from a little before the key to
// the vnodes that put its replicas in the preference list (walking clockwise).

import { s, color, label } from './dom.js';

const W = 460;
const H = 80;
const BAR_Y = 18;
const BAR_H = 18;

/** Distance clockwise from a to b on the unit ring. */
const cw = (a, b) => (b - a + 1) % 1;

/**
 * The window to show: from a margin before the key to just past the first vnode of the
 * last preference-list node met clockwise. Returns { from, span, picks } where picks are
 * the vnode positions that chose each replica.
 */
export function zoomWindow(vnodes, pref) {
  const sorted = [...vnodes].sort((a, b) => a.position - b.position);
  const start = sorted.findIndex((v) => v.position >= pref.position);
  const picks = [];
  const want = new Set(pref.nodes);
  for (let i = 0; i < sorted.length && want.size > 0; i++) {
    const v = sorted[(Math.max(start, 0) + i) % sorted.length];
    if (want.delete(v.node)) picks.push(v);
  }
  const reach = picks.length ? cw(pref.position, picks[picks.length - 1].position) : 0.01;
  const margin = Math.max(reach * 0.25, 0.0005);
  return { from: (pref.position - margin + 1) % 1, span: Math.min(reach + 2 * margin, 1), picks };
}

export class ZoomView {
  constructor(svg) {
    this.svg = svg;
    svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  }

  render(ring, pref) {
    this.svg.replaceChildren();
    if (!ring || !pref || ring.vnodes.length === 0) return;
    const { from, span, picks } = zoomWindow(ring.vnodes, pref);
    const x = (pos) => (cw(from, pos) / span) * W;
    const sorted = [...ring.vnodes].sort((a, b) => a.position - b.position);
    // Each vnode owns the stretch ending at its position: draw the ones that overlap.
    let prevX = 0;
    const at = sorted.findIndex((v) => v.position >= from);
    for (let i = 0; i < sorted.length; i++) {
      const v = sorted[(Math.max(at, 0) + i) % sorted.length];
      const d = cw(from, v.position);
      const end = Math.min(d / span, 1) * W;
      this.svg.append(s('rect', { x: prevX, y: BAR_Y, width: Math.max(end - prevX, 0.5), height: BAR_H, fill: color(v.node) }));
      this.svg.append(s('line', { class: 'zoom-tick', x1: end, x2: end, y1: BAR_Y - 3, y2: BAR_Y + BAR_H }));
      prevX = end;
      if (d >= span) break;
    }
    const kx = x(pref.position);
    this.svg.append(s('path', { class: 'key-marker', d: `M${kx},${BAR_Y} l-6,-12 l12,0 Z` }));
    picks.forEach((v, i) => {
      const px = x(v.position);
      // One row per pick, so labels of close vnodes do not overlap.
      const y = BAR_Y + BAR_H + 12 + i * 12;
      const anchor = px < 40 ? 'start' : px > W - 40 ? 'end' : 'middle';
      this.svg.append(s('line', { class: 'zoom-lead', x1: px, x2: px, y1: BAR_Y + BAR_H, y2: y - 9, stroke: color(v.node) }));
      this.svg.append(s('text', { class: 'zoom-pick', x: px, y, 'text-anchor': anchor, fill: color(v.node), text: `${i + 1}: node ${label(v.node)}` }));
    });
    this.svg.append(s('text', { class: 'zoom-note', x: W - 2, y: 10, 'text-anchor': 'end', text: `${(span * 100).toFixed(2)}% of the ring →` }));
  }
}
