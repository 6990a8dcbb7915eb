// Tiny DOM helpers: element builders for HTML and SVG, and a palette per node id.

const SVG_NS = 'http://www.w3.org/2000/svg';

function build(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

/** An HTML element: h('button', { class: 'x', onclick }, 'label'). */
export const h = (tag, attrs, ...children) => build(document.createElement(tag), attrs, children);

/** An SVG element. */
export const s = (tag, attrs, ...children) => build(document.createElementNS(SVG_NS, tag), attrs, children);

export const $ = (sel, root = document) => root.querySelector(sel);

const PALETTE = ['#e6194b', '#3cb44b', '#4363d8', '#f58231', '#911eb4', '#42d4f4', '#f032e6', '#9a6324', '#469990'];

// Cluster mode: ids are not 1..9 (native n1..n3, the page's 101..105), so colours are
// assigned by rank among the ring's members instead.
let ranked = null;

/** Colours by rank of `ids` (sorted); null restores colour by id. */
export function rankColors(ids) {
  ranked = ids ? new Map([...ids].sort((a, b) => a - b).map((id, i) => [id, PALETTE[i % PALETTE.length]])) : null;
}

/** The colour of node `id` (1-based). */
export const color = (id) => ranked?.get(id) ?? PALETTE[(id - 1) % PALETTE.length];

// Cluster mode: native nodes are labelled as the native CLI names them (n1, n2, ...).
let natives = new Set();

/** Marks which ids are native nodes (for labels). */
export function markNative(ids) {
  natives = new Set(ids);
}

export const isNative = (id) => natives.has(id);

/** The label of node `id`: `n1` for a native node, else the number. */
export const label = (id) => (natives.has(id) ? `n${id}` : String(id));

/** Bounded text log: keeps the newest `max` lines. */
export class Log {
  constructor(el, max = 200) {
    this.el = el;
    this.max = max;
  }

  add(text, cls) {
    const t = new Date().toLocaleTimeString();
    this.el.prepend(h('div', { class: cls ? `log-line ${cls}` : 'log-line' }, `${t}  ${text}`));
    while (this.el.childElementCount > this.max) this.el.lastElementChild.remove();
  }
}
