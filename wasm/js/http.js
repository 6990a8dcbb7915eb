// The `/kv/:key` HTTP interface of the edge examples (examples/edge-node in Node.js,
// examples/cloudflare-worker in a Durable Object), in one place so both answer alike:
//
//   GET    /kv/:key   → 200 with the value's bytes, 404 when absent
//   PUT    /kv/:key   → 204 once the write is acknowledged (body = the value's bytes)
//   DELETE /kv/:key   → 204
//   GET    /status    → the replica's status (JSON)
//   GET    /placement/:key → the key's ring position and preference list (JSON
//                     `{ position, nodes }`: the nodes holding it, in preference order)
//
// Errors: 503 UNAVAILABLE (no quorum: nothing changed), 504 INDETERMINATE (may have
// applied), 413 TOO_LARGE, 400 bad input, 409 UNSUPPORTED (concurrent eventual values),
// 503 CONTENTION (concurrent conditional writes: nothing changed), 409 NOT_AN_INTEGER,
// 500 STORAGE and anything unexpected; the body is `CODE: message`.
//
// Values are raw bytes: open the replica with `valueEncoding: 'raw'`, so RESP clients
// of the cluster read what HTTP wrote.

/** Request bodies above this are refused (413) before reading on: the cluster's own value limit. */
export const BODY_BYTES_MAX = 1 << 20;

/** HTTP status of each error code. */
export const HTTP_STATUS = {
  UNAVAILABLE: 503, // no quorum: nothing changed, retry
  INDETERMINATE: 504, // may have applied
  TOO_LARGE: 413,
  OVERLOADED: 503,
  CLOSED: 503,
  INVALID_ARGUMENT: 400,
  UNSUPPORTED: 409, // e.g. a key with concurrent eventual values
  STORAGE: 500,
  CORRUPT_VALUE: 500,
  IDENTITY: 500,
  CONTENTION: 503, // concurrent conditional writes: nothing changed, retry
  NOT_AN_INTEGER: 409, // the key holds something other than a counter
};

/** A plain answer: `{ status, type, body }` (body: string or Uint8Array). */
export const answer = (status, body = '', type = 'text/plain') => ({ status, type, body });

/** The answer for an error thrown by the replica (or by reading the request). */
export function errorAnswer(e) {
  const code = e instanceof URIError ? 'INVALID_ARGUMENT' : typeof e?.code === 'string' ? e.code : 'INTERNAL';
  return answer(HTTP_STATUS[code] ?? 500, `${code}: ${e?.message ?? e}\n`);
}

export class BodyTooLargeError extends Error {
  constructor(limit) {
    super(`request body over ${limit} bytes`);
    this.name = 'BodyTooLargeError';
    this.code = 'TOO_LARGE';
  }
}

/**
 * Serves one request against `replica`. `request`: `{ method, path, body }` where `body()`
 * returns the request body's bytes (and throws BodyTooLargeError past the limit).
 * `status()`, if given, replaces the replica's status document.
 */
export async function serveKv(replica, { method, path, body }, { status } = {}) {
  try {
    if (path === '/status' && method === 'GET') {
      return answer(200, JSON.stringify(status ? status() : replica.status()), 'application/json');
    }
    const placement = /^\/placement\/(.+)$/.exec(path);
    if (placement && method === 'GET') {
      return answer(200, JSON.stringify(replica.preferenceList(decodeURIComponent(placement[1]))), 'application/json');
    }
    const match = /^\/kv\/(.+)$/.exec(path);
    if (!match) return answer(404, 'use /kv/:key, /placement/:key or /status\n');
    const key = decodeURIComponent(match[1]);
    if (method === 'GET') {
      const value = await replica.get(key);
      return value === undefined ? answer(404, 'not found\n') : answer(200, value, 'application/octet-stream');
    }
    if (method === 'PUT') {
      await replica.put(key, await body());
      return answer(204);
    }
    if (method === 'DELETE') {
      await replica.delete(key);
      return answer(204);
    }
    return answer(405, 'GET, PUT or DELETE\n');
  } catch (e) {
    return errorAnswer(e);
  }
}

/**
 * The bytes of a web `ReadableStream` (a fetch `Request.body`), at most `limit` of them:
 * past it the read stops and BodyTooLargeError is thrown.
 */
export async function readStream(stream, limit = BODY_BYTES_MAX) {
  if (!stream) return new Uint8Array(0);
  const reader = stream.getReader();
  const parts = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > limit) {
      await reader.cancel().catch(() => {});
      throw new BodyTooLargeError(limit);
    }
    parts.push(value);
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** `serveKv` for a fetch API `Request`; returns a `Response` (Workers, Deno, Node ≥ 18). */
export async function serveKvRequest(replica, request, options = {}) {
  const { pathname } = new URL(request.url);
  const limit = options.bodyBytesMax ?? BODY_BYTES_MAX;
  const a = await serveKv(replica, {
    method: request.method,
    path: pathname,
    body: () => {
      const declared = Number(request.headers.get('content-length'));
      if (declared > limit) throw new BodyTooLargeError(limit);
      return readStream(request.body, limit);
    },
  }, options);
  return toResponse(a);
}

/** A `Response` of an answer (204 carries no body). */
export const toResponse = ({ status, type, body }) =>
  new Response(status === 204 ? null : body, { status, headers: { 'content-type': type } });
