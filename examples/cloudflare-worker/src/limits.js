// The example's limits and settings (its main module, worker.js, may export only
// handlers). Each bound is a platform limit or keeps the replica inside one.

/** Alarm period: below workerd's 10 s idle eviction, so an open replica stays resident. */
export const HEARTBEAT_MS = 5_000;
/**
 * The replica holds its whole store in memory (the wasm image). A Worker isolate has
 * 128 MB; loading briefly needs the store twice (storage values, then the wasm copy).
 */
export const STORAGE_BYTES_DEFAULT = 32 << 20;
export const STORAGE_BYTES_LIMIT = 64 << 20;
/**
 * How long the Worker waits for the object's answer. Below the platform's 30 s CPU
 * (and the replica's own 30 s request deadline) so a client gets a typed answer, not a
 * runtime error: GET → 503 UNAVAILABLE, PUT/DELETE → 504 INDETERMINATE (may have applied).
 */
export const WORKER_DEADLINE_MS = 25_000;
/** How long opening (joining, or re-attaching) may take before a request gets 503. */
export const JOIN_TIMEOUT_MS = 20_000;

/** Parses the environment into Replica.open options; throws a clear error on bad values. */
export function replicaOptions(env, storage) {
  const seeds = String(env.RINGKV_SEEDS ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  if (seeds.length === 0) throw new Error('RINGKV_SEEDS is not set (ws://host:port of native nodes, comma-separated)');
  const storageBytesMax = env.RINGKV_STORAGE_BYTES_MAX ? Number(env.RINGKV_STORAGE_BYTES_MAX) : STORAGE_BYTES_DEFAULT;
  if (!Number.isSafeInteger(storageBytesMax) || storageBytesMax <= 0 || storageBytesMax > STORAGE_BYTES_LIMIT) {
    throw new Error(`RINGKV_STORAGE_BYTES_MAX must be a byte count up to ${STORAGE_BYTES_LIMIT}`);
  }
  let nodeId;
  if (env.RINGKV_NODE_ID) {
    nodeId = Number(env.RINGKV_NODE_ID);
    if (!Number.isSafeInteger(nodeId) || nodeId <= 0) throw new Error('RINGKV_NODE_ID must be a positive integer');
  }
  return {
    seeds,
    nodeId,
    token: env.RINGKV_TOKEN || undefined,
    zone: env.RINGKV_ZONE || 'edge',
    storage,
    storageBytesMax,
    valueEncoding: 'raw',
    joinTimeoutMs: JOIN_TIMEOUT_MS,
  };
}
