//! Helpers shared by the wasm test suites: JS-side deep equality (Object.is on leaves,
//! so -0 and NaN are compared exactly), value fixtures, an in-memory JS block store.
#![allow(dead_code)]

use wasm_bindgen::prelude::*;

#[wasm_bindgen(inline_js = r#"
export function deepEqual(a, b) {
  if (Object.is(a, b)) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return false;
  // Null-prototype objects decode as plain objects (documented).
  const proto = (o) => Object.getPrototypeOf(o) ?? Object.prototype;
  if (proto(a) !== proto(b)) return false;
  if (a instanceof Uint8Array) return a.length === b.length && a.every((x, i) => x === b[i]);
  if (a instanceof Date) return Object.is(a.getTime(), b.getTime());
  if (a instanceof Map || a instanceof Set) {
    const ea = [...a.entries()], eb = [...b.entries()];
    return ea.length === eb.length && ea.every((e, i) => deepEqual(e, eb[i]));
  }
  const ka = Reflect.ownKeys(a), kb = Reflect.ownKeys(b);
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && deepEqual(a[k], b[k]));
}

export function fixtures() {
  const proto = JSON.parse('{"__proto__": {"x": 1}}');
  const nullProto = Object.create(null); nullProto.k = 'v';
  return [
    undefined, null, true, false, 0, -0, NaN, Infinity, -Infinity, 1.5, -(2 ** 53), 2 ** 53 + 2,
    '', 'hello', 'ünïcødé ✓ 🚀', 'a\u0000b',
    0n, -1n, 2n ** 200n, -(3n ** 99n),
    new Uint8Array([]), new Uint8Array([0, 1, 255]),
    [], [1, 'two', [3, [4]], null], [undefined, 1],
    {}, { a: 1, b: { c: [true, null, { d: 'e' }] } }, proto, nullProto,
    new Map([[1, 'one'], ['k', { v: [1n] }]]), new Set([1, 'x', null]),
    new Date(0), new Date(1700000000123),
    { bytes: new Uint8Array(70000).fill(7), list: Array.from({ length: 1000 }, (_, i) => i) },
  ];
}

export function unsupported() {
  class Point { constructor() { this.x = 1; } }
  const cyclic = {}; cyclic.self = cyclic;
  let deep = []; for (let i = 0; i < 100; i++) deep = [deep];
  return [() => 1, Symbol('s'), new Point(), cyclic, deep, new Float64Array(2), { f: () => 1 }];
}

export function fieldOf(obj, name) { return obj == null ? undefined : obj[name]; }

// A block store kept in JS memory: what a Node file or Durable Object store does,
// minus the disk. `failCommits` makes commit() reject (to test the STORAGE path).
export class MemoryJsStore {
  constructor() { this.files = new Map(); this.commits = 0; this.failCommits = false; }
  async load() { return new Map([...this.files].map(([k, v]) => [k, v.slice()])); }
  async commit(changes) {
    if (this.failCommits) throw new Error('disk on fire');
    for (const name of changes.removed) this.files.delete(name);
    for (const f of changes.files) {
      const old = this.files.get(f.name) ?? new Uint8Array(0);
      const next = new Uint8Array(f.size);
      next.set(old.subarray(0, Math.min(old.length, f.size)));
      for (const c of f.chunks) next.set(c.bytes, c.offset);
      this.files.set(f.name, next);
    }
    this.commits++;
  }
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = deepEqual)]
    pub fn deep_equal(a: &JsValue, b: &JsValue) -> bool;
    pub fn fixtures() -> js_sys::Array;
    pub fn unsupported() -> js_sys::Array;
    #[wasm_bindgen(js_name = fieldOf)]
    pub fn field_of(obj: &JsValue, name: &str) -> JsValue;

    #[derive(Clone)]
    pub type MemoryJsStore;
    #[wasm_bindgen(constructor)]
    pub fn new() -> MemoryJsStore;
    #[wasm_bindgen(method, getter)]
    pub fn commits(this: &MemoryJsStore) -> u32;
    #[wasm_bindgen(method, setter, js_name = failCommits)]
    pub fn set_fail_commits(this: &MemoryJsStore, fail: bool);
}

/// The `code` of a rejected operation's error.
pub fn code_of(err: &JsValue) -> String {
    field_of(err, "code")
        .as_string()
        .unwrap_or_else(|| format!("no code: {err:?}"))
}
