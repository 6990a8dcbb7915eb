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
  /** This node's id, a positive integer (default 1). Persisted on first open. */
  nodeId?: number | bigint;
  /** 'memory' (default; gone on close), 'indexeddb' (browsers, workers) or a BlockStore. 'opfs' is not built yet (UNSUPPORTED). */
  storage?: 'memory' | 'indexeddb' | 'opfs' | BlockStore;
  /** IndexedDB database name (default `ringkv-${nodeId}`). */
  database?: string;
  /** Addresses of cluster nodes to join. Not built yet: a non-empty list is UNSUPPORTED. */
  seeds?: string[];
  /** Failure domain (default 'local'). */
  zone?: string;
  /** Default consistency of operations (default 'linearizable'). */
  consistency?: Consistency;
  /** Bound on the bytes an 'indexeddb' or custom store holds in memory (default 256 MiB). */
  storageBytesMax?: number;
  /** Compaction input bytes per step between events (default 256 KiB). */
  maintenanceBudgetBytes?: number;
}

export interface OperationOptions {
  consistency?: Consistency;
  /** Eventual writes: the `context` of an earlier getSiblings of this key. */
  context?: Uint8Array;
}

export interface Siblings {
  /** Every concurrent value; a concurrent delete shows as undefined. */
  values: Value[];
  context: Uint8Array;
}

export interface ReplicaStatus {
  nodeId: number;
  incarnation: number;
  storage: 'memory' | 'indexeddb' | 'custom';
  members: { id: number; zone: string; state: 'alive' | 'suspect' | 'dead' }[];
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
  host: { commits: number; commitBytes: number; maintenanceSteps: number; heldSendsDropped: number };
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
  getSiblings(key: Key): Promise<Siblings>;
  delete(key: Key, options?: OperationOptions): Promise<void>;
  status(): ReplicaStatus;
  /** Resolves once in-flight operations are answered and durable. */
  close(): Promise<void>;
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
  | 'CORRUPT_VALUE';

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
export declare class CorruptValueError extends RingkvError { readonly code: 'CORRUPT_VALUE'; }

/** The package's value encoding (README, "Value encoding"). */
export declare function encodeValue(value: Value): Uint8Array;
export declare function decodeValue(bytes: Uint8Array): Value;
/** Browser: load the .wasm from another URL or from bytes before the first open. */
export declare function initWasm(moduleOrPath?: URL | string | BufferSource | WebAssembly.Module): Promise<unknown>;

/** Node.js only (import from 'ringkv' in Node, or 'ringkv/file-store'). */
export declare class FileBlockStore implements BlockStore {
  constructor(dir: string);
  load(): Promise<Map<string, Uint8Array>>;
  commit(changes: BlockStoreChanges): Promise<void>;
  close(): Promise<void>;
}
