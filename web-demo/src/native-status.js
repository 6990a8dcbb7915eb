// Cluster mode: what the native nodes say about themselves. The page's replicas see the
// native nodes only as ring members (id, address, liveness); for the rest (role, layout,
// hints held, anti-entropy progress) the page keeps one thin `Client` of the package per
// native node (WebSocket `/client` at the member's address) and asks it for the node's
// status document (its HTTP `/status`) every few seconds. Read-only; a node that cannot
// be reached from the browser just shows the error.

const POLL_MS = 2000;
const RETRY_MS = 3000;
const REQUEST_TIMEOUT_MS = 3000;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** `ws://host:port` of a native member's address (`host:port`), in the seed's scheme. */
export function memberUrl(address, seedUrl) {
  if (!address || address.startsWith('relay:')) return null;
  if (/^wss?:\/\//.test(address)) return address;
  return `${seedUrl.startsWith('wss:') ? 'wss' : 'ws'}://${address}`;
}

/** One member probe: the cluster's members as the node at `url` sees them. */
export async function probeMembers(ringkv, url, token) {
  const client = await ringkv.Client.connect([url], { token: token ?? undefined, requestTimeoutMs: 5000 });
  try {
    const doc = await client.status();
    return doc.members.map((m) => ({ id: m.id, address: m.address, zone: m.zone, state: m.state }));
  } finally {
    client.close();
  }
}

export class NativeStatus {
  constructor(ringkv, { seedUrl, token, onUpdate = () => {} }) {
    this.ringkv = ringkv;
    this.seedUrl = seedUrl;
    this.token = token ?? undefined;
    this.onUpdate = onUpdate;
    this.nodes = new Map(); // id -> { url, status, error, at, stop }
  }

  /** Polls exactly these native members: [{ id, address }]. */
  track(members) {
    const want = new Map(members.map((m) => [m.id, memberUrl(m.address, this.seedUrl)]).filter(([, url]) => url));
    for (const [id, n] of this.nodes) {
      if (want.get(id) !== n.url) {
        n.stop = true;
        this.nodes.delete(id);
      }
    }
    for (const [id, url] of want) {
      if (this.nodes.has(id)) continue;
      const n = { url, status: null, error: null, at: 0, stop: false };
      this.nodes.set(id, n);
      this.#poll(n);
    }
  }

  get(id) {
    return this.nodes.get(id) ?? null;
  }

  async #poll(n) {
    let client = null;
    while (!n.stop) {
      try {
        client ??= await this.ringkv.Client.connect([n.url], { token: this.token, requestTimeoutMs: REQUEST_TIMEOUT_MS });
        n.status = await client.status();
        n.error = null;
        n.at = performance.now();
      } catch (e) {
        n.error = `${e.code ?? 'ERROR'}: ${e.message}`;
        n.status = null;
        client?.close();
        client = null;
      }
      this.onUpdate();
      await sleep(n.error ? RETRY_MS : POLL_MS);
    }
    client?.close();
  }
}

/** The facts a native node's card shows, from its status document. */
export function nativeFacts(doc) {
  const hints = (doc.members ?? []).reduce((sum, m) => sum + (m.hints_held_for ?? 0), 0);
  const pending = doc.membership?.pending_version;
  const ae = doc.anti_entropy ?? {};
  return `${doc.role} · layout v${doc.layout_version}${pending != null ? `→v${pending}` : ''} · hints ${hints} · ` +
    `anti-entropy: ${ae.ranges_exchanged ?? 0} range exchanges, ${ae.exchanges_repaired ?? 0} repaired`;
}
