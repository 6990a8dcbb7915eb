// The ring as an SVG circle: every virtual node's arc in its node's colour, the nodes as
// markers inside (state, partition side), the links between them (click to cut or
// repair one), and a typed key's position with lines to its preference list.
// Cluster mode: native nodes are squares labelled n1.., replicas relayed for someone
// else dashed circles; the lines are the real connections (native mesh, each relayed
// replica's WebSocket to its host), which the page cannot cut.

import { s, color, label } from './dom.js';
import { arcs, point, sectorPath, nodeLayout } from './ring-geometry.js';

export const SIZE = 460;
const C = SIZE / 2;
const R_OUT = 212;
const R_IN = 190;
const R_NODES = 128;
const NODE_R = 25;

/** Consecutive arcs of one node merged into one (fewer SVG paths). */
function runs(vnodes) {
  const out = [];
  for (const a of arcs(vnodes)) {
    const last = out[out.length - 1];
    if (last && last.node === a.node && Math.abs((last.start + last.span) % 1 - a.start) < 1e-12) last.span += a.span;
    else out.push({ ...a });
  }
  return out;
}

export class RingView {
  constructor(svg, { onLink, onNode } = {}) {
    this.svg = svg;
    svg.setAttribute('viewBox', `0 0 ${SIZE} ${SIZE}`);
    this.layers = {};
    for (const name of ['arcs', 'links', 'pref', 'messages', 'nodes', 'key']) {
      this.layers[name] = s('g', { class: `layer-${name}` });
      svg.append(this.layers[name]);
    }
    this.layers.arcs.append(s('circle', { cx: C, cy: C, r: (R_OUT + R_IN) / 2, class: 'ring-empty', 'stroke-width': R_OUT - R_IN }));
    this.onLink = onLink;
    this.onNode = onNode;
    this.ringSig = '';
    this.positions = new Map();
  }

  /** Centre of node `id`'s marker (for message animation). */
  nodePoint(id) {
    return this.positions.get(id);
  }

  setRing(ring) {
    const sig = ring ? `${ring.version}:${ring.pending}:${ring.vnodes.length}` : '';
    if (sig === this.ringSig) return;
    this.ringSig = sig;
    const g = this.layers.arcs;
    g.replaceChildren();
    if (!ring || ring.vnodes.length === 0) {
      g.append(s('circle', { cx: C, cy: C, r: (R_OUT + R_IN) / 2, class: 'ring-empty', 'stroke-width': R_OUT - R_IN }));
      return;
    }
    for (const a of runs(ring.vnodes)) {
      g.append(s('path', { d: sectorPath(C, C, R_OUT, R_IN, a.start, a.span), fill: color(a.node), 'data-node': a.node }));
    }
  }

