// The traffic table: frames delivered and dropped per message type since the page
// opened (the kinds are the protocol's few message types, so the table is bounded).

import { h } from './dom.js';

export function renderTraffic(table, frames, unshown) {
  const rows = [...frames].sort((a, b) => a[0].localeCompare(b[0]));
  table.replaceChildren(
    h('tr', {}, h('th', {}, 'frame'), h('th', {}, 'delivered'), h('th', {}, 'dropped')),
    ...rows.map(([k, c]) => h('tr', {}, h('td', {}, k), h('td', {}, String(c.delivered)), h('td', {}, String(c.dropped)))),
    h('tr', { class: 'muted' }, h('td', {}, 'not animated'), h('td', {}, String(unshown)), h('td', {})),
  );
}

/**
 * Cluster mode: the page sees no frames, so the table shows each replica's relay
 * connection instead (`status().transport`): its host, whether it is attached, how
 * many times it attached, the last error.
 */
export function renderRelays(table, nodes) {
  table.replaceChildren(
    h('tr', {}, h('th', {}, 'node'), h('th', {}, 'relayed by'), h('th', {}, 'attached'), h('th', {}, 'attachments'), h('th', {}, 'last error')),
    ...nodes.map((n) => {
      const t = n.running ? n.snapshot?.status?.transport : null;
      return h('tr', { 'data-node': n.id },
        h('td', {}, String(n.id)),
        h('td', {}, t?.host != null ? `n${t.host}` : '—'),
        h('td', {}, t ? (t.connected ? 'yes' : 'no') : n.state),
        h('td', {}, t ? String(t.attachments) : '—'),
        h('td', {}, t?.lastError ?? ''));
    }),
  );
}
