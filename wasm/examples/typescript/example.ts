// Uses every option and error type of the ringkv package, so `tsc --noEmit` checks the
// declarations against real usage. (Type-checked by scripts/test; not run.)
import {
  Replica,
  FileBlockStore,
  RingkvError,
  TooLargeError,
  UnavailableError,
  IndeterminateError,
  OverloadedError,
  UnsupportedError,
  InvalidContextError,
  InvalidArgumentError,
  ClosedError,
  StorageError,
  CorruptValueError,
  IdentityError,
  ContentionError,
  NotAnIntegerError,
  encodeValue,
  decodeValue,
  frameKind,
  describeContext,
  Client,
  OpfsBlockStore,
  type BlockStore,
  type ClientOptions,
  type MemberSpec,
  type MembershipEvent,
  type PreferenceList,
  type RingView,
  type Transport,
  type BlockStoreChanges,
  type ErrorCode,
  type ReplicaOptions,
  type ReplicaStatus,
  type Value,
  type CasResult,
  type ScanPage,
  type ScanOptions,
} from 'ringkv';

class MapStore implements BlockStore {
  files = new Map<string, Uint8Array>();
  async load(): Promise<Map<string, Uint8Array>> {
    return new Map(this.files);
  }
  async commit(changes: BlockStoreChanges): Promise<void> {
    for (const name of changes.removed) this.files.delete(name);
    for (const f of changes.files) {
      const next = new Uint8Array(f.size);
      next.set((this.files.get(f.name) ?? new Uint8Array()).subarray(0, f.size));
      for (const c of f.chunks) next.set(c.bytes, c.offset);
      this.files.set(f.name, next);
    }
  }
}

const options: ReplicaOptions = {
  nodeId: 7n,
  storage: new MapStore(),
  zone: 'edge-1',
  consistency: 'linearizable',
  storageBytesMax: 64 << 20,
  maintenanceBudgetBytes: 128 << 10,
};

async function main(): Promise<void> {
  const replica = await Replica.open(options);
  const files = await Replica.open({ storage: new FileBlockStore('./data'), database: 'unused' });
  const value: Value = { name: 'Ada', born: 1815n, tags: new Set(['x']), raw: new Uint8Array(2) };
  await replica.put('user:1', value);
  await replica.put(new Uint8Array([1, 2]), [1, 'two', null, undefined, new Date()], {
    consistency: 'linearizable',
  });
  const back: Value = await replica.get('user:1');
  const siblings = await replica.getSiblings('k');
  await replica.put('k', 'merged', { consistency: 'eventual', context: siblings.context });
  await replica.delete('user:1');
  const status: ReplicaStatus = replica.status();
  console.log(back, status.engine.tables, status.counters.succeeded, status.failed);
  const bytes: Uint8Array = encodeValue(value);
  console.log(decodeValue(bytes));
  try {
    await replica.put('big', new Uint8Array(2 << 20));
  } catch (e) {
    if (e instanceof TooLargeError) console.log(e.what, e.sizeBytes, e.limitBytes);
    const classes = [UnavailableError, IndeterminateError, OverloadedError, UnsupportedError,
      InvalidContextError, InvalidArgumentError, ClosedError, StorageError, CorruptValueError,
      IdentityError, ContentionError, NotAnIntegerError];
    if (e instanceof RingkvError) {
      const code: ErrorCode = e.code;
      console.log(code, classes.some((C) => e instanceof C));
    }
  }
  await updates(replica);
  await files.close();
  await replica.close();
}

