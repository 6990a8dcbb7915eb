// The simulated network between the page's replicas: which links are up, and what
// happens to a frame sent over one. Pure policy (no timers, no workers) so it can be
// tested in Node; the cluster applies it to every frame.

const linkKey = (a, b) => (a < b ? `${a}-${b}` : `${b}-${a}`);

export class Network {
  constructor({ latencyMs = 1, jitterMs = 4, lossRate = 0, random = Math.random } = {}) {
    this.latencyMs = latencyMs;
    this.jitterMs = jitterMs;
    this.lossRate = lossRate;
    this.random = random;
    this.sides = null; // Map node id -> 'A' | 'B' while partitioned
    this.cuts = new Set(); // links cut one by one ('1-3')
  }

  /** Splits the nodes into two sides; frames between the sides are dropped. */
  partition(sideA, sideB) {
    this.sides = new Map();
    for (const id of sideA) this.sides.set(id, 'A');
    for (const id of sideB) this.sides.set(id, 'B');
  }

  /** Ends the partition and repairs every cut link (loss and latency stay). */
  heal() {
    this.sides = null;
    this.cuts.clear();
  }

  /** Nodes not placed on a side (added later) are on side A. */
  side(id) {
    return this.sides ? (this.sides.get(id) ?? 'A') : null;
  }

  get partitioned() {
    return this.sides !== null;
  }

  toggleLink(a, b) {
    const k = linkKey(a, b);
    if (!this.cuts.delete(k)) this.cuts.add(k);
    return !this.cuts.has(k);
  }

  isCut(a, b) {
    return this.cuts.has(linkKey(a, b));
  }

  /** Why a link is down ('partition' | 'cut'), or null when it is up. */
  linkDown(a, b) {
    if (this.sides && this.side(a) !== this.side(b)) return 'partition';
    if (this.cuts.has(linkKey(a, b))) return 'cut';
    return null;
  }

  /** The fate of one frame: { deliver, delayMs, reason }. */
  route(from, to) {
    const down = this.linkDown(from, to);
    if (down) return { deliver: false, delayMs: 0, reason: down };
    if (this.lossRate > 0 && this.random() < this.lossRate) return { deliver: false, delayMs: 0, reason: 'loss' };
    return { deliver: true, delayMs: this.latencyMs + this.random() * this.jitterMs, reason: null };
  }
}
