// Type declarations of the `ringkv` package (hand-written over the generated bindings).

/** A key: a string (stored as its UTF-8 bytes, so "a" and Uint8Array [0x61] are the same key) or bytes. */
export type Key = string | Uint8Array;

/**
 * Any value the package can store (encoding: README, "Value encoding"). Objects must be
 * plain (or null-prototype; they read back as plain objects); array holes read back as
 * undefined; strings are stored as UTF-8 (lone surrogates become U+FFFD).
 */
export type Value =
  | undefined
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | Date
  | Value[]
  | Map<Value, Value>
  | Set<Value>
  | { [key: string]: Value };

export type Consistency = 'linearizable' | 'eventual';

/** Chunks of one file to write at `offset`; the file is then cut to `size` bytes. */
export interface FileChange {
  name: string;
  size: number;
  chunks: { offset: number; bytes: Uint8Array }[];
}

/** One commit: delete `removed` first, then apply `files`. */
export interface BlockStoreChanges {
  removed: string[];
  files: FileChange[];
}

/**
 * A block store supplied by the host (a Node directory, Durable Object storage, ...).
 * `commit` must be atomic (after a crash, `load` returns the state before or after it,
 * never part of it) and durable when its promise resolves; commits never overlap.
 */
export interface BlockStore {
  load(): Promise<Map<string, Uint8Array> | Iterable<[string, Uint8Array]> | undefined>;
  commit(changes: BlockStoreChanges): Promise<void>;
  close?(): void | Promise<void>;
}

export interface ReplicaOptions {
  /**
   * This node's id, a positive integer, kept with the store's data on first open: a
   * store a node opened before keeps its id (open it without `nodeId`, or with that
   * id; another id is INVALID_ARGUMENT). Standalone and `transport` replicas default
   * to 1. Through `seeds`, omit it to have the cluster assign a unique id (in
   * [2^32, 2^53)) on the store's first open. Not allowed with `ephemeral`.
   */
  nodeId?: number | bigint;
  /**
   * 'memory' (default; gone on close), 'indexeddb' (browsers, workers), 'opfs' (the
   * Origin Private File System; browser build, dedicated workers only: an
   * OpfsBlockStore named by `database`) or a BlockStore. Joining a cluster through
   * `seeds` with 'memory' needs `ephemeral: true`.
   */
  storage?: 'memory' | 'indexeddb' | 'opfs' | BlockStore;
  /**
   * IndexedDB database name / OPFS store name (default `ringkv-${nodeId}` / `${nodeId}`;
   * through `seeds` without `nodeId`: `ringkv-cluster` / `cluster`).
   */
  database?: string;
  /**
   * With `seeds` and storage 'memory' (required then, refused otherwise): the replica
   * forgets everything on close or reload, so it always joins under a fresh id the
   * cluster assigns (no `nodeId`) and `close()` first asks the cluster to let it leave
   * (bounded, best effort).
   */
  ephemeral?: boolean;
  /**
   * Join a native ringkv cluster: WebSocket addresses of some of its nodes
   * (`ws://host:port`, `wss://...`, or `host:port`). The replica attaches to the first
   * node that accepts it (`/replica`, which relays its cluster messages), asks it to add
   * this replica to the ring, and resolves once it is a member (`joinTimeoutMs`). A
   * replica reopened on the same storage is a member already and only re-attaches,
   * proving it is that member with its store's identity secret; if the node its ring
   * address names is gone, it attaches to another seed and re-homes there (a layout
   * change of its address). A store that cannot prove it is the member its id names
   * (it lost its data, or the id is another store's) is refused with IdentityError.
   * Needs a global `WebSocket` (browsers, workers, Node ≥ 22; Node 20–21:
   * `--experimental-websocket`).
   */
  seeds?: string[];
  /** The cluster's client token, if it requires one (seeds only). */
  token?: string;
  /** Bound on becoming a member through `seeds` (default 60000 ms); UNAVAILABLE after it. */
  joinTimeoutMs?: number;
  /**
   * A cluster over a network written in JS (e.g. MessageChannels between workers): the
   * replica calls `send` for every outgoing frame; hand arriving frames to
   * `replica.deliver(from, frame)`. Frames may be dropped, delayed, duplicated or
   * reordered; the protocol copes. Cannot be combined with `seeds`.
   */
  transport?: Transport;
  /**
   * With `transport`: the initial members of a new cluster (every founding replica
   * passes the same list, including itself). On reopen the durable membership wins.
   * Without `members` a replica with a `transport` starts as a joiner: it serves nothing
   * until a member adds it with `join(spec)`.
   */
  members?: MemberSpec[];
  /** Copies of each key (N) of a new cluster (default 3, at most 9). */
  replicas?: number;
  /** Ring weight (virtual nodes) of this replica (default 1, at most 64). */
  capacity?: number;
  /**
   * 'structured' (default): values use the package's value encoding. 'raw': values are
   * bytes (a string is stored as UTF-8, gets return Uint8Array), as RESP and other
   * byte clients of a native cluster read and write them.
   */
  valueEncoding?: ValueEncoding;
  /** Failure domain (default 'local'). */
  zone?: string;
  /** Default consistency of operations (default 'linearizable'). */
  consistency?: Consistency;
  /** Bound on the bytes an 'indexeddb' or custom store holds in memory (default 256 MiB). */
  storageBytesMax?: number;
  /** Compaction input bytes per step between events (default 256 KiB). */
  maintenanceBudgetBytes?: number;
}