  /**
   * @param {Array<{id, kind?, host?, process, membership, side, coordinator}>} nodes
   * @param {(a, b) => string|null} linkDown why the link a-b is down, or null
   * @param {{ clusterMode?: boolean }} [mode]
   */
  setNodes(nodes, linkDown, { clusterMode = false } = {}) {
    this.positions = nodeLayout(nodes.map((n) => n.id), C, C, R_NODES);
    const links = this.layers.links;
    links.replaceChildren();
    if (clusterMode) this.#connections(nodes);
    else for (let i = 0; i < nodes.length; i++) {
      for (let j = i + 1; j < nodes.length; j++) {
        const a = nodes[i].id;
        const b = nodes[j].id;
        const p = this.positions.get(a);
        const q = this.positions.get(b);
        const down = linkDown(a, b);
        const line = { x1: p.x, y1: p.y, x2: q.x, y2: q.y };
        links.append(
          s('line', { ...line, class: `link ${down ? `link-down link-${down}` : 'link-up'}` }),
          s('line', { ...line, class: 'link-hit', 'data-link': `${a}-${b}`, onclick: () => this.onLink?.(a, b) },
            s('title', { text: `link ${a}–${b}: ${down ?? 'up'} (click to ${down === 'cut' ? 'repair' : 'cut'})` })),
        );
      }
    }
    const g = this.layers.nodes;
    g.replaceChildren();
    for (const n of nodes) {
      const p = this.positions.get(n.id);
      const kind = n.kind ?? 'page';
      // A native or remote node is "up" as far as the page can tell unless seen dead.
      const up = kind === 'page' ? n.process === 'running' : n.membership !== 'dead';
      const fill = up ? color(n.id) : '#777';
      const tag = kind === 'native' ? 'native' : kind === 'remote' ? 'relayed' : null;
      g.append(
        s('g', {
          class: `node node-${n.process} node-kind-${kind} member-${n.membership ?? 'unknown'}${n.coordinator ? ' coordinator' : ''}`,
          'data-node': n.id, 'data-kind': kind, transform: `translate(${p.x.toFixed(1)},${p.y.toFixed(1)})`,
          onclick: () => this.onNode?.(n.id),
        },
        s('title', { text: kind === 'page'
          ? `node ${n.id}: ${n.process}, ${n.membership ?? 'unknown'}${n.side ? `, side ${n.side}` : ''}`
          : `${kind === 'native' ? 'native node' : 'replica relayed for another page'} ${label(n.id)}: ${n.membership ?? 'unknown'}${n.address ? ` (${n.address})` : ''}` }),
        kind === 'native'
          ? s('rect', { x: -NODE_R + 2, y: -NODE_R + 2, width: 2 * NODE_R - 4, height: 2 * NODE_R - 4, rx: 5, fill, class: 'node-disc' })
          : s('circle', { r: NODE_R, fill, class: 'node-disc' }),
        s('text', { class: 'node-label', 'text-anchor': 'middle', dy: '0.35em', text: label(n.id) }),
        !up && s('path', { class: 'node-x', d: 'M-11,-11 L11,11 M11,-11 L-11,11' }),
        n.side && s('text', { class: `node-side side-${n.side}`, 'text-anchor': 'middle', y: NODE_R + 14, text: `side ${n.side}` }),
        tag && s('text', { class: `node-tag tag-${kind}`, 'text-anchor': 'middle', y: NODE_R + 12, text: tag })),
      );
    }
  }

  // Cluster mode's lines: the native nodes' mesh and each relayed replica's connection
  // to its host. Not clickable: the page does not carry these frames.
  #connections(nodes) {
    const natives = nodes.filter((n) => n.kind === 'native');
    const line = (a, b, cls, title) => {
      const p = this.positions.get(a);
      const q = this.positions.get(b);
      if (!p || !q) return;
      this.layers.links.append(s('line', { x1: p.x, y1: p.y, x2: q.x, y2: q.y, class: `link ${cls}`, 'data-link': `${a}-${b}` },
        s('title', { text: title })));
    };
    for (let i = 0; i < natives.length; i++) {
      for (let j = i + 1; j < natives.length; j++) {
        line(natives[i].id, natives[j].id, 'link-native', `native ${label(natives[i].id)}–${label(natives[j].id)}: peer WebSocket`);
      }
    }
    for (const n of nodes) {
      if (n.kind === 'native' || n.host == null) continue;
      const attached = n.kind !== 'page' || n.process === 'running';
      line(n.id, n.host, attached ? 'link-relay' : 'link-relay link-relay-down',
        `node ${n.id} is relayed by native ${label(n.host)} (WebSocket /replica)${attached ? '' : `; ${n.process}`}`);
    }
  }

  /** The key's position on the ring and lines to its preference list (null: none). */
  setKey(pref) {
    this.layers.key.replaceChildren();
    this.layers.pref.replaceChildren();
    if (!pref) return;
    const tip = point(C, C, R_IN - 2, pref.position);
    const base1 = point(C, C, R_OUT + 12, pref.position - 0.012);
    const base2 = point(C, C, R_OUT + 12, pref.position + 0.012);
    this.layers.key.append(
      s('path', { class: 'key-marker', d: `M${tip.x},${tip.y} L${base1.x},${base1.y} L${base2.x},${base2.y} Z` },
        s('title', { text: `key at ${pref.position.toFixed(4)}` })),
    );
    pref.nodes.forEach((id, i) => {
      const q = this.positions.get(id);
      if (!q) return;
      this.layers.pref.append(
        s('line', { class: 'pref-line', x1: tip.x, y1: tip.y, x2: q.x, y2: q.y, stroke: color(id), 'stroke-dasharray': i === 0 ? null : '6 4' }),
      );
    });
  }
}
