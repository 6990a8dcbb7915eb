// Linearizability of one segment of a register's history: a Wing–Gong search with
// Lowe's memoisation (a configuration is the set of operations linearized so far and the
// register's value; each is explored once). Exhaustive, so it returns every value the
// register can hold after the segment, which the next segment starts from.
//
// An operation: { kind: 'write' | 'read', value, inv, end } with inv < end (inv may be
// -Infinity, end is finite). Values are compared with ===; null is "absent".

/**
 * @param {Array<{kind: string, value: any, inv: number, end: number}>} ops
 * @param {Iterable<any>} initial the values the register may hold before the segment
 * @param {{budget?: number}} [limits] configurations explored before giving up
 * @returns {{ result: 'ok', finals: Set<any> }
 *   | { result: 'violation', stuck: object, linearized: number }
 *   | { result: 'unknown', explored: number }}
 */
export function checkSegment(ops, initial, { budget = 200_000 } = {}) {
  const sorted = [...ops].sort((a, b) => a.inv - b.inv);
  const n = sorted.length;
  const done = new Uint8Array(n);
  const seen = new Set();
  const finals = new Set();
  let explored = 0;
  let deepest = -1;
  let stuck = null;

  const memoKey = (state) => {
    // The set of done operations, as a compact string; ops are few per segment.
    let s = '';
    for (let i = 0; i < n; i += 16) {
      let w = 0;
      for (let j = i; j < Math.min(i + 16, n); j++) w = (w << 1) | done[j];
      s += String.fromCharCode(w + 0x100);
    }
    return s + '|' + (state === null ? '\u0000' : typeof state + ':' + String(state));
  };

  // Returns false when the budget ran out.
  const explore = (count, state) => {
    if (count === n) {
      finals.add(state);
      return true;
    }
    const key = memoKey(state);
    if (seen.has(key)) return true;
    seen.add(key);
    if (++explored > budget) return false;
    // An operation may go next only if no pending operation ended before it began.
    let minEnd = Infinity;
    for (let i = 0; i < n; i++) if (!done[i] && sorted[i].end < minEnd) minEnd = sorted[i].end;
    let progressed = false;
    for (let i = 0; i < n && sorted[i].inv <= minEnd; i++) {
      if (done[i]) continue;
      const op = sorted[i];
      if (op.kind === 'read' && op.value !== state) continue;
      progressed = true;
      done[i] = 1;
      const ok = explore(count + 1, op.kind === 'write' ? op.value : state);
      done[i] = 0;
      if (!ok) return false;
    }
    if (!progressed && count > deepest) {
      deepest = count;
      stuck = firstBlocked(sorted, done, minEnd, state);
    }
    return true;
  };

  for (const state of new Set(initial)) {
    if (!explore(0, state)) return { result: 'unknown', explored };
  }
  if (finals.size > 0) return { result: 'ok', finals };
  return { result: 'violation', stuck, linearized: Math.max(deepest, 0) };
}

// The pending operation with the earliest end: the one no order could place.
function firstBlocked(sorted, done, minEnd, state) {
  for (let i = 0; i < sorted.length; i++) {
    if (!done[i] && sorted[i].end === minEnd) return { op: sorted[i], registerHeld: state };
  }
  return null;
}