export type ValueEncoding = 'structured' | 'raw';

/** A network written in JS; see `ReplicaOptions.transport`. */
export interface Transport {
  /** `frame` for node `to`; throwing counts as a lost message. */
  send(to: number, frame: Uint8Array): void;
}

/** A node of a layout. `address` defaults to `js:<id>` (a JS-network member). */
export interface MemberSpec {
  id: number;
  zone?: string;
  capacity?: number;
  address?: string;
}

export type MemberState = 'alive' | 'suspect' | 'dead';

export interface MembershipEvent {
  /** The committed layout's version. */
  version: number;
  /** The change in progress, or null. */
  pendingVersion: number | null;
  /** Members of the committed and pending layouts with their liveness as this replica sees it. */
  members: { id: number; state: MemberState }[];
}

export interface RingView {
  version: number;
  replicas: number;
  /** A membership change is in progress (the vnodes are of the new layout). */
  pending: boolean;
  /** Virtual nodes: `position` is a fraction of the ring in [0, 1). */
  vnodes: { position: number; node: number }[];
}

export interface PreferenceList {
  /** The key's position, a fraction of the ring in [0, 1). */
  position: number;
  /** The nodes holding the key (newest layout), in preference order. */
  nodes: number[];
}

export interface OperationOptions {
  consistency?: Consistency;
  /** Override the replica's or client's `valueEncoding` for this call. */
  encoding?: ValueEncoding;
  /** Eventual writes: the `context` of an earlier getSiblings of this key. */
  context?: Uint8Array;
}

/**
 * Options of the conditional writes (`cas`, `setIfAbsent`, `setIfPresent`, `getAndSet`,
 * `increment`). They are always linearizable (one consensus round on the key): an
 * eventual `consistency` (given, or the replica's or client's default) is refused with
 * INVALID_ARGUMENT, so on an eventual-default handle pass `'linearizable'` explicitly.
 */
export interface UpdateOptions {
  consistency?: 'linearizable';
  /** Override `valueEncoding` for this call (values, `expected` and `previous`). */
  encoding?: ValueEncoding;
}

export interface CasResult {
  /** Whether `next` was stored (false: the key did not hold `expected`; nothing changed). */
  applied: boolean;
  /** What the key held when the update ran (undefined: absent). */
  previous: Value;
}

