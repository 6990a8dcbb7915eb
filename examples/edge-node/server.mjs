// An edge node: a wasm ringkv replica in Node.js with a file-backed store, joined to a
// native cluster through a node's relay, serving HTTP:
//
//   GET    /kv/:key   → 200 with the value's bytes, 404 when absent
//   PUT    /kv/:key   → 204 once the write is acknowledged (body = the value's bytes)
//   DELETE /kv/:key   → 204
//   GET    /status    → the replica's status (JSON)
//
// Errors: 503 UNAVAILABLE (no quorum: nothing changed), 504 INDETERMINATE (may have
// applied), 413 TOO_LARGE, 400 bad input, 409 concurrent eventual values, 500 storage
// failures and anything unexpected; the body names the code.
//
//   node --experimental-websocket server.mjs --seed ws://127.0.0.1:7001 --node-id 101 \
//        --data ./edge-data --port 8080 [--token T] [--zone edge] [--consistency eventual]
//
// Values are stored as raw bytes, so RESP clients of the cluster read what HTTP wrote.

import http from 'node:http';
import { parseArgs } from 'node:util';

const { Replica, FileBlockStore, RingkvError } = await import(process.env.RINGKV_PKG ?? 'ringkv');

const { values: args } = parseArgs({
  options: {
    seed: { type: 'string', multiple: true },
    'node-id': { type: 'string', default: '101' },
    data: { type: 'string', default: './edge-data' },
    port: { type: 'string', default: '8080' },
    host: { type: 'string', default: '127.0.0.1' },
    token: { type: 'string' },
    zone: { type: 'string', default: 'edge' },
    consistency: { type: 'string', default: 'linearizable' },
  },
});
if (!args.seed?.length) {
  console.error('usage: server.mjs --seed ws://HOST:PORT [--seed ...] [--node-id N] [--data DIR] [--port P]');
  process.exit(2);
}

/** Request bodies above this are refused before reading on (the cluster's own limit is 1 MiB). */
const BODY_BYTES_MAX = 1 << 20;

const replica = await Replica.open({
  nodeId: Number(args['node-id']),
  zone: args.zone,
  seeds: args.seed,
  token: args.token,
  storage: new FileBlockStore(args.data),
  consistency: args.consistency,
  valueEncoding: 'raw',
});
replica.on('membership', (e) =>
  console.log(`layout v${e.version}${e.pendingVersion ? ` (changing to v${e.pendingVersion})` : ''}: ` +
    e.members.map((m) => `n${m.id}:${m.state}`).join(' ')));

const STATUS = {
  UNAVAILABLE: 503, // no quorum: nothing changed, retry
  INDETERMINATE: 504, // may have applied
  TOO_LARGE: 413,
  OVERLOADED: 503,
  CLOSED: 503,
  INVALID_ARGUMENT: 400,
  UNSUPPORTED: 409, // e.g. a key with concurrent eventual values
  STORAGE: 500,
  CORRUPT_VALUE: 500,
};

function reply(res, code, body = '', type = 'text/plain') {
  res.writeHead(code, { 'content-type': type });
  res.end(body);
}

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > BODY_BYTES_MAX) throw Object.assign(new Error('body too large'), { code: 'TOO_LARGE' });
    chunks.push(chunk);
  }
  return new Uint8Array(Buffer.concat(chunks));
}

const server = http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url, 'http://edge');
    if (url.pathname === '/status' && req.method === 'GET') {
      return reply(res, 200, JSON.stringify(replica.status()), 'application/json');
    }
    const match = /^\/kv\/(.+)$/.exec(url.pathname);
    if (!match) return reply(res, 404, 'use /kv/:key or /status\n');
    const key = decodeURIComponent(match[1]);
    if (req.method === 'GET') {
      const value = await replica.get(key);
      return value === undefined ? reply(res, 404, 'not found\n') : reply(res, 200, value, 'application/octet-stream');
    }
    if (req.method === 'PUT') {
      await replica.put(key, await readBody(req));
      return reply(res, 204);
    }
    if (req.method === 'DELETE') {
      await replica.delete(key);
      return reply(res, 204);
    }
    return reply(res, 405, 'GET, PUT or DELETE\n');
  } catch (e) {
    const code = e instanceof URIError ? 'INVALID_ARGUMENT' : e instanceof RingkvError || e.code ? e.code : 'INTERNAL';
    return reply(res, STATUS[code] ?? 500, `${code}: ${e.message}\n`);
  }
});

server.listen(Number(args.port), args.host, () => {
  console.log(`edge node n${args['node-id']} serving http://${args.host}:${server.address().port}/kv/:key`);
});

const stop = async () => {
  server.close();
  await replica.close();
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
