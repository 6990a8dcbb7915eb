// One card per node: process state (running / killed), its state as membership sees it,
// role, key count, hint queue, and its ranges' Merkle roots against its co-replicas
// (a strip of ring buckets: green in sync, amber diverged, grey unknown). Cards are built
// once per node and updated in place, so a click is never lost to a re-render.
// Cluster mode: native nodes (and replicas relayed for another page) get cards of their
// own kind: their state as the page's replicas see it and, for a native node, what its
// status document says; the page cannot kill them, and their Merkle roots are not
// observable (the page's cards compare their ranges among browser co-replicas).

import { h, color, label } from './dom.js';
import { nativeFacts } from './native-status.js';

const BUCKETS = 24;

// Worst state per ring bucket of the ranges node `id` holds, with a tooltip naming the
// bucket's ranges and one of their Merkle roots (this node's).
function strip(ranges, id) {
  const cells = Array.from({ length: BUCKETS }, () => ({ state: null, count: 0, root: null }));
  const rank = { unobserved: 0, 'in-sync': 1, partial: 2, diverged: 3 };
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
      ? `ring ${(i / BUCKETS).toFixed(2)}–${((i + 1) / BUCKETS).toFixed(2)}: ${c.count} ranges, ${
        c.state === 'unobserved' ? 'co-replicas native (roots not observable)' : c.state}; e.g. root ${c.root}`
      : 'no ranges here',
  }));
}

export class NodesPanel {
  constructor(el, { onKill, onRestart, onRemove, onRemoveMember, onSelect, clusterMode = false }) {
    this.el = el;
    this.cards = new Map();
    this.actions = { onKill, onRestart, onRemove, onRemoveMember, onSelect };
    this.clusterMode = clusterMode;
  }

  // A native node's card, or a remote (relayed for someone else) replica's.
  #externalCard(id, kind) {
    const f = {};
    const native = kind === 'native';
    const card = h('div', { class: `node-card node-card-${kind}`, 'data-node': id, 'data-kind': kind },
      h('div', { class: 'card-head' },
        h('span', { class: `swatch swatch-${kind}`, style: `background:${color(id)}` }, label(id)),
        h('span', { class: `state state-${kind}` }, native ? 'native' : 'relayed'),
        (f.member = h('span', { class: 'member' })),
        h('span', { class: 'spacer' }),
        native
          ? h('span', { class: 'note' }, 'not killable from the page')
          : (f.remove = h('button', { class: 'remove', 'data-action': 'remove-member', title: 'drop it from the ring (for a replica gone for good)',
            onclick: () => this.actions.onRemoveMember?.(id) }, 'Remove'))),
      (f.facts = h('div', { class: 'facts' })),
      h('div', { class: 'merkle' }, (f.sync = h('span', { class: 'sync' }))));
    this.cards.set(id, { card, f, kind });
    return this.cards.get(id);
  }

  #updateExternal(n, { card, f }) {
    const ext = n.external ?? {};
    card.dataset.membership = n.membership ?? 'unknown';
    f.member.textContent = n.membership ?? '';
    f.member.className = `member member-${n.membership ?? 'unknown'}`;
    f.member.title = n.views;
    if (n.kind === 'native') {
      const polled = ext.status ? nativeFacts(ext.status) : ext.error ? `status: ${ext.error}` : 'status: asking…';
      f.facts.textContent = `${n.address ?? ''} · ${polled}`;
      card.dataset.role = ext.status?.role ?? '';
      f.sync.textContent = 'Merkle roots: not in a native node\'s status; keys: not reported';
    } else {
      f.remove.disabled = n.membership !== 'dead';
      f.remove.title = n.membership === 'dead' ? 'drop it from the ring (gone for good)' : 'only a replica seen dead can be removed from here';
      f.facts.textContent = `a replica relayed by native ${n.host != null ? label(n.host) : '?'} for another page or process`;
      f.sync.textContent = 'Merkle roots: not observable from this page';
    }
  }

  #card(id, kind = 'page') {
    if (this.cards.has(id)) return this.cards.get(id);
    if (kind !== 'page') return this.#externalCard(id, kind);
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
      const cached = this.cards.get(n.id);
      if (cached && (cached.kind ?? 'page') !== (n.kind ?? 'page')) {
        // A member that became this page's (or stopped being it): a card of its new kind.
        cached.card.remove();
        this.cards.delete(n.id);
      }
      const entry = this.#card(n.id, n.kind);
      const { card, f } = entry;
      if (!card.isConnected || card !== this.el.children[nodes.indexOf(n)]) this.el.insertBefore(card, this.el.children[nodes.indexOf(n)] ?? null);
      if (entry.kind && entry.kind !== 'page') {
        this.#updateExternal(n, entry);
        continue;
      }
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
      const relay = this.clusterMode && st?.transport
        ? ` · ${st.transport.connected ? 'relayed by' : 'detached from'} ${st.transport.host != null ? `n${st.transport.host}` : 'a native node'}`
        : '';
      f.facts.textContent = st?.failed
        ? `replica failed: ${st.failed} (restart it)`
        : st
        ? `${st.role} · layout v${st.layoutVersion}${st.pendingVersion != null ? `→v${st.pendingVersion}` : ''} · keys ${st.keys ?? '?'} · hints ${st.hintsQueued}${relay}`
        : n.process === 'failed' ? `failed: ${n.error ?? ''}`
        : n.process === 'starting' && this.clusterMode ? 'joining (or re-attaching to) the native cluster…'
        : n.process === 'stopped' && this.clusterMode ? 'waiting for its turn (one at a time)' : '—';
      const mine = sync.perNode.get(n.id);
      const live = n.process === 'running' && mine;
      f.sync.textContent = !live ? 'Merkle: (not running)'
        : this.clusterMode
        ? `Merkle: ${mine.inSync}/${mine.total} ranges in sync with browser co-replicas${mine.unobserved ? ` (+${mine.unobserved} whose co-replicas are all native)` : ''}`
        : `Merkle: ${mine.inSync}/${mine.total} ranges in sync`;
      card.dataset.inSync = live && mine.total > 0 && mine.inSync === mine.total ? 'true' : 'false';
      const cells = live ? strip(sync.ranges, n.id) : [];
      f.cells.forEach((c, i) => {
        c.className = cells[i]?.cls ?? 'none';
        c.title = cells[i]?.title ?? '';
      });
    }
  }
}