export interface CounterOptions {
  /** Counters are linearizable only (see `UpdateOptions`). */
  consistency?: 'linearizable';
  /** A BigInt even when a number would be exact. */
  bigint?: boolean;
}

export interface ScanOptions {
  /** Keys to ask for per page (default 100, at most 1000); a page may hold fewer, even none. */
  count?: number;
  /** A Redis glob (`*`, `?`, `[a-z]`, `[^a]`, `\x`) keys must match, as RESP `SCAN MATCH`; applied per page. */
  match?: string | Uint8Array;
  /**
   * 'utf8' (default): keys as strings, or Uint8Array for keys that are not valid UTF-8
   * (only keys written as bytes can be). 'raw': always Uint8Array.
   */
  keyEncoding?: 'utf8' | 'raw';
}

export interface ScanPage {
  /** The page's keys (matching `match`), in ring order. */
  keys: Key[];
  /** Pass to the next `scanPage`; `0n` when the scan is complete. */
  cursor: bigint;
}

export interface Siblings {
  /** Every concurrent value; a concurrent delete shows as undefined. */
  values: Value[];
  context: Uint8Array;
}

export interface ReplicaStatus {
  nodeId: number;
  incarnation: number;
  storage: 'memory' | 'indexeddb' | 'opfs' | 'custom';
  members: { id: number; zone: string; state: MemberState; address: string; capacity: number }[];
  /** 'displaced': the cluster bound this id to another store (see IdentityError). */
  role: 'joining' | 'member' | 'left' | 'displaced';
  /** The committed layout's version; `pendingVersion` the change in progress (or null). */
  layoutVersion: number;
  pendingVersion: number | null;
  /** Eventual-mode hints this replica holds for other nodes. */
  hintsQueued: number;
  /** Live linearizable keys this replica holds (counted on each call). */
  keys: number | null;
  /** The ring ranges this replica holds, with their Merkle roots (equal roots: in sync). */
  ranges: { start: number; end: number; replicas: number[]; root: string }[];
  transport: {
    kind: 'none' | 'js' | 'relay';
    connected: boolean;
    /** Relay: the node this replica is attached to. */
    host: number | null;
    url: string | null;
    attachments: number;
    lastError: string | null;
  };
  inFlightRequests: number;
  pendingRequests: number;
  /** Replies and messages waiting for their storage commit. */
  heldOutputs: number;
  storeBytes: number;
  engine: {
    tables: number;
    levels: number[];
    flushes: number;
    compactions: number;
    spaceUsedBytes: number;
    writeAmplification: number;
  };
  counters: {
    requests: number;
    succeeded: number;
    unavailable: number;
    indeterminate: number;
    overloaded: number;
    storageErrors: number;
  };
  host: {
    commits: number;
    commitBytes: number;
    maintenanceSteps: number;
    heldSendsDropped: number;
    receivesDropped: number;
  };
  sendsDropped: number;
  /** Why the replica failed (it then rejects everything with STORAGE), or null. */
  failed: string | null;
  lastStorageError: string | null;
}

