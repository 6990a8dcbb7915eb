// Network controls: put each node on side A or B and partition, heal; latency, jitter
// and loss of every link. Single links are cut by clicking them in the ring view.

import { $, h, color } from './dom.js';

export class NetworkPanel {
  constructor(root, { network, ids, log, onChange }) {
    this.root = root;
    this.disabled = null;
    this.network = network;
    this.ids = ids; // () => node ids
    this.log = log;
    this.onChange = onChange;
    this.sides = new Map(); // planned side per node (before "Partition")
    this.sidesEl = $('#sides', root);
    this.statusEl = $('#net-status', root);
    $('#partition', root).addEventListener('click', () => this.partition());
    $('#heal', root).addEventListener('click', () => this.heal());
    const slider = (sel, apply) => {
      const el = $(sel, root);
      const out = $(`${sel}-out`, root);
      const set = () => {
        apply(Number(el.value));
        out.textContent = el.value;
      };
      el.addEventListener('input', set);
      set();
    };
    slider('#latency', (v) => (network.latencyMs = v));
    slider('#jitter', (v) => (network.jitterMs = v));
    slider('#loss', (v) => (network.lossRate = v / 100));
  }

  side(id) {
    return this.network.side(id) ?? this.sides.get(id) ?? 'A';
  }

  /** Cluster mode: the page carries no frames, so none of this applies; says why. */
  disable(reason) {
    this.disabled = reason;
    for (const el of this.root.querySelectorAll('#net button, #net input')) el.disabled = true;
    this.sidesEl.replaceChildren();
    this.render();
  }

  /** Redraws the side toggles (node set or partition changed). */
  render() {
    if (this.disabled) {
      this.statusEl.textContent = this.disabled;
      this.statusEl.dataset.partitioned = 'false';
      this.statusEl.dataset.disabled = 'true';
      return;
    }
    const ids = this.ids();
    this.sidesEl.replaceChildren(
      ...ids.map((id) =>
        h('button', {
          class: `side-toggle side-${this.side(id)}`, 'data-node': id, 'data-side': this.side(id),
          style: `border-color:${color(id)}`, title: 'click to move to the other side',
          onclick: () => {
            this.sides.set(id, this.side(id) === 'A' ? 'B' : 'A');
            if (this.network.partitioned) this.partition();
            else this.render();
          },
        }, `${id}: ${this.side(id)}`)),
    );
    const cuts = [...this.network.cuts];
    this.statusEl.textContent = this.network.partitioned
      ? `partitioned: A = {${ids.filter((i) => this.side(i) === 'A').join(', ')}}  B = {${ids.filter((i) => this.side(i) === 'B').join(', ')}}`
      : 'no partition';
    if (cuts.length) this.statusEl.textContent += `; cut links: ${cuts.join(', ')}`;
    this.statusEl.dataset.partitioned = String(this.network.partitioned);
  }

  partition() {
    const ids = this.ids();
    for (const id of ids) if (!this.sides.has(id)) this.sides.set(id, this.side(id));
    const a = ids.filter((id) => this.sides.get(id) === 'A');
    const b = ids.filter((id) => this.sides.get(id) === 'B');
    this.network.partition(a, b);
    this.log.add(`partition: {${a.join(',')}} | {${b.join(',')}}`, 'log-fault');
    this.render();
    this.onChange();
  }

  heal() {
    this.network.heal();
    this.sides.clear();
    this.log.add('network healed', 'log-fault');
    this.render();
    this.onChange();
  }
}
