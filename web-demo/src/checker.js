// Per-key linearizability checker for registers written with unique values, run while
// the history grows. Outcomes of an operation:
//   ok            happened between invoke and completion (reads: returned `value`)
//   unavailable   a write that did not happen (the store says so: safe to retry)
//   indeterminate a write that may have happened at any time after invoke, or never
//   failed        a read that returned nothing (it has no effect, so it is dropped)
// The history is cut into segments at instants no completed operation spans; each is
// checked by checkSegment from the set of values the register may hold at the cut.
// Indeterminate writes no read has returned yet "float": they may still take effect
// later, so a later segment may linearize them anywhere (once). Memory is bounded:
// operations waiting for a cut, floating writes, and recorded violations.

import { checkSegment } from './wgl.js';

export const LIMITS = {
  segmentOps: 48, // cut as soon as a segment has this many operations
  pendingOpsMax: 2000, // without a cut by then, the oldest operations are given up on
  floatingMax: 1000, // indeterminate writes remembered per key
  violationsKept: 20,
  budget: 200_000, // search configurations per segment
};

export class KeyChecker {
  constructor(key, limits = LIMITS) {
    this.key = key;
    this.limits = { ...LIMITS, ...limits };
    this.states = new Set([null]);
    this.floating = new Map(); // value -> invoke time
    this.ops = []; // finished, not yet checked: { kind, value, inv, end } (end null: indeterminate write)
    this.stats = { checked: 0, segments: 0, violations: 0, inconclusive: 0, forgotten: 0 };
    this.violations = [];
  }

  /** Records a finished operation (see the outcomes above). */
  add(kind, value, inv, end, outcome) {
    if (outcome === 'unavailable' || (kind === 'read' && outcome !== 'ok')) return;
    const v = value === undefined ? null : value;
    this.ops.push({ kind, value: v, inv, end: outcome === 'indeterminate' ? null : end });
  }

  /**
   * Checks every segment that can be cut before `horizon`: the invoke time of the
   * oldest operation still in flight on this key (Infinity when none).
   * Returns the violations found by this call.
   */
  check(horizon = Infinity) {
    const found = [];
    for (;;) {
      this.ops.sort((a, b) => a.inv - b.inv);
      const cut = this.#findCut(horizon);
      if (cut === 0) break;
      const segment = this.ops.splice(0, cut);
      const v = this.#checkSegment(segment);
      if (v) found.push(v);
    }
    if (this.ops.length > this.limits.pendingOpsMax) {
      // No quiet instant for too long: give up on the oldest half (counted, not checked).
      const dropped = this.ops.splice(0, this.ops.length >> 1);
      this.stats.inconclusive++;
      this.#widen(dropped);
    }
    return found;
  }

  // Length of the first checkable segment (0: none yet). A cut before ops[j] is valid
  // when every earlier completed operation ended before ops[j] and `horizon` began.
  #findCut(horizon) {
    let maxEnd = -Infinity;
    let lastValid = 0;
    for (let j = 1; j <= this.ops.length; j++) {
      const prev = this.ops[j - 1];
      if (prev.inv >= horizon) break;
      if (prev.end !== null) maxEnd = Math.max(maxEnd, prev.end);
      const next = Math.min(this.ops[j]?.inv ?? Infinity, horizon);
      if (maxEnd < next) {
        lastValid = j;
        if (j >= this.limits.segmentOps) return j;
      }
    }
    return horizon === Infinity ? lastValid : 0;
  }

  #checkSegment(segment) {
    const readEnds = new Map(); // value -> earliest end of a read returning it
    for (const op of segment) {
      if (op.kind === 'read' && op.end < (readEnds.get(op.value) ?? Infinity)) readEnds.set(op.value, op.end);
    }
    const ops = [];
    const consumed = [];
    const unread = [];
    for (const op of segment) {
      if (op.end !== null) ops.push(op);
      else if (readEnds.has(op.value)) ops.push({ ...op, end: readEnds.get(op.value) });
      else unread.push(op);
    }
    for (const [value] of this.floating) {
      if (readEnds.has(value)) {
        consumed.push(value);
        ops.push({ kind: 'write', value, inv: -Infinity, end: readEnds.get(value) });
      }
    }
    this.stats.segments++;
    this.stats.checked += segment.length;
    const r = checkSegment(ops, this.states, { budget: this.limits.budget });
    for (const value of consumed) this.floating.delete(value);
    for (const op of unread) this.#float(op);
    if (r.result === 'ok') {
      this.states = r.finals;
      return null;
    }
    this.#widen(ops);
    if (r.result === 'unknown') {
      this.stats.inconclusive++;
      return null;
    }
    this.stats.violations++;
    const violation = describe(this.key, r.stuck, segment);
    if (this.violations.length < this.limits.violationsKept) this.violations.push(violation);
    return violation;
  }

  #float(op) {
    this.floating.set(op.value, op.inv);
    if (this.floating.size > this.limits.floatingMax) {
      this.floating.delete(this.floating.keys().next().value);
      this.stats.forgotten++;
    }
  }

  // After a segment that could not be checked, anything it wrote may be current.
  #widen(ops) {
    for (const op of ops) if (op.kind === 'write') this.states.add(op.value);
  }
}

function describe(key, stuck, segment) {
  const op = stuck?.op;
  const what = op
    ? `${op.kind} ${op.kind === 'read' ? 'returned' : 'of'} ${JSON.stringify(op.value)} ` +
      `[${fmt(op.inv)}..${fmt(op.end)} ms] cannot be ordered (register held ${JSON.stringify(stuck.registerHeld)})`
    : 'no order of the segment is legal';
  return { key, message: `key ${JSON.stringify(key)}: ${what}`, ops: segment.length };
}

const fmt = (t) => (Number.isFinite(t) ? t.toFixed(1) : String(t));

/** Many keys: one KeyChecker each; in-flight invocations give each key its horizon. */
export class Checker {
  constructor(limits = LIMITS) {
    this.limits = limits;
    this.keys = new Map();
    this.inflight = new Map(); // id -> { key, inv }
    this.nextId = 1;
  }

  invoke(key, t) {
    const id = this.nextId++;
    this.inflight.set(id, { key, inv: t });
    return id;
  }

  /** Ends invocation `id`: kind 'write' (value written) or 'read' (value returned). */
  complete(id, kind, value, t, outcome) {
    const call = this.inflight.get(id);
    if (!call) return;
    this.inflight.delete(id);
    this.#key(call.key).add(kind, value, call.inv, t, outcome);
  }

  /** Checks what can be checked; returns the violations found now. */
  check() {
    const horizon = new Map();
    for (const { key, inv } of this.inflight.values()) horizon.set(key, Math.min(horizon.get(key) ?? Infinity, inv));
    const found = [];
    for (const [key, kc] of this.keys) found.push(...kc.check(horizon.get(key) ?? Infinity));
    return found;
  }

  totals() {
    const t = { checked: 0, segments: 0, violations: 0, inconclusive: 0, forgotten: 0, floating: 0 };
    for (const kc of this.keys.values()) {
      for (const k of Object.keys(kc.stats)) t[k] += kc.stats[k];
      t.floating += kc.floating.size;
    }
    return t;
  }

  violations() {
    return [...this.keys.values()].flatMap((kc) => kc.violations);
  }

  #key(key) {
    if (!this.keys.has(key)) this.keys.set(key, new KeyChecker(key, this.limits));
    return this.keys.get(key);
  }
}
