// Client operations: put / get / delete through a chosen coordinator with a chosen
// consistency. Shows the outcome (or the error code, e.g. UNAVAILABLE), the value, and
// for eventual reads the siblings and the version vector. Eventual puts write back the
// context of the last eventual read of that key, so reading then writing resolves
// siblings, and a blind put from two sides creates them.
// Cluster mode (`raw`): values are bytes (`encoding: 'raw'`, the typed string as UTF-8),
// as RESP and the native CLI read and write them; reads show them as text.

import { $, h } from './dom.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

// Bytes as a quoted string when they are UTF-8, else as hex.
function showBytes(b) {
  try {
    return JSON.stringify(utf8.decode(b));
  } catch {
    return `0x${[...b].map((x) => x.toString(16).padStart(2, '0')).join('')}`;
  }
}

const show = (v) => (v === undefined ? '(absent)' : v instanceof Uint8Array ? showBytes(v) : typeof v === 'string' ? JSON.stringify(v) : String(v));

export class OpsPanel {
  constructor(root, { cluster, coordinator, log, onKey, raw = false }) {
    this.raw = raw;
    this.cluster = cluster;
    this.coordinator = coordinator; // () => id
    this.log = log;
    this.onKey = onKey;
    this.contexts = new Map(); // key -> context of the last eventual read (bounded)
    this.key = $('#op-key', root);
    this.value = $('#op-value', root);
    this.consistency = $('#op-consistency', root);
    this.result = $('#op-result', root);
    this.detail = $('#op-detail', root);
    $('#op-put', root).addEventListener('click', () => this.run('put'));
    $('#op-get', root).addEventListener('click', () => this.run('get'));
    $('#op-delete', root).addEventListener('click', () => this.run('delete'));
    this.key.addEventListener('input', () => this.onKey(this.key.value));
  }

  async run(op) {
    const id = this.coordinator();
    const key = this.key.value;
    const consistency = this.consistency.value;
    const eventual = consistency === 'eventual';
    const opts = { consistency };
    if (this.raw) opts.encoding = 'raw';
    if (eventual && op !== 'get' && this.contexts.has(key)) opts.context = this.contexts.get(key);
    this.#set('pending', `${op} ${JSON.stringify(key)} via node ${id}…`);
    const t0 = performance.now();
    try {
      let text;
      if (op === 'put') {
        await this.cluster.call(id, 'put', [key, this.value.value, opts]);
        text = `put ok`;
      } else if (op === 'delete') {
        await this.cluster.call(id, 'delete', [key, opts]);
        text = 'delete ok';
      } else if (eventual) {
        const sib = await this.cluster.call(id, 'siblings', [key, opts]);
        this.#remember(key, sib.context);
        text = `get ok: ${sib.values.length === 1 ? show(sib.values[0]) : `${sib.values.length} siblings`}`;
        this.detail.replaceChildren(
          h('div', {}, `siblings: ${sib.values.map(show).join(' | ') || '(none)'}`),
          h('div', { class: 'version' }, `version vector: ${JSON.stringify(sib.version ?? {})} (the next eventual put of this key writes back this context)`),
        );
      } else {
        const v = await this.cluster.call(id, 'get', [key, opts]);
        text = `get ok: ${show(v)}`;
        this.detail.replaceChildren(h('div', { 'data-value': show(v) }, `value: ${show(v)}`));
      }
      if (op !== 'get') {
        if (eventual) this.contexts.delete(key);
        this.detail.replaceChildren();
      }
      const ms = (performance.now() - t0).toFixed(0);
      this.#set('ok', `${text} (node ${id}, ${consistency}, ${ms} ms)`);
      this.log.add(`${op} ${JSON.stringify(key)} via ${id}: ${text}`);
    } catch (e) {
      const code = e.code ?? 'ERROR';
      this.#set(code, `${code}: ${e.message} (node ${id}, ${consistency})`);
      this.log.add(`${op} ${JSON.stringify(key)} via ${id}: ${code}`, 'log-error');
    }
  }

  #remember(key, context) {
    this.contexts.delete(key);
    this.contexts.set(key, context);
    if (this.contexts.size > 100) this.contexts.delete(this.contexts.keys().next().value);
  }

  #set(status, text) {
    this.result.dataset.status = status;
    this.result.textContent = text;
  }
}