/** Conditional writes, counters and scans. */
async function updates(replica: Replica): Promise<void> {
  const first: CasResult = await replica.cas('doc', undefined, { v: 1 });
  const again = await replica.cas('doc', first.previous, undefined, { encoding: 'structured' });
  const won: boolean = await replica.setIfAbsent('lock', 'me');
  const had: boolean = await replica.setIfPresent('lock', undefined);
  const old: Value = await replica.getAndSet('doc', [1, 2], { consistency: 'linearizable' });
  const n: number | bigint = await replica.increment('hits');
  const exact: bigint = await replica.increment('hits', 1n);
  const read: number | bigint | undefined = await replica.getCounter('hits');
  const big: bigint | undefined = await replica.getCounter('hits', { bigint: true });
  console.log(again.applied, won, had, old, n, exact, read, big);
  const opts: ScanOptions = { count: 50, match: 'user:*', keyEncoding: 'utf8' };
  for await (const key of replica.scan(opts)) console.log(typeof key === 'string' ? key : key.length);
  let page: ScanPage = await replica.scanPage(0n, { keyEncoding: 'raw' });
  while (page.cursor !== 0n) page = await replica.scanPage(page.cursor);
  try {
    await replica.increment('doc', -5);
  } catch (e) {
    if (e instanceof NotAnIntegerError || e instanceof ContentionError) console.log(e.code);
    if (e instanceof CorruptValueError) console.log(e.applied);
  }
}

/** A cluster over a JS network, a relay member, and a thin client. */
async function cluster(): Promise<void> {
  const members: MemberSpec[] = [1, 2, 3].map((id) => ({ id, zone: `z${id}`, capacity: 1 }));
  const replicas = new Map<number, Replica>();
  for (const { id } of members) {
    const transport: Transport = {
      send: (to: number, frame: Uint8Array) => {
        console.log(frameKind(frame));
        replicas.get(to)?.deliver(id, frame);
      },
    };
    replicas.set(id, await Replica.open({ nodeId: id, members, transport, replicas: 3 }));
  }
  const first = replicas.get(1)!;
  const ring: RingView = first.ring();
  const where: PreferenceList = first.preferenceList('k');
  console.log(ring.vnodes[0].position, ring.pending, where.nodes, where.position);
  const listener = (e: MembershipEvent) => console.log(e.version, e.pendingVersion, e.members[0].state);
  first.on('membership', listener).off('membership', listener);
  await first.join({ id: 4, address: 'js:4' });
  await first.leave();
  await first.remove(4);
  const s = first.status();
  console.log(s.role, s.layoutVersion, s.pendingVersion, s.hintsQueued, s.keys, s.ranges[0].root,
    s.transport.kind, s.members[0].address, s.host.receivesDropped);

  const edge = await Replica.open({
    nodeId: 101,
    seeds: ['ws://127.0.0.1:7001'],
    token: 'secret',
    joinTimeoutMs: 10_000,
    valueEncoding: 'raw',
    capacity: 2,
    storage: 'indexeddb',
  });
  await edge.put('k', 'bytes', { encoding: 'raw' });
  // No nodeId: the cluster assigns one, kept in the store; a memory store must say it
  // forgets (ephemeral), and then leaves the cluster on close.
  const assigned = await Replica.open({ seeds: ['ws://127.0.0.1:7001'], storage: new MapStore() });
  const guest = await Replica.open({ seeds: ['ws://127.0.0.1:7001'], ephemeral: true });
  console.log(assigned.status().nodeId, guest.status().role === 'displaced');
  await guest.close();
  try {
    await Replica.open({ nodeId: 102, seeds: ['ws://127.0.0.1:7001'], storage: 'indexeddb' });
  } catch (e) {
    if (e instanceof IdentityError) console.log('rejoin under a new id:', e.code, e.message);
  }
  const worker = await Replica.open({ storage: 'opfs', database: 'w' });
  const opfs: BlockStore = new OpfsBlockStore('w2');
  console.log(worker.status().storage === 'opfs', opfs);
  await worker.close();
  const options: ClientOptions = { token: 'secret', consistency: 'eventual', valueEncoding: 'structured',
    requestTimeoutMs: 5000 };
  const client = await Client.connect(['ws://127.0.0.1:7001'], options);
  const { values, context } = await client.getSiblings('k', { encoding: 'raw' });
  console.log(values, describeContext(context), client.node, await client.status());
  await client.put('k', 1);
  await client.get('k');
  await client.delete('k');
  const swapped: CasResult = await client.cas('k', undefined, 'v');
  const count: bigint = await client.increment('c', 10n);
  for await (const key of client.scan({ match: 'k*' })) console.log(key, swapped.applied, count);
  client.close();
  await edge.close();
}

void main();
void cluster();