export declare class Replica {
  private constructor();
  static open(options?: ReplicaOptions): Promise<Replica>;
  /** Resolves once the write is durable. */
  put(key: Key, value: Value, options?: OperationOptions): Promise<void>;
  /** The value, or undefined when absent. */
  get(key: Key, options?: OperationOptions): Promise<Value>;
  /** Eventual mode: all concurrent values and the context to write back with. */
  getSiblings(key: Key, options?: OperationOptions): Promise<Siblings>;
  delete(key: Key, options?: OperationOptions): Promise<void>;
  /**
   * Compare-and-set: stores `next` iff the key holds `expected`, in one linearizable
   * step. `expected` undefined: the key must be absent; `next` undefined: delete it.
   * Values compare by their encoding, so a value read with `get` and passed back
   * matches (objects compare with their key order; numbers bit for bit).
   * ContentionError: concurrent conditional writes kept it from completing; nothing
   * changed, retry. IndeterminateError: its answer was lost, or under contention an
   * accept of it was partly stored and a later write may have built on it; read the key
   * to find out whether it happened (README, "Conditional writes").
   */
  cas(key: Key, expected: Value | undefined, next: Value | undefined, options?: UpdateOptions): Promise<CasResult>;
  /** Stores `value` iff the key is absent; whether it did. */
  setIfAbsent(key: Key, value: Value, options?: UpdateOptions): Promise<boolean>;
  /** Stores `value` (undefined: deletes) iff the key has a value; whether it did. */
  setIfPresent(key: Key, value: Value | undefined, options?: UpdateOptions): Promise<boolean>;
  /** Stores `value` (undefined: deletes) and returns what it replaced (undefined: absent). */
  getAndSet(key: Key, value: Value | undefined, options?: UpdateOptions): Promise<Value>;
  /**
   * Adds `by` (default 1; may be negative) to the key's counter and returns the new
   * count. A counter is stored as Redis stores one, a signed 64-bit integer in ASCII
   * decimal (absent counts as 0), so RESP `INCR`/`GET` and this agree on a key. The
   * count is a number while |n| ≤ 2^53 − 1 and a BigInt beyond (a BigInt `by`: always a
   * BigInt). NotAnIntegerError: the key holds something else (e.g. a value `put`
   * stored) or the sum overflows; nothing changed. `get` of a counter key throws
   * CorruptValueError (it is not in the value encoding): read it with `getCounter`.
   */
  increment(key: Key, by?: number, options?: UpdateOptions): Promise<number | bigint>;
  increment(key: Key, by: bigint, options?: UpdateOptions): Promise<bigint>;
  /** A counter's value (see `increment`), or undefined; NotAnIntegerError if the key holds something else. */
  getCounter(key: Key, options?: CounterOptions & { bigint?: false }): Promise<number | bigint | undefined>;
  getCounter(key: Key, options: CounterOptions & { bigint: true }): Promise<bigint | undefined>;
  /**
   * One page of a scan of the linearizable keyspace in ring order, from `cursor` (`0n`
   * starts). Each page reads a majority of its ranges' replicas: a key present for the
   * whole scan is listed (at least once; pages follow each other by ring position), a
   * key deleted before the scan began never; keys written or deleted meanwhile may or
   * may not be.
   */
  scanPage(cursor: bigint, options?: ScanOptions): Promise<ScanPage>;
  /** Every key (see `scanPage`), fetched page by page: `for await (const key of replica.scan())`. */
  scan(options?: ScanOptions): AsyncGenerator<Key, void, undefined>;
  status(): ReplicaStatus;
  /** A frame from node `from` on the JS network (replicas opened with `transport`). */
  deliver(from: number, frame: Uint8Array): void;
  /** Asks the cluster through this member to add `spec` (or update it); resolves once chosen. */
  join(spec: MemberSpec): Promise<void>;
  /** Asks node `id` (default: this replica) to leave once its ranges have moved. */
  leave(id?: number): Promise<void>;
  /**
   * Drops node `id`, gone for good, from the layout; its ranges are rebuilt from their
   * other replicas. `force: true` is needed where those are fewer than a majority of a
   * range's replicas (all must be up; refused, naming the range, if a range would lose
   * its last copy), and aborts the change of a joiner that died while joining.
   */
  remove(id: number, options?: { force?: boolean }): Promise<void>;
  /**
   * Aborts the membership change in progress (a node it adds died before it synced):
   * resolves once the layout before it is committed again; rejects if it committed
   * first, or `UNAVAILABLE` while the abort cannot be proven yet.
   */
  abort(): Promise<void>;
  ring(): RingView;
  preferenceList(key: Key): PreferenceList;
  on(event: 'membership', listener: (event: MembershipEvent) => void): this;
  off(event: 'membership', listener: (event: MembershipEvent) => void): this;
  /** Resolves once in-flight operations are answered and durable. */
  close(): Promise<void>;
}

