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
