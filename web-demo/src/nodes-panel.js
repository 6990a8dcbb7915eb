// One card per node: process state (running / killed), its state as membership sees it,
// role, key count, hint queue, and its ranges' Merkle roots against its co-replicas
// (a strip of ring buckets: green in sync, amber diverged, grey unknown). Cards are built
// once per node and updated in place, so a click is never lost to a re-render.

import { h, color } from './dom.js';

const BUCKETS = 24;

// Worst state per ring bucket of the ranges node `id` holds, with a tooltip naming the
// bucket's ranges and one of their Merkle roots (this node's).
function strip(ranges, id) {
  const cells = Array.from({ length: BUCKETS }, () => ({ state: null, count: 0, root: null }));
  const rank = { 'in-sync': 1, partial: 2, diverged: 3 };
  for (const r of ranges) {
    if (!r.roots.has(id)) continue;
    const c = cells[Math.min(BUCKETS - 1, Math.floor(r.end * BUCKETS))];
    c.count++;
    if (!c.state || rank[r.state] > rank[c.state]) {
      c.state = r.state;
      c.root = r.roots.get(id);
    }
  }
  return cells.map((c, i) => ({
    cls: c.state ?? 'none',
    title: c.count
      ? `ring ${(i / BUCKETS).toFixed(2)}–${((i + 1) / BUCKETS).toFixed(2)}: ${c.count} ranges, ${c.state}; e.g. root ${c.root}`
      : 'no ranges here',
  }));
}

export class NodesPanel {
  constructor(el, { onKill, onRestart, onRemove, onSelect }) {
    this.el = el;
    this.cards = new Map();
    this.actions = { onKill, onRestart, onRemove, onSelect };
  }

  #card(id) {
    if (this.cards.has(id)) return this.cards.get(id);
    const f = {};
    const card = h('div', { class: 'node-card', 'data-node': id },
      h('div', { class: 'card-head' },
        h('button', { class: 'swatch', style: `background:${color(id)}`, title: 'use as coordinator', onclick: () => this.actions.onSelect(id) }, String(id)),
        (f.state = h('span', { class: 'state' })),
        (f.member = h('span', { class: 'member' })),
        h('span', { class: 'spacer' }),
        (f.kill = h('button', { class: 'kill', 'data-action': 'kill', onclick: () => this.actions.onKill(id) }, 'Kill')),
        (f.restart = h('button', { class: 'restart', 'data-action': 'restart', onclick: () => this.actions.onRestart(id) }, 'Restart')),
        h('button', { class: 'remove', 'data-action': 'remove', title: 'leave the ring (or remove, if stopped)', onclick: () => this.actions.onRemove(id) }, 'Remove')),
      (f.facts = h('div', { class: 'facts' })),
      h('div', { class: 'merkle' }, (f.sync = h('span', { class: 'sync' })), (f.strip = h('span', { class: 'strip' }))));
    f.cells = Array.from({ length: BUCKETS }, () => h('i'));
    f.strip.append(...f.cells);
    this.cards.set(id, { card, f });
    return this.cards.get(id);
  }

  /**
   * @param {Array<{id, process, membership, views, snapshot}>} nodes
   * @param {{ ranges, perNode }} sync from rangeSync
   */
  update(nodes, sync) {
    const ids = new Set(nodes.map((n) => n.id));
    for (const [id, { card }] of this.cards) {
      if (!ids.has(id)) {
        card.remove();
        this.cards.delete(id);
      }
    }
    for (const n of nodes) {
      const { card, f } = this.#card(n.id);
      if (!card.isConnected || card !== this.el.children[nodes.indexOf(n)]) this.el.insertBefore(card, this.el.children[nodes.indexOf(n)] ?? null);
      const st = n.snapshot?.status;
      card.dataset.process = n.process;
      card.dataset.membership = n.membership ?? 'unknown';
      card.dataset.keys = st?.keys ?? '';
      f.state.textContent = n.process;
      f.state.className = `state state-${n.process}`;
      f.member.textContent = n.membership ? `${n.membership}` : '';
      f.member.className = `member member-${n.membership ?? 'unknown'}`;
      f.member.title = n.views;
      f.kill.disabled = n.process !== 'running';
      f.restart.disabled = n.process === 'running' || n.process === 'starting';
      f.facts.textContent = st?.failed
        ? `replica failed: ${st.failed} (restart it)`
        : st
        ? `${st.role} · layout v${st.layoutVersion}${st.pendingVersion != null ? `→v${st.pendingVersion}` : ''} · keys ${st.keys ?? '?'} · hints ${st.hintsQueued}`
        : n.process === 'failed' ? `failed: ${n.error ?? ''}` : '—';
      const mine = sync.perNode.get(n.id);
      const live = n.process === 'running' && mine;
      f.sync.textContent = live ? `Merkle: ${mine.inSync}/${mine.total} ranges in sync` : 'Merkle: (not running)';
      card.dataset.inSync = live && mine.total > 0 && mine.inSync === mine.total ? 'true' : 'false';
      const cells = live ? strip(sync.ranges, n.id) : [];
      f.cells.forEach((c, i) => {
        c.className = cells[i]?.cls ?? 'none';
        c.title = cells[i]?.title ?? '';
      });
    }
  }
}