export interface ClientOptions {
  token?: string;
  consistency?: Consistency;
  valueEncoding?: ValueEncoding;
  /** Deadline for one answer (default 30000 ms): then INDETERMINATE (writes) or UNAVAILABLE (reads). */
  requestTimeoutMs?: number;
}

/**
 * A thin client of a native cluster over its client protocol (`/client`). It talks to
 * the first seed that welcomes it and moves to the next when the connection is lost:
 * writes in flight then fail with INDETERMINATE, reads with UNAVAILABLE.
 */
export declare class Client {
  private constructor();
  static connect(seeds: string[], options?: ClientOptions): Promise<Client>;
  /** The id of the node this client is connected to, or undefined while reconnecting. */
  readonly node: number | undefined;
  put(key: Key, value: Value, options?: OperationOptions): Promise<void>;
  get(key: Key, options?: OperationOptions): Promise<Value>;
  getSiblings(key: Key, options?: OperationOptions): Promise<Siblings>;
  delete(key: Key, options?: OperationOptions): Promise<void>;
  /** As `Replica.cas`; the request travels to the connected node as is. */
  cas(key: Key, expected: Value | undefined, next: Value | undefined, options?: UpdateOptions): Promise<CasResult>;
  setIfAbsent(key: Key, value: Value, options?: UpdateOptions): Promise<boolean>;
  setIfPresent(key: Key, value: Value | undefined, options?: UpdateOptions): Promise<boolean>;
  getAndSet(key: Key, value: Value | undefined, options?: UpdateOptions): Promise<Value>;
  increment(key: Key, by?: number, options?: UpdateOptions): Promise<number | bigint>;
  increment(key: Key, by: bigint, options?: UpdateOptions): Promise<bigint>;
  getCounter(key: Key, options?: CounterOptions & { bigint?: false }): Promise<number | bigint | undefined>;
  getCounter(key: Key, options: CounterOptions & { bigint: true }): Promise<bigint | undefined>;
  scanPage(cursor: bigint, options?: ScanOptions): Promise<ScanPage>;
  scan(options?: ScanOptions): AsyncGenerator<Key, void, undefined>;
  /** The connected node's status document (as its HTTP `/status`). */
  status(): Promise<Record<string, unknown>>;
  close(): void;
}

export type ErrorCode =
  | 'UNAVAILABLE'
  | 'INDETERMINATE'
  | 'TOO_LARGE'
  | 'OVERLOADED'
  | 'UNSUPPORTED'
  | 'INVALID_CONTEXT'
  | 'INVALID_ARGUMENT'
  | 'CLOSED'
  | 'STORAGE'
  | 'CORRUPT_VALUE'
  | 'IDENTITY'
  | 'CONTENTION'
  | 'NOT_AN_INTEGER';

export declare class RingkvError extends Error {
  readonly code: ErrorCode;
}
/** Not enough replicas reachable; did not take effect (safe to retry). */
export declare class UnavailableError extends RingkvError { readonly code: 'UNAVAILABLE'; }
/** A write may or may not have taken effect. */
export declare class IndeterminateError extends RingkvError { readonly code: 'INDETERMINATE'; }
export declare class TooLargeError extends RingkvError {
  readonly code: 'TOO_LARGE';
  readonly what: 'key' | 'value' | 'causal context' | 'sibling state';
  readonly sizeBytes: number;
  readonly limitBytes: number;
}
export declare class OverloadedError extends RingkvError { readonly code: 'OVERLOADED'; }
export declare class UnsupportedError extends RingkvError { readonly code: 'UNSUPPORTED'; }
export declare class InvalidContextError extends RingkvError { readonly code: 'INVALID_CONTEXT'; }
export declare class InvalidArgumentError extends RingkvError { readonly code: 'INVALID_ARGUMENT'; }
export declare class ClosedError extends RingkvError { readonly code: 'CLOSED'; }
/** The store failed; the replica stops and must be reopened. */
export declare class StorageError extends RingkvError { readonly code: 'STORAGE'; }
/**
 * A stored value is not in the value encoding. From a conditional write whose
 * `previous` could not be decoded (the key held a counter or raw bytes), `applied`
 * says whether the write took effect all the same.
 */
