// Messages flowing between nodes: a dot per frame from sender to receiver (a dropped one
// turns red and stops half way). Bounded: at most MAX_FLYING dots at once; frames beyond
// that are counted, not drawn. Also keeps per-kind counters for the traffic table.

import { s } from './dom.js';

const MAX_FLYING = 48;
const FLIGHT_MS = 450;

/** Colour class of a frame kind. */
export function kindClass(kind) {
  if (/^Gossip|Heartbeat|Ping/.test(kind)) return 'msg-gossip';
  if (/^AntiEntropy|Sync|Stream|Range/.test(kind)) return 'msg-sync';
  if (/^Read/.test(kind)) return 'msg-read';
  if (/^Write|Hint|Put/.test(kind)) return 'msg-write';
  return 'msg-other';
}

export class Messages {
  constructor(layer, pointOf) {
    this.layer = layer;
    this.pointOf = pointOf;
    this.flying = [];
    this.unshown = 0;
    this.enabled = true;
    this.showGossip = false;
    this.raf = 0;
  }

  /** A frame event from the cluster: { from, to, kind, dropped }. */
  add({ from, to, kind, dropped }) {
    if (!this.enabled || document.hidden) return;
    const cls = kindClass(kind);
    if (cls === 'msg-gossip' && !this.showGossip && !dropped) return;
    const p = this.pointOf(from);
    const q = this.pointOf(to);
    if (!p || !q) return;
    if (this.flying.length >= MAX_FLYING) {
      this.unshown++;
      return;
    }
    const dot = s('circle', { r: cls === 'msg-gossip' || cls === 'msg-sync' ? 3 : 5, class: `msg ${cls}${dropped ? ' msg-dropped' : ''}` });
    this.layer.append(dot);
    this.flying.push({ dot, p, q, t0: performance.now(), until: dropped ? 0.5 : 1 });
    if (!this.raf) this.raf = requestAnimationFrame((t) => this.#tick(t));
  }

  #tick(now) {
    this.raf = 0;
    this.flying = this.flying.filter((m) => {
      const f = (now - m.t0) / FLIGHT_MS;
      if (f >= m.until) {
        m.dot.remove();
        return false;
      }
      m.dot.setAttribute('cx', (m.p.x + (m.q.x - m.p.x) * f).toFixed(1));
      m.dot.setAttribute('cy', (m.p.y + (m.q.y - m.p.y) * f).toFixed(1));
      return true;
    });
    if (this.flying.length) this.raf = requestAnimationFrame((t) => this.#tick(t));
  }
}