export declare class CorruptValueError extends RingkvError {
  readonly code: 'CORRUPT_VALUE';
  readonly applied?: boolean;
}
/**
 * The store cannot prove it is the cluster member its node id names (it lost its data,
 * or the id is another store's): refused at once; rejoin under a new id.
 */
export declare class IdentityError extends RingkvError { readonly code: 'IDENTITY'; }
/**
 * Concurrent conditional writes on the key kept this one from completing its round; it
 * did not take effect: retry (after a short, randomised pause).
 */
export declare class ContentionError extends RingkvError { readonly code: 'CONTENTION'; }
/** `increment`: the key holds no 64-bit decimal integer, or the sum overflows; nothing changed. */
export declare class NotAnIntegerError extends RingkvError { readonly code: 'NOT_AN_INTEGER'; }

/** The package's value encoding (README, "Value encoding"). */
export declare function encodeValue(value: Value): Uint8Array;
export declare function decodeValue(bytes: Uint8Array): Value;
/** The message type of a peer frame ('Read', 'Write', 'Gossip', ...), for traffic views. */
export declare function frameKind(frame: Uint8Array): string;
/** The version vector in an eventual-mode context: node id → counter. */
export declare function describeContext(context: Uint8Array): Record<string, number>;
/** Browser: load the .wasm from another URL or from bytes before the first open. */
export declare function initWasm(moduleOrPath?: URL | string | BufferSource | WebAssembly.Module): Promise<unknown>;

/**
 * Browser build, dedicated workers only: a journal in the Origin Private File System
 * (directory `ringkv-<name>`), synchronously written and flushed per commit. What
 * `storage: 'opfs'` uses.
 */
export declare class OpfsBlockStore implements BlockStore {
  constructor(name: string);
  readonly kind: 'opfs';
  load(): Promise<Map<string, Uint8Array>>;
  commit(changes: BlockStoreChanges): Promise<void>;
  close(): Promise<void>;
}

/** Node.js only (import from 'ringkv' in Node, or 'ringkv/file-store'). */
export declare class FileBlockStore implements BlockStore {
  constructor(dir: string);
  load(): Promise<Map<string, Uint8Array>>;
  commit(changes: BlockStoreChanges): Promise<void>;
  close(): Promise<void>;
}

/**
 * Durable Objects ('ringkv/durable-object-store'): a block store over the object's
 * transactional key-value storage (`ctx.storage`; SQLite-backed or legacy). Files are
 * kept in pages of `pageBytes` (default 64 KiB; a multiple of 4 KiB, at most 128 KiB);
 * each commit is one coalesced atomic write, awaited with `storage.sync()`.
 */
export declare class DurableObjectBlockStore implements BlockStore {
  constructor(storage: unknown, options?: { pageBytes?: number });
  load(): Promise<Map<string, Uint8Array>>;
  commit(changes: BlockStoreChanges): Promise<void>;
  close(): void;
}

/** 'ringkv/http': the `/kv/:key` interface of the edge examples. */
export declare const BODY_BYTES_MAX: number;
export declare const HTTP_STATUS: Partial<Record<ErrorCode, number>>;
export interface KvAnswer {
  status: number;
  type: string;
  body: string | Uint8Array;
}
export declare function serveKv(
  replica: Replica,
  request: { method: string; path: string; body: () => Promise<Uint8Array> },
  options?: { status?: () => unknown },
): Promise<KvAnswer>;
export declare function serveKvRequest(
  replica: Replica,
  request: Request,
  options?: { status?: () => unknown; bodyBytesMax?: number },
): Promise<Response>;
